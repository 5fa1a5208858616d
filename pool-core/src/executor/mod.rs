//! The [`Executor`] / [`Submit`] traits every pool implements, their options and reports, and
//! the provided `map` family (in `map`), written once on top of `submit`.

mod backend_pool;
mod map;
mod parallel;

use std::time::Duration;

pub use backend_pool::{BackendPool, Erased};
pub use map::{ChunkSize, MapIter, MapOptions, Progress};
pub use parallel::Parallel;

use crate::error::{SubmitError, TaskError};
use crate::future::Future;
use crate::task::{Call, ChunkFn, Task};

/// How to shut a pool down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shutdown {
    /// Refuse new tasks, run everything queued, then stop the workers.
    Wait,
    /// Refuse new tasks, cancel the queued ones, wait for the running ones.
    CancelPending,
    /// Refuse new tasks, cancel the queued ones, kill the running ones (backends that can
    /// kill a worker; others wait for the running tasks as with `CancelPending`).
    Kill,
}

/// What a shutdown did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Queued tasks that were cancelled.
    pub cancelled: usize,
    /// Running tasks whose worker was killed.
    pub killed: usize,
    /// Errors of finalizers that ran during the shutdown.
    pub finalizer_errors: Vec<String>,
    /// Workers still running when the shutdown stopped waiting (its deadline passed); they
    /// exit on their own when their task ends.
    pub unfinished_workers: usize,
}

/// A snapshot of a pool's counters. Counters only grow; gauges (`workers`, `busy`, `idle`,
/// `pending`) are the current values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Live workers (including ones starting).
    pub workers: usize,
    /// Workers running a task.
    pub busy: usize,
    /// Workers waiting for a task.
    pub idle: usize,
    /// Tasks queued, not started.
    pub pending: usize,
    /// Tasks accepted by `submit`.
    pub submitted: u64,
    /// Tasks that finished with a value.
    pub completed: u64,
    /// Tasks that finished with an error (panic, worker death, timeout, ...).
    pub failed: u64,
    /// Tasks cancelled (before or while running).
    pub cancelled: u64,
    /// Tasks that timed out (also counted in `failed`).
    pub timed_out: u64,
    /// Workers replaced after dying or being killed.
    pub replaced: u64,
    /// Workers replaced because of `max_tasks_per_worker` or `max_memory_per_worker`.
    pub recycled: u64,
    /// Workers started (successfully) in total.
    pub spawned: u64,
    /// Workers that died unexpectedly.
    pub died: u64,
    /// Workers that exited because they were idle longer than `idle_timeout`.
    pub idle_exits: u64,
    /// Worker starts that failed.
    pub start_failures: u64,
    /// `on_done` callbacks that panicked on this pool's threads (contained).
    pub callback_panics: u64,
    /// Tasks a calling thread ran on a borrowed idle worker (`ProcessPool::apply`); also
    /// counted in `submitted` and `completed` or `failed`.
    pub lent: u64,
    /// Which executor (see [`Executor::executor_id`]).
    pub executor_id: u64,
}

/// Per-submit options.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let o = pool::SubmitOptions::new().timeout(Duration::from_secs(1)).label("resize");
/// assert_eq!(o.label.as_deref(), Some("resize"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubmitOptions {
    /// Time limit for this task once it starts (overrides the pool's `task_timeout`).
    pub timeout: Option<Duration>,
    /// A name for the task in errors and reports (default: `task #N`).
    pub label: Option<String>,
    /// Record [`Timing`](crate::Timing) for this task even if the pool does not by default.
    pub timing: bool,
}

impl SubmitOptions {
    /// No timeout, no label, pool-default timing.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set the time limit.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }
    /// Set the label.
    pub fn label(mut self, l: impl Into<String>) -> Self {
        self.label = Some(l.into());
        self
    }
    /// Ask for timing.
    pub fn timing(mut self, on: bool) -> Self {
        self.timing = on;
        self
    }
}

/// A pool: shut it down, read its stats, and `map` over it. Submitting is [`Submit`], one
/// impl per task shape the pool accepts; the `map` family needs only
/// `Submit<Call<ChunkFn<F>, Vec<A>>>`, so generic code written against `Executor` runs on
/// threads, processes or a custom backend unchanged.
///
/// # Examples
///
/// The smallest executor: it runs each call right away on the submitting thread. Everything
/// in the `map` family comes with it.
///
/// ```
/// use pool::backend::{CallFn, Task, promise};
/// use pool::*;
///
/// struct Inline;
///
/// impl Executor for Inline {
///     fn shutdown(&self, _: Shutdown) -> ShutdownReport {
///         ShutdownReport::default()
///     }
///     fn stats(&self) -> Stats {
///         Stats::default()
///     }
/// }
///
/// impl<F: CallFn<A>, A: Send + 'static> Submit<Call<F, A>> for Inline {
///     fn submit_with(
///         &self,
///         task: Call<F, A>,
///         _: SubmitOptions,
///     ) -> Result<Future<F::Output>, SubmitError<Call<F, A>>> {
///         let (p, f) = promise();
///         p.complete(Ok(task.run()));
///         Ok(f)
///     }
/// }
///
/// assert_eq!(Inline.map_all(|x: u64| x * x, 0..5).unwrap(), vec![0, 1, 4, 9, 16]);
/// let firsts: Vec<u64> = Inline.map(|x: u64| x + 1, 0..).take(3).map(Result::unwrap).collect();
/// assert_eq!(firsts, vec![1, 2, 3]);
/// ```
pub trait Executor: Send + Sync {
    /// Shut down (see [`Shutdown`]). Bounded in time, idempotent: a second call returns an
    /// empty report.
    fn shutdown(&self, mode: Shutdown) -> ShutdownReport;

    /// The pool's counters.
    fn stats(&self) -> Stats;

    /// Identifies this executor among ones a process creates over time (0 if not tracked).
    fn executor_id(&self) -> u64 {
        0
    }

    /// Apply `f` to every item, in order, lazily: items are pulled and chunks submitted as the
    /// iterator is consumed, with a bounded look-ahead, so an endless iterator works in
    /// bounded memory. Chunk size is automatic (see [`ChunkSize::Auto`]). Each item is
    /// `Ok(value)` or its own error: a panicking item fails only itself.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool::{Executor, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().max_workers(2).build()?;
    /// let halves: Vec<_> = pool
    ///     .map(|x: u32| { assert!(x != 3, "three"); x / 2 }, 0..5)
    ///     .collect();
    /// assert_eq!(halves[..3], [Ok(0), Ok(0), Ok(1)]);
    /// let err = halves[3].as_ref().unwrap_err();
    /// assert!(err.is_panic());
    /// assert!(err.to_string().starts_with("task panicked on item 3: three"));
    /// assert_eq!(halves[4], Ok(2));
    ///
    /// // Lazy: an endless input is fine, in bounded memory.
    /// let first: Vec<u64> = pool.map(|x: u64| x * x, 1..).take(3).map(Result::unwrap).collect();
    /// assert_eq!(first, [1, 4, 9]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn map<'a, F, A, R, I>(&'a self, f: F, items: I) -> MapIter<'a, R>
    where
        Self: Submit<Call<ChunkFn<F>, Vec<A>>> + Sized,
        F: Fn(A) -> R + Clone + Send + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'a,
    {
        self.map_with(f, items, MapOptions::default())
    }

    /// Like [`Executor::map`], yielding results as chunks finish (not in input order).
    ///
    /// # Examples
    ///
    /// ```
    /// use pool::{Executor, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().max_workers(2).build()?;
    /// let mut squares: Vec<u64> = pool
    ///     .map_unordered(|x: u64| x * x, 0..100)
    ///     .collect::<Result<_, _>>()?;
    /// squares.sort_unstable();
    /// assert_eq!(squares[..4], [0, 1, 4, 9]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn map_unordered<'a, F, A, R, I>(&'a self, f: F, items: I) -> MapIter<'a, R>
    where
        Self: Submit<Call<ChunkFn<F>, Vec<A>>> + Sized,
        F: Fn(A) -> R + Clone + Send + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'a,
    {
        self.map_with(f, items, MapOptions::default().ordered(false))
    }

    /// Apply `f` to every item and collect the values in order.
    ///
    /// # Errors
    ///
    /// The first error in input order.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool::{Executor, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().max_workers(2).build()?;
    /// let lengths = pool.map_all(|s: &'static str| s.len(), ["a", "bb", "ccc"])?;
    /// assert_eq!(lengths, [1, 2, 3]);
    /// assert!(pool.map_all(|x: u8| 10 / x, [1, 0, 2]).is_err()); // a panic, as an error
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn map_all<F, A, R, I>(&self, f: F, items: I) -> Result<Vec<R>, TaskError>
    where
        Self: Submit<Call<ChunkFn<F>, Vec<A>>> + Sized,
        F: Fn(A) -> R + Clone + Send + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
    {
        self.map(f, items).collect()
    }

    /// `map` with options: chunk size, look-ahead, per-chunk timeout, order, progress.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use pool::{ChunkSize, Executor, MapOptions, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().max_workers(2).build()?;
    /// let opts = MapOptions::default()
    ///     .chunk_size(ChunkSize::Fixed(64))
    ///     .timeout(Duration::from_secs(30));
    /// let total: u64 = pool
    ///     .map_with(|x: u64| x + 1, 0..1_000, opts)
    ///     .map(Result::unwrap)
    ///     .sum();
    /// assert_eq!(total, 500_500);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn map_with<'a, F, A, R, I>(&'a self, f: F, items: I, opts: MapOptions) -> MapIter<'a, R>
    where
        Self: Submit<Call<ChunkFn<F>, Vec<A>>> + Sized,
        F: Fn(A) -> R + Clone + Send + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'a,
    {
        MapIter::new(self, f, items.into_iter(), opts)
    }
}

/// Submitting one task shape `T` to a pool.
pub trait Submit<T: Task>: Executor {
    /// Queue `task`; the future resolves with its output or the reason it has none.
    ///
    /// # Errors
    ///
    /// The pool is shut down or broken, its bounded queue is full (`Rejection::Reject`), or
    /// the task could not be encoded; the task is handed back when it still exists.
    fn submit(&self, task: T) -> Result<Future<T::Output>, SubmitError<T>> {
        self.submit_with(task, SubmitOptions::default())
    }

    /// [`Submit::submit`] with a timeout, label or timing request.
    ///
    /// # Errors
    ///
    /// As [`Submit::submit`].
    fn submit_with(
        &self,
        task: T,
        opts: SubmitOptions,
    ) -> Result<Future<T::Output>, SubmitError<T>>;

    /// Run `task` and wait for its value: [`Submit::submit`] and [`Future::result`] in one
    /// call (`multiprocessing.Pool.apply`). A backend may run it more directly: a process
    /// pool lends an idle worker to the calling thread.
    ///
    /// # Errors
    ///
    /// The task's failure, or a refused submit as the error its future would have carried
    /// ([`SubmitError::to_task_error`]).
    fn apply(&self, task: T) -> Result<T::Output, TaskError> {
        match self.submit(task) {
            Ok(f) => f.result(),
            Err(e) => Err(e.to_task_error()),
        }
    }
}
