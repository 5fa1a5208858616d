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
/// let (p, f) = pool_core::promise::<&str>();
/// assert_eq!(f.state(), pool_core::State::Pending);
/// assert!(p.start());
/// assert!(f.is_running());
/// p.complete(Ok("hi"));
/// assert!(f.is_done());
/// assert_eq!(f.result(), Ok("hi"));
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
    /// let (_p, f) = pool_core::promise::<u8>();
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
    /// let (p, f) = pool_core::promise::<u8>();
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

    /// Run `cb` with the result when the task finishes: on the thread that completes it, or
    /// right now on this thread if it already has. A panicking callback is contained (the
    /// thread carries on), printed by the panic hook and counted in
    /// [`callback_panics`](crate::callback_panics) and the pool's `Stats::callback_panics`.
    pub fn on_done(&self, cb: impl FnOnce(&Result<T, TaskError>) + Send + 'static) {
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
    pub fn peek<R>(&self, f: impl FnOnce(Option<&Result<T, TaskError>>) -> R) -> R {
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
/// let (p, f) = pool_core::promise();
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
