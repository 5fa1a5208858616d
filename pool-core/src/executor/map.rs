//! The `map` family, written once on top of `Submit<Call<ChunkFn<F>, Vec<A>>>`: items are
//! pulled lazily into chunks, at most `lookahead` chunks are in flight, and results come back
//! in input order (or as chunks finish).
//!
//! Automatic chunking works like joblib's auto batching: the first chunks are small; each
//! finished chunk reports how long it ran (its [`Timing`](crate::Timing), requested for map
//! chunks), and the next chunk size aims at [`MapOptions::target_chunk_time`], growing at most
//! 8× and shrinking at most 4× per step, capped so that a known-length input still gives every
//! worker several chunks.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use super::{Submit, SubmitOptions};
use crate::error::TaskError;
use crate::future::Future;
use crate::task::{Call, ChunkFn, ChunkResults};

/// How many items go into one task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkSize {
    /// Exactly this many (at least 1).
    Fixed(usize),
    /// Sized from the measured run time of earlier chunks (see the module docs).
    Auto,
}

/// Progress report callback for `map`: called on the consuming thread each time a chunk's
/// results are taken, with `(items done, total if known, items failed)`.
///
/// # Examples
///
/// ```
/// let p = pool::Progress::new(|done, total, failed| {
///     eprintln!("{done}/{total:?} ({failed} failed)");
/// });
/// # drop(p);
/// ```
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn(usize, Option<usize>, usize) + Send + Sync>);

impl Progress {
    /// Wrap a callback.
    pub fn new(f: impl Fn(usize, Option<usize>, usize) + Send + Sync + 'static) -> Self {
        Progress(Arc::new(f))
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Progress(..)")
    }
}

/// Options of [`Executor::map_with`](super::Executor::map_with).
///
/// # Examples
///
/// ```
/// use pool::{ChunkSize, MapOptions};
/// let o = MapOptions::default().chunk_size(ChunkSize::Fixed(100)).lookahead(4);
/// assert_eq!(o.chunk_size, ChunkSize::Fixed(100));
/// ```
#[derive(Clone, Debug)]
pub struct MapOptions {
    /// Items per task. Default: [`ChunkSize::Auto`].
    pub chunk_size: ChunkSize,
    /// Chunks in flight at most. Default: 4 × the machine's available parallelism.
    pub lookahead: usize,
    /// Time limit per chunk once it starts. Default: none (the pool's `task_timeout`).
    pub timeout: Option<Duration>,
    /// Yield in input order (default) or as chunks finish.
    pub ordered: bool,
    /// Progress callback. Default: none.
    pub progress: Option<Progress>,
    /// What `Auto` aims at per chunk. Default: 2 ms.
    pub target_chunk_time: Duration,
    /// The largest chunk `Auto` makes. Default: 65 536 items.
    pub max_auto_chunk: usize,
}

fn default_parallelism() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            chunk_size: ChunkSize::Auto,
            lookahead: 4 * default_parallelism(),
            timeout: None,
            ordered: true,
            progress: None,
            target_chunk_time: Duration::from_millis(2),
            max_auto_chunk: 1 << 16,
        }
    }
}

impl MapOptions {
    /// Set the chunk size.
    pub fn chunk_size(mut self, c: ChunkSize) -> Self {
        self.chunk_size = c;
        self
    }
    /// Set the look-ahead (chunks in flight, at least 1).
    pub fn lookahead(mut self, n: usize) -> Self {
        self.lookahead = n.max(1);
        self
    }
    /// Set the per-chunk time limit.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// Keep input order (true) or yield as chunks finish (false).
    pub fn ordered(mut self, on: bool) -> Self {
        self.ordered = on;
        self
    }
    /// Set a progress callback.
    pub fn progress(mut self, p: Progress) -> Self {
        self.progress = Some(p);
        self
    }
    /// Set the `Auto` target time per chunk.
    pub fn target_chunk_time(mut self, d: Duration) -> Self {
        self.target_chunk_time = d;
        self
    }
}

/// The results of a `map`: `Ok(value)` per item, or the item's error — its own panic (with
/// its index in [`PanicInfo::item`](crate::PanicInfo::item)), or the failure of its whole
/// chunk (a worker death, a timeout, a refused submit).
///
/// Lazy: nothing is submitted before the first `next()`. Dropping it cancels the chunks that
/// have not started.
pub struct MapIter<'a, R> {
    /// Values of the current chunk: `next` takes from here without a virtual call.
    current: std::vec::IntoIter<R>,
    /// A failed chunk's error, still to be yielded this many more times.
    repeat: Option<(TaskError, usize)>,
    /// Results of a chunk in which some items panicked, still to be yielded.
    mixed: std::vec::IntoIter<Result<R, TaskError>>,
    inner: Box<dyn Source<R> + 'a>,
}

/// What the source hands the iterator next.
enum Refill<R> {
    Values(Vec<R>),
    /// A chunk whose items did not all return: each item's value or panic, in order.
    Mixed(Vec<Result<R, TaskError>>),
    Errors(TaskError, usize),
}

trait Source<R> {
    fn refill(&mut self) -> Option<Refill<R>>;
    fn total(&self) -> Option<usize>;
}

impl<R> MapIter<'_, R> {
    #[cold]
    fn next_slow(&mut self) -> Option<Result<R, TaskError>> {
        loop {
            if let Some(r) = self.mixed.next() {
                return Some(r);
            }
            if let Some((e, n)) = &mut self.repeat {
                let e = e.clone();
                *n -= 1;
                if *n == 0 {
                    self.repeat = None;
                }
                return Some(Err(e));
            }
            match self.inner.refill()? {
                Refill::Values(v) => {
                    self.current = v.into_iter();
                    if let Some(v) = self.current.next() {
                        return Some(Ok(v));
                    }
                }
                Refill::Mixed(v) => self.mixed = v.into_iter(),
                Refill::Errors(e, n) => {
                    if n > 1 {
                        self.repeat = Some((e.clone(), n - 1));
                    }
                    if n > 0 {
                        return Some(Err(e));
                    }
                }
            }
        }
    }
}

impl<R> Iterator for MapIter<'_, R> {
    type Item = Result<R, TaskError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self.current.next() {
            Some(v) => Some(Ok(v)),
            None => self.next_slow(),
        }
    }

    /// Exact when the input's length is known (every item yields one result, an error
    /// included), so `collect` allocates once.
    fn size_hint(&self) -> (usize, Option<usize>) {
        let buffered =
            self.current.len() + self.mixed.len() + self.repeat.as_ref().map_or(0, |r| r.1);
        match self.inner.total() {
            Some(t) => (t + buffered, Some(t + buffered)),
            None => (buffered, None),
        }
    }
}

impl<R> fmt::Debug for MapIter<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapIter").finish_non_exhaustive()
    }
}

struct Flight<R> {
    fut: Future<ChunkResults<R>>,
    /// Index in the input of the chunk's first item.
    start: usize,
    len: usize,
}

/// Chooses chunk sizes.
struct Chunker {
    mode: ChunkSize,
    size: usize,
    target: Duration,
    max: usize,
}

impl Chunker {
    fn new(opts: &MapOptions, total: Option<usize>) -> Self {
        let mut max = opts.max_auto_chunk.max(1);
        if let Some(t) = total {
            // Several chunks per worker for a known length.
            max = max.min((t / (4 * default_parallelism())).max(1));
        }
        Chunker {
            mode: opts.chunk_size,
            size: match opts.chunk_size {
                ChunkSize::Fixed(n) => n.max(1),
                ChunkSize::Auto => 1,
            },
            target: opts.target_chunk_time,
            max,
        }
    }

    fn observe(&mut self, len: usize, ran: Option<Duration>) {
        if self.mode != ChunkSize::Auto || len == 0 {
            return;
        }
        let Some(ran) = ran else { return };
        let per_item = ran.as_secs_f64() / len as f64;
        let ideal = if per_item <= 0.0 {
            self.size.saturating_mul(8)
        } else {
            (self.target.as_secs_f64() / per_item) as usize
        };
        let lo = (self.size / 4).max(1);
        let hi = self.size.saturating_mul(8);
        self.size = ideal.clamp(lo, hi).clamp(1, self.max);
    }
}

struct State<'a, E, F, I, R> {
    exec: &'a E,
    f: F,
    items: I,
    exhausted: bool,
    opts: MapOptions,
    chunker: Chunker,
    total: Option<usize>,
    /// Items taken from the input so far.
    pulled: usize,
    /// Items handed to the iterator so far (in chunks or as errors).
    yielded: usize,
    done: usize,
    failed: usize,
    // ordered
    flights: VecDeque<Flight<R>>,
    // unordered
    slots: Vec<Option<Flight<R>>>,
    in_flight: usize,
    tx: Option<mpsc::Sender<usize>>,
    rx: Option<mpsc::Receiver<usize>>,
    free: Vec<usize>,
    /// The pool refused a chunk: yielded for its items once everything in flight is drained.
    refused: Option<(TaskError, usize)>,
}

impl<'a, R> MapIter<'a, R> {
    pub(crate) fn new<E, F, A, I>(exec: &'a E, f: F, items: I, opts: MapOptions) -> Self
    where
        E: Submit<Call<ChunkFn<F>, Vec<A>>>,
        F: Fn(A) -> R + Clone + Send + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: Iterator<Item = A> + 'a,
    {
        let total = match items.size_hint() {
            (lo, Some(hi)) if lo == hi => Some(lo),
            _ => None,
        };
        let (tx, rx) = if opts.ordered {
            (None, None)
        } else {
            let (tx, rx) = mpsc::channel();
            (Some(tx), Some(rx))
        };
        let chunker = Chunker::new(&opts, total);
        MapIter {
            current: Vec::new().into_iter(),
            repeat: None,
            mixed: Vec::new().into_iter(),
            inner: Box::new(State {
                exec,
                f,
                items,
                exhausted: false,
                opts,
                chunker,
                total,
                pulled: 0,
                yielded: 0,
                done: 0,
                failed: 0,
                flights: VecDeque::new(),
                slots: Vec::new(),
                in_flight: 0,
                tx,
                rx,
                free: Vec::new(),
                refused: None,
            }),
        }
    }
}

impl<E, F, A, I, R> State<'_, E, F, I, R>
where
    E: Submit<Call<ChunkFn<F>, Vec<A>>>,
    F: Fn(A) -> R + Clone + Send + 'static,
    A: Send + 'static,
    R: Send + 'static,
    I: Iterator<Item = A>,
{
    fn in_flight(&self) -> usize {
        if self.opts.ordered {
            self.flights.len()
        } else {
            self.in_flight
        }
    }

    /// Submit chunks until the look-ahead is full or the input ends.
    fn fill(&mut self) {
        while !self.exhausted && self.in_flight() < self.opts.lookahead && self.refused.is_none() {
            let n = self.chunker.size;
            let chunk: Vec<A> = self.items.by_ref().take(n).collect();
            if chunk.len() < n {
                self.exhausted = true;
            }
            if chunk.is_empty() {
                break;
            }
            let len = chunk.len();
            self.pulled += len;
            let opts = SubmitOptions {
                timeout: self.opts.timeout,
                label: None,
                timing: self.chunker.mode == ChunkSize::Auto,
            };
            let call = Call {
                f: ChunkFn(self.f.clone()),
                arg: chunk,
            };
            match self.exec.submit_with(call, opts) {
                Ok(fut) => self.push(Flight {
                    fut,
                    start: self.pulled - len,
                    len,
                }),
                Err(e) => {
                    // The pool refuses work: report it for this chunk's items and stop.
                    // With a known length, every item still gets its result (the error), so
                    // the iterator yields exactly as many items as its size hint said.
                    let rest = match self.total {
                        Some(t) => t.saturating_sub(self.pulled - len).max(len),
                        None => len,
                    };
                    self.refused = Some((e.to_task_error(), rest));
                    self.exhausted = true;
                }
            }
        }
    }

    fn push(&mut self, fl: Flight<R>) {
        if self.opts.ordered {
            self.flights.push_back(fl);
            return;
        }
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let tx = self.tx.clone().expect("unordered map has a channel");
        fl.fut.on_done(move |_| {
            let _ = tx.send(idx);
        });
        self.slots[idx] = Some(fl);
        self.in_flight += 1;
    }

    fn next_flight(&mut self) -> Option<Flight<R>> {
        if self.opts.ordered {
            return self.flights.pop_front();
        }
        if self.in_flight == 0 {
            return None;
        }
        let idx = self.rx.as_ref()?.recv().ok()?;
        self.in_flight -= 1;
        self.free.push(idx);
        self.slots[idx].take()
    }

    fn report(&self) {
        if let Some(p) = &self.opts.progress {
            (p.0)(self.done, self.total, self.failed);
        }
    }
}

impl<E, F, A, I, R> Source<R> for State<'_, E, F, I, R>
where
    E: Submit<Call<ChunkFn<F>, Vec<A>>>,
    F: Fn(A) -> R + Clone + Send + 'static,
    A: Send + 'static,
    R: Send + 'static,
    I: Iterator<Item = A>,
{
    fn refill(&mut self) -> Option<Refill<R>> {
        self.fill();
        let Some(fl) = self.next_flight() else {
            // Nothing in flight and nothing more to submit.
            let (e, n) = self.refused.take()?;
            self.yielded += n;
            return Some(Refill::Errors(e, n));
        };
        let len = fl.len;
        fl.fut.wait();
        let ran = fl.fut.timing().running();
        self.yielded += len;
        match fl.fut.result() {
            Ok(out) => {
                self.chunker.observe(len, ran);
                self.done += len;
                self.failed += out.panics.len();
                self.report();
                if out.panics.is_empty() {
                    return Some(Refill::Values(out.values));
                }
                Some(Refill::Mixed(interleave(out, fl.start)))
            }
            Err(e) => {
                self.done += len;
                self.failed += len;
                self.report();
                Some(Refill::Errors(e, len))
            }
        }
    }

    fn total(&self) -> Option<usize> {
        self.total.map(|t| t.saturating_sub(self.yielded))
    }
}

impl<E, F, I, R> Drop for State<'_, E, F, I, R> {
    fn drop(&mut self) {
        for fl in &self.flights {
            fl.fut.cancel();
        }
        for fl in self.slots.iter().flatten() {
            fl.fut.cancel();
        }
    }
}

/// A chunk's values and panics back in input order; each panic names its item's index in
/// the whole input (`start`: the chunk's first).
fn interleave<R>(out: ChunkResults<R>, start: usize) -> Vec<Result<R, TaskError>> {
    let n = out.values.len() + out.panics.len();
    let mut values = out.values.into_iter();
    let mut panics = out.panics.into_iter().peekable();
    (0..n)
        .map(|i| match panics.next_if(|(at, _)| *at == i) {
            Some((_, mut p)) => {
                p.item = Some(start + i);
                Err(TaskError::Panicked(p))
            }
            None => values.next().ok_or_else(|| {
                TaskError::Broken(crate::error::BrokenReason::new(
                    "a chunk returned fewer values than items",
                ))
            }),
        })
        .collect()
}
