//! Functions over many futures: [`wait`], [`as_completed`], [`as_completed_ordered`],
//! [`collect`].

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{Future, State};
use crate::error::TaskError;

/// When [`wait`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any future has finished.
    FirstCompleted,
    /// As soon as any future has failed or been cancelled; if none does, when all finished.
    FirstError,
    /// When every future has finished.
    AllCompleted,
}

/// What [`wait`] found: indices into the slice it was given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WaitResult {
    /// Indices of finished futures, ascending.
    pub done: Vec<usize>,
    /// Indices of unfinished futures, ascending.
    pub not_done: Vec<usize>,
}

fn scan<T>(futs: &[Future<T>]) -> (WaitResult, bool) {
    let mut r = WaitResult::default();
    let mut error = false;
    for (i, f) in futs.iter().enumerate() {
        if f.core().is_completing() {
            // Callbacks (ours included) run just before the terminal state is published:
            // a future that woke us may still be completing. That ends right away.
            f.wait();
        }
        match f.state() {
            State::Failed | State::Cancelled => {
                error = true;
                r.done.push(i)
            }
            State::Done => r.done.push(i),
            _ => r.not_done.push(i),
        }
    }
    (r, error)
}

/// Wait for some or all of `futs` (see [`ReturnWhen`]), at most `timeout` if given.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pool::{ReturnWhen, ThreadPool, wait};
///
/// let pool = ThreadPool::builder().max_workers(2).build()?;
/// let futs = vec![
///     pool.submit(|| 1)?,
///     pool.submit(|| { std::thread::sleep(Duration::from_millis(500)); 2 })?,
/// ];
/// let r = wait(&futs, ReturnWhen::FirstCompleted, Some(Duration::from_secs(10)));
/// assert_eq!(r.done, vec![0]);
/// assert_eq!(r.not_done, vec![1]);
/// let r = wait(&futs, ReturnWhen::AllCompleted, Some(Duration::from_millis(5)));
/// assert_eq!(r.not_done, vec![1]); // timed out: the sleeper still runs
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn wait<T>(futs: &[Future<T>], when: ReturnWhen, timeout: Option<Duration>) -> WaitResult {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let satisfied = |r: &WaitResult, error: bool| match when {
        ReturnWhen::FirstCompleted => !r.done.is_empty() || futs.is_empty(),
        ReturnWhen::FirstError => error || r.not_done.is_empty(),
        ReturnWhen::AllCompleted => r.not_done.is_empty(),
    };
    let (r, error) = scan(futs);
    if satisfied(&r, error) {
        return r;
    }
    // One signal for all: every unfinished future bumps the counter when it finishes.
    let signal = Arc::new((Mutex::new(0u64), Condvar::new()));
    for &i in &r.not_done {
        let s = signal.clone();
        futs[i].core().on_done(Box::new(move |_| {
            let mut g = s.0.lock().unwrap_or_else(|p| p.into_inner());
            *g += 1;
            s.1.notify_all();
        }));
    }
    let mut seen = 0u64;
    loop {
        let (r, error) = scan(futs);
        if satisfied(&r, error) {
            return r;
        }
        let mut g = signal.0.lock().unwrap_or_else(|p| p.into_inner());
        while *g == seen {
            match deadline {
                None => g = signal.1.wait(g).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        drop(g);
                        return scan(futs).0;
                    }
                    g = signal
                        .1
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
        seen = *g;
    }
}

/// Iterator over futures' results as they finish: `(index, result)`. See [`as_completed`].
pub struct AsCompleted<T> {
    futs: Vec<Option<Future<T>>>,
    order: Order,
    remaining: usize,
    deadline: Option<Instant>,
}

enum Order {
    Completion(mpsc::Receiver<usize>),
    Submission(VecDeque<usize>),
}

/// Yield `(index, result)` for each future in the order they finish.
///
/// To stop waiting at a deadline, use [`AsCompleted::with_deadline`]; the futures not yet
/// finished then are taken back with [`AsCompleted::into_remaining`] (to cancel them, or
/// wait longer).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use pool::{ThreadPool, as_completed};
///
/// let pool = ThreadPool::builder().max_workers(2).build()?;
/// let slow = pool.submit(|| { std::thread::sleep(Duration::from_millis(300)); "slow" })?;
/// let quick = pool.submit(|| "quick")?;
/// let mut done = as_completed(vec![slow, quick]);
/// assert_eq!(done.next(), Some((1, Ok("quick"))));
/// assert_eq!(done.next(), Some((0, Ok("slow"))));
/// assert_eq!(done.next(), None);
///
/// // With a deadline: what did not finish in time comes back, by index.
/// let stuck = pool.submit(|| { std::thread::sleep(Duration::from_millis(500)); 0 })?;
/// let fast = pool.submit(|| 1)?;
/// let mut done = as_completed(vec![stuck, fast])
///     .with_deadline(Instant::now() + Duration::from_millis(100));
/// assert_eq!(done.next(), Some((1, Ok(1))));
/// assert_eq!(done.next(), None);
/// let late = done.into_remaining();
/// assert_eq!(late.len(), 1);
/// assert_eq!(late[0].0, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn as_completed<T: Send + 'static>(futs: Vec<Future<T>>) -> AsCompleted<T> {
    let (tx, rx) = mpsc::channel();
    for (i, f) in futs.iter().enumerate() {
        let tx = tx.clone();
        f.core().on_done(Box::new(move |_| {
            let _ = tx.send(i);
        }));
    }
    let remaining = futs.len();
    AsCompleted {
        futs: futs.into_iter().map(Some).collect(),
        order: Order::Completion(rx),
        remaining,
        deadline: None,
    }
}

/// Like [`as_completed`] but keeping submission order: `(index, result)` for index 0, 1, ...,
/// each as soon as it and all before it have finished.
///
/// # Examples
///
/// ```
/// let (p0, f0) = pool::backend::promise::<u8>();
/// let (p1, f1) = pool::backend::promise::<u8>();
/// p1.complete(Ok(11));
/// p0.complete(Ok(10));
/// let v: Vec<_> = pool::as_completed_ordered(vec![f0, f1]).collect();
/// assert_eq!(v, vec![(0, Ok(10)), (1, Ok(11))]);
/// ```
pub fn as_completed_ordered<T>(futs: Vec<Future<T>>) -> AsCompleted<T> {
    let remaining = futs.len();
    AsCompleted {
        order: Order::Submission((0..futs.len()).collect()),
        futs: futs.into_iter().map(Some).collect(),
        remaining,
        deadline: None,
    }
}

impl<T> AsCompleted<T> {
    /// Stop yielding at `deadline`: after it, `next` returns `None` and the unfinished futures
    /// can be taken back with [`AsCompleted::into_remaining`].
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The futures not yielded yet, with their indices.
    pub fn into_remaining(self) -> Vec<(usize, Future<T>)> {
        self.futs
            .into_iter()
            .enumerate()
            .filter_map(|(i, f)| f.map(|f| (i, f)))
            .collect()
    }
}

impl<T> Iterator for AsCompleted<T> {
    type Item = (usize, Result<T, TaskError>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let i = match &mut self.order {
            Order::Completion(rx) => match self.deadline {
                None => rx.recv().ok()?,
                Some(d) => rx
                    .recv_timeout(d.saturating_duration_since(Instant::now()))
                    .ok()?,
            },
            Order::Submission(q) => {
                let i = *q.front()?;
                let f = self.futs[i].as_ref()?;
                let finished = match self.deadline {
                    None => {
                        f.wait();
                        true
                    }
                    Some(d) => f.wait_deadline(d),
                };
                if !finished {
                    return None;
                }
                q.pop_front();
                i
            }
        };
        let mut f = self.futs[i].take()?;
        self.remaining -= 1;
        // Notified from a callback, which runs just before the result is published.
        f.wait();
        let r = f.try_result().expect("finished future has its result");
        Some((i, r))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

/// Wait for all futures in order and collect their values. On the first error (in index
/// order) the futures after it that have not started are cancelled and the error returned.
///
/// # Errors
///
/// The first [`TaskError`] in index order.
///
/// # Examples
///
/// ```
/// let (p0, f0) = pool::backend::promise::<u8>();
/// let (p1, f1) = pool::backend::promise::<u8>();
/// p0.complete(Ok(1));
/// p1.complete(Ok(2));
/// assert_eq!(pool::collect(vec![f0, f1]), Ok(vec![1, 2]));
/// ```
pub fn collect<T>(futs: Vec<Future<T>>) -> Result<Vec<T>, TaskError> {
    let mut out = Vec::with_capacity(futs.len());
    let mut it = futs.into_iter();
    while let Some(f) = it.next() {
        match f.result() {
            Ok(v) => out.push(v),
            Err(e) => {
                for rest in it {
                    rest.cancel();
                }
                return Err(e);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::future::promise;

    fn later<T: Send + 'static>(p: crate::Promise<T>, ms: u64, r: Result<T, TaskError>) {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            p.complete(r);
        });
    }

    #[test]
    fn first_completed_returns_on_the_first() {
        let (p0, f0) = promise::<u8>();
        let (_p1, f1) = promise::<u8>();
        later(p0, 10, Ok(0));
        let futs = vec![f0, f1];
        let r = wait(
            &futs,
            ReturnWhen::FirstCompleted,
            Some(Duration::from_secs(10)),
        );
        assert_eq!(r.done, vec![0]);
        assert_eq!(r.not_done, vec![1]);
    }

    #[test]
    fn first_error_returns_on_an_error() {
        let (_p0, f0) = promise::<u8>();
        let (p1, f1) = promise::<u8>();
        let (p2, f2) = promise::<u8>();
        p2.complete(Ok(2));
        later(p1, 10, Err(TaskError::Shutdown));
        let futs = vec![f0, f1, f2];
        let r = wait(&futs, ReturnWhen::FirstError, Some(Duration::from_secs(10)));
        assert_eq!(r.done, vec![1, 2]);
        assert_eq!(r.not_done, vec![0]);
    }

    #[test]
    fn all_completed_and_timeout() {
        let futs: Vec<_> = (0..4)
            .map(|i| {
                let (p, f) = promise::<u8>();
                later(p, 5 * i as u64, Ok(i));
                f
            })
            .collect();
        let r = wait(
            &futs,
            ReturnWhen::AllCompleted,
            Some(Duration::from_secs(10)),
        );
        assert_eq!(r.done, vec![0, 1, 2, 3]);
        let (_p, f) = promise::<u8>();
        let r = wait(
            &[f],
            ReturnWhen::AllCompleted,
            Some(Duration::from_millis(10)),
        );
        assert_eq!(r.not_done, vec![0]);
    }

    #[test]
    fn as_completed_yields_in_completion_order() {
        let (p0, f0) = promise::<u8>();
        let (p1, f1) = promise::<u8>();
        let (p2, f2) = promise::<u8>();
        later(p0, 60, Ok(0));
        later(p1, 0, Ok(1));
        later(p2, 30, Ok(2));
        let order: Vec<_> = as_completed(vec![f0, f1, f2])
            .with_deadline(Instant::now() + Duration::from_secs(10))
            .map(|(i, r)| (i, r.unwrap()))
            .collect();
        assert_eq!(order, vec![(1, 1), (2, 2), (0, 0)]);
    }

    #[test]
    fn as_completed_deadline_stops_and_returns_the_rest() {
        let (p0, f0) = promise::<u8>();
        let (_p1, f1) = promise::<u8>();
        p0.complete(Ok(0));
        let mut it =
            as_completed(vec![f0, f1]).with_deadline(Instant::now() + Duration::from_millis(20));
        assert_eq!(it.next(), Some((0, Ok(0))));
        assert_eq!(it.next(), None);
        let rest = it.into_remaining();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, 1);
    }

    #[test]
    fn collect_stops_at_the_first_error_and_cancels_the_rest() {
        let (p0, f0) = promise::<u8>();
        let (p1, f1) = promise::<u8>();
        let (p2, f2) = promise::<u8>();
        p0.complete(Ok(0));
        p1.complete(Err(TaskError::Shutdown));
        assert_eq!(collect(vec![f0, f1, f2]), Err(TaskError::Shutdown));
        assert!(!p2.start(), "the later future was cancelled");
    }
}
