//! [`Future`] and [`Promise`]: the two ends of one task's result, and the functions over many
//! futures ([`wait`], [`as_completed`], [`collect`]). The state machine itself is in `cell`
//! (protocol in `README.md` beside this file).

pub(crate) mod cell;
#[cfg(all(test, pool_loom))]
mod loom_tests;
mod wait;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub use wait::{
    AsCompleted, ReturnWhen, WaitResult, as_completed, as_completed_ordered, collect, wait,
};

use crate::engine::Killer;
use crate::error::{TaskError, TaskId};
use cell::{Bare, Core, FROM_PENDING, FROM_RUNNING, HasCore};

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Queued, not started.
    Pending,
    /// Running on a worker.
    Running,
    /// Finished with a value.
    Done,
    /// Finished with an error (panic, worker death, timeout, ...).
    Failed,
    /// Cancelled before it finished.
    Cancelled,
}

impl State {
    fn from_raw(s: usize) -> State {
        match s {
            cell::PENDING => State::Pending,
            cell::RUNNING | cell::COMPLETING => State::Running,
            cell::DONE => State::Done,
            cell::FAILED => State::Failed,
            _ => State::Cancelled,
        }
    }

    /// Done, Failed or Cancelled.
    pub fn is_finished(self) -> bool {
        matches!(self, State::Done | State::Failed | State::Cancelled)
    }
}

/// When a task was queued, started and finished. Recorded when the pool records timing (the
/// default of the engine; thread pools make it opt-in to keep clock reads off their hot path)
/// or when the submit asked for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timing {
    /// When it was submitted.
    pub queued_at: Option<Instant>,
    /// When a worker started it.
    pub started_at: Option<Instant>,
    /// When it finished (or was cancelled).
    pub finished_at: Option<Instant>,
}

impl Timing {
    /// Time spent waiting in the queue (up to now if still pending).
    pub fn pending(&self) -> Option<Duration> {
        let q = self.queued_at?;
        let end = self
            .started_at
            .or(self.finished_at)
            .unwrap_or_else(Instant::now);
        Some(end.saturating_duration_since(q))
    }

    /// Time spent running (up to now if still running).
    pub fn running(&self) -> Option<Duration> {
        let s = self.started_at?;
        let end = self.finished_at.unwrap_or_else(Instant::now);
        Some(end.saturating_duration_since(s))
    }
}

/// Allocate a process-unique task id cheaply: each thread takes ids in blocks.
pub(crate) fn next_task_id() -> TaskId {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    const BLOCK: u64 = 1024;
    thread_local!(static RANGE: Cell<(u64, u64)> = const { Cell::new((0, 0)) });
    RANGE.with(|r| {
        let (mut next, mut end) = r.get();
        if next == end {
            next = NEXT.fetch_add(BLOCK, Ordering::Relaxed);
            end = next + BLOCK;
        }
        r.set((next + 1, end));
        TaskId(next)
    })
}

/// The result of a task that may not have finished yet.
///
/// Blocking (`result`, `wait_timeout`), polling (`try_result`, `state`), callbacks
/// (`on_done`), cancellation (`cancel`, `kill`), and `.await` (it implements
/// [`std::future::Future`] with no runtime dependency).
///
/// Dropping a `Future` does not cancel its task; the result is discarded.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use pool::{TaskError, ThreadPool};
///
/// let pool = ThreadPool::builder().max_workers(1).build()?;
/// let answer = pool.submit(|| 6 * 7)?;
/// assert!(answer.wait_timeout(Duration::from_secs(10)));
/// assert!(answer.is_done());
/// assert_eq!(answer.result()?, 42);
///
/// // A failure is a value: here a panic, caught in the worker.
/// let bad = pool.submit(|| -> u8 { panic!("no") })?;
/// assert!(matches!(bad.result(), Err(TaskError::Panicked(p)) if p.message == "no"));
///
/// // Callbacks run when the task is done (at once if it already is).
/// let (tx, rx) = std::sync::mpsc::channel();
/// pool.submit(|| "hi")?.on_done(move |r| tx.send(r.is_ok()).unwrap());
/// assert!(rx.recv_timeout(Duration::from_secs(10))?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// In async code, `.await` it:
///
/// ```
/// # let pool = pool::ThreadPool::builder().max_workers(1).build()?;
/// let fut = pool.submit(|| 1 + 1)?;
/// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
/// let two = runtime.block_on(async { fut.await })?;
/// assert_eq!(two, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Future<T> {
    cell: Arc<dyn HasCore<T>>,
}

// SAFETY: see `cell::Core`: a `Future<T>` moves at most a `T` between threads.
unsafe impl<T: Send> Send for Future<T> {}
// SAFETY: `&Future<T>` gives `&T` (through `on_done` callbacks run by the caller) on any
// thread that holds the reference, so sharing needs `T: Sync`.
unsafe impl<T: Send + Sync> Sync for Future<T> {}

impl<T> Future<T> {
    pub(crate) fn from_cell(cell: Arc<dyn HasCore<T>>) -> Self {
        Future { cell }
    }

    #[inline]
    fn core(&self) -> &Core<T> {
        self.cell.core()
    }

    /// Block until the task finishes and return its result.
    ///
    /// # Errors
    ///
    /// The [`TaskError`] that ended the task (panic, cancellation, worker death, ...).
    ///
    /// # Panics
    ///
    /// If the result was already taken by [`Future::try_result`] or `.await`.
    pub fn result(self) -> Result<T, TaskError> {
        self.core().wait(None);
        self.core()
            .take()
            .expect("Future::result: the result was already taken")
    }

    /// Wait at most `d` for the result; on timeout, the future comes back.
    ///
    /// # Errors
    ///
    /// `Err(self)` if the task did not finish within `d`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (_p, f) = pool::backend::promise::<u8>();
    /// let f = f.result_timeout(Duration::from_millis(1)).unwrap_err();
    /// assert!(!f.is_done());
    /// ```
    pub fn result_timeout(self, d: Duration) -> Result<Result<T, TaskError>, Self> {
        if self.wait_timeout(d) {
            Ok(self.result())
        } else {
            Err(self)
        }
    }

    /// Wait at most `d` for the task to finish. True if it finished.
    pub fn wait_timeout(&self, d: Duration) -> bool {
        let deadline = Instant::now().checked_add(d);
        self.core().wait(deadline)
    }

    /// Wait until `deadline`. True if the task finished.
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.core().wait(Some(deadline))
    }

    /// Block until the task finishes (without taking the result).
    pub fn wait(&self) {
        self.core().wait(None);
    }

    /// The result if the task has finished; `None` if it has not (or the result was taken).
    pub fn try_result(&mut self) -> Option<Result<T, TaskError>> {
        self.core().take()
    }

    /// Cancel the task if it has not started. True if it is now cancelled (its future
    /// resolves with [`TaskError::Cancelled`] and it will never run).
    ///
    /// # Examples
    ///
    /// ```
    /// let (p, f) = pool::backend::promise::<u8>();
    /// assert!(f.cancel());
    /// assert!(!p.start());
    /// assert!(f.is_cancelled());
    /// ```
    pub fn cancel(&self) -> bool {
        self.core()
            .complete(Err(TaskError::Cancelled), FROM_PENDING)
            .is_ok()
    }

    /// Cancel the task, also when it is running: a pending task is cancelled as by
    /// [`Future::cancel`]; a running one is stopped by killing its worker when the backend
    /// can (process workers), and resolves [`TaskError::Cancelled`]; the engine replaces the
    /// worker. False if the task already finished or is running on a worker that cannot be
    /// killed (a thread).
    pub fn kill(&self) -> bool {
        self.cancel() || self.core().kill()
    }

    /// The current state.
    pub fn state(&self) -> State {
        State::from_raw(self.core().state())
    }

    /// Done, Failed or Cancelled.
    pub fn is_done(&self) -> bool {
        self.core().is_terminal()
    }

    /// Running on a worker.
    pub fn is_running(&self) -> bool {
        self.state() == State::Running
    }

    /// Cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.state() == State::Cancelled
    }

    /// Run `cb` with the result (`Ok(&value)` or `Err(&error)`) when the task finishes: on the
    /// thread that completes it, just before waiters wake, or right now on this thread if it
    /// already finished. A panicking callback is contained (the thread carries on), printed
    /// by the panic hook and counted in [`callback_panics`](crate::callback_panics) and the
    /// pool's `Stats::callback_panics`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (p, f) = pool::backend::promise::<u32>();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// f.on_done(move |r| tx.send(r.is_ok() && *r.unwrap() == 5).unwrap());
    /// p.complete(Ok(5));
    /// assert!(rx.recv().unwrap());
    /// ```
    pub fn on_done(&self, cb: impl FnOnce(Result<&T, &TaskError>) + Send + 'static) {
        self.core().on_done(Box::new(cb));
    }

    /// When the task was queued, started and finished (see [`Timing`]).
    pub fn timing(&self) -> Timing {
        let (queued_at, started_at, finished_at) = self.core().times();
        Timing {
            queued_at,
            started_at,
            finished_at,
        }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.core().id()
    }

    /// Look at the result without taking it (`None` while unfinished or after it was taken).
    pub fn peek<R>(&self, f: impl FnOnce(Option<Result<&T, &TaskError>>) -> R) -> R {
        self.core().peek(f)
    }
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Future")
            .field("id", &self.id())
            .field("state", &self.state())
            .finish()
    }
}

impl<T> std::future::Future for Future<T> {
    type Output = Result<T, TaskError>;

    /// # Panics
    ///
    /// If polled again after it returned `Ready`.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.core().poll_take(cx.waker()) {
            Poll::Ready(Some(r)) => Poll::Ready(r),
            Poll::Ready(None) => panic!("pool_core::Future polled after completion"),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The completing side of a [`Future`], for backends and tests.
///
/// Dropping a `Promise` that was not completed resolves its future with
/// [`TaskError::Cancelled`], so no future waits forever on a producer that is gone.
pub struct Promise<T: Send + 'static> {
    cell: Option<Arc<dyn HasCore<T>>>,
}

/// A linked pair: complete the [`Promise`], read the [`Future`].
///
/// # Examples
///
/// ```
/// let (p, f) = pool::backend::promise();
/// p.complete(Ok(7));
/// assert_eq!(f.result(), Ok(7));
/// ```
pub fn promise<T: Send + 'static>() -> (Promise<T>, Future<T>) {
    let cell: Arc<dyn HasCore<T>> = Arc::new(Bare(Core::new(next_task_id(), true)));
    (
        Promise {
            cell: Some(cell.clone()),
        },
        Future { cell },
    )
}

impl<T: Send + 'static> Promise<T> {
    #[cfg(all(test, pool_loom))]
    pub(crate) fn from_cell(cell: Arc<dyn HasCore<T>>) -> Self {
        Promise { cell: Some(cell) }
    }

    fn core(&self) -> &Core<T> {
        self.cell
            .as_ref()
            .expect("promise present until consumed")
            .core()
    }

    /// Mark the task started: `Pending → Running`. False if it was cancelled (then do not
    /// run it).
    pub fn start(&self) -> bool {
        self.core().start()
    }

    /// Resolve the future (`Done` for `Ok`, `Failed` or `Cancelled` for `Err`). Ignored if the
    /// future was already resolved (cancelled, killed, timed out).
    pub fn complete(mut self, r: Result<T, TaskError>) {
        let cell = self.cell.take().expect("promise present until consumed");
        let _ = cell.core().complete(r, FROM_PENDING | FROM_RUNNING);
    }

    /// Let [`Future::kill`] reach the worker running this task.
    pub fn set_killer(&self, k: Killer) {
        self.core().set_killer(k)
    }

    /// Has the future been resolved already (for example cancelled or killed)?
    pub fn is_done(&self) -> bool {
        self.core().is_terminal()
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.core().id()
    }
}

impl<T: Send + 'static> Drop for Promise<T> {
    fn drop(&mut self) {
        if let Some(cell) = self.cell.take() {
            let _ = cell
                .core()
                .complete(Err(TaskError::Cancelled), FROM_PENDING | FROM_RUNNING);
        }
    }
}

impl<T: Send + 'static> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(pool_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    fn bounded<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("hung past the watchdog")
    }

    #[test]
    fn states_move_pending_running_done() {
        let (p, f) = promise::<u8>();
        assert_eq!(f.state(), State::Pending);
        assert!(p.start());
        assert_eq!(f.state(), State::Running);
        assert!(!f.cancel(), "cancel only works while pending");
        p.complete(Ok(1));
        assert_eq!(f.state(), State::Done);
        assert!(f.state().is_finished());
        assert_eq!(f.result(), Ok(1));
    }

    #[test]
    fn failed_and_cancelled_states() {
        let (p, f) = promise::<u8>();
        p.complete(Err(TaskError::Shutdown));
        assert_eq!(f.state(), State::Failed);
        let (p, f) = promise::<u8>();
        assert!(f.cancel());
        assert!(!f.cancel());
        assert!(!p.start());
        p.complete(Ok(3));
        assert_eq!(f.result(), Err(TaskError::Cancelled));
    }

    #[test]
    fn dropped_promise_resolves_cancelled() {
        let (p, f) = promise::<u8>();
        drop(p);
        assert_eq!(f.result(), Err(TaskError::Cancelled));
    }

    #[test]
    fn blocking_result_waits_for_another_thread() {
        let (p, f) = promise::<String>();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            p.complete(Ok("late".into()));
        });
        assert_eq!(bounded(move || f.result()), Ok("late".to_string()));
    }

    #[test]
    fn timeouts_hand_the_future_back() {
        let (p, f) = promise::<u8>();
        assert!(!f.wait_timeout(Duration::from_millis(5)));
        let mut f = f.result_timeout(Duration::from_millis(5)).unwrap_err();
        assert_eq!(f.try_result(), None);
        p.complete(Ok(2));
        assert!(f.wait_timeout(Duration::from_millis(5)));
        assert_eq!(f.try_result(), Some(Ok(2)));
        assert_eq!(f.try_result(), None, "taken once");
    }

    #[test]
    fn callbacks_run_once_early_or_late() {
        let n = Arc::new(AtomicUsize::new(0));
        let (p, f) = promise::<u8>();
        let n1 = n.clone();
        f.on_done(move |r| {
            assert_eq!(r, Ok(&4));
            n1.fetch_add(1, Ordering::SeqCst);
        });
        p.complete(Ok(4));
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let n2 = n.clone();
        f.on_done(move |_| {
            n2.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(n.load(Ordering::SeqCst), 11);
        assert_eq!(
            f.peek(|r| r.map(|r| r.copied().map_err(Clone::clone))),
            Some(Ok(4))
        );
        assert_eq!(f.result(), Ok(4));
    }

    #[test]
    fn a_panicking_callback_is_contained_and_counted() {
        let before = crate::callback_panics();
        let (p, f) = promise::<u8>();
        f.on_done(|_| panic!("callback bug"));
        let ran = Arc::new(AtomicUsize::new(0));
        let r2 = ran.clone();
        f.on_done(move |_| {
            r2.fetch_add(1, Ordering::SeqCst);
        });
        p.complete(Ok(1));
        assert!(crate::callback_panics() > before);
        assert_eq!(ran.load(Ordering::SeqCst), 1, "later callbacks still run");
        assert_eq!(f.result(), Ok(1));
    }

    #[test]
    fn kill_without_a_killer_only_cancels_pending() {
        let (p, f) = promise::<u8>();
        assert!(p.start());
        assert!(!f.kill(), "no killer: a running task cannot be killed");
        let killed = Arc::new(AtomicUsize::new(0));
        let k = killed.clone();
        p.set_killer(Killer::new(move || {
            k.fetch_add(1, Ordering::SeqCst);
        }));
        assert!(f.kill());
        assert_eq!(killed.load(Ordering::SeqCst), 1);
        assert!(f.is_cancelled());
        p.complete(Ok(9));
        assert_eq!(f.result(), Err(TaskError::Cancelled));
    }

    #[test]
    fn timing_records_pending_and_running() {
        let (p, f) = promise::<u8>();
        std::thread::sleep(Duration::from_millis(5));
        assert!(p.start());
        std::thread::sleep(Duration::from_millis(5));
        p.complete(Ok(0));
        let t = f.timing();
        assert!(t.pending().unwrap() >= Duration::from_millis(5));
        assert!(t.running().unwrap() >= Duration::from_millis(5));
        assert!(t.queued_at.unwrap() <= t.started_at.unwrap());
        assert!(t.started_at.unwrap() <= t.finished_at.unwrap());
    }

    #[test]
    fn ids_are_unique() {
        let (_a, fa) = promise::<u8>();
        let (_b, fb) = promise::<u8>();
        assert_ne!(fa.id(), fb.id());
    }

    /// `.await` works in tokio without any runtime dependency in pool-core.
    #[test]
    fn awaits_in_a_tokio_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let (p, f) = promise::<u32>();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            p.complete(Ok(99));
        });
        let r = rt.block_on(async move {
            tokio::time::timeout(Duration::from_secs(10), f)
                .await
                .expect("await hung")
        });
        assert_eq!(r, Ok(99));
    }
}
