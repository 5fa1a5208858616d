//! [`ThreadPool`]: the engine with the thread backend, and the process-wide [`shared`] pool.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pool_core::{
    BrokenReason, Call, CallFn, ChunkFn, ConfigError, Engine, EngineConfig, Executor, Future,
    MapIter, MapOptions, Parallel, Shutdown, ShutdownReport, Stats, Submit, SubmitError,
    SubmitOptions, TaskError,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{CallJob, ClosureJob, ThreadBackend};
use crate::direct::{self, Helpers};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A pool of worker threads. Cheap to clone (clones share the pool); the pool shuts down
/// (cancelling queued tasks, without waiting) when the last clone is dropped.
///
/// # Examples
///
/// ```
/// use pool::{Executor, Shutdown};
/// let pool = pool::ThreadPool::builder().max_workers(2).build().unwrap();
/// let futs: Vec<_> = (0..4u32).map(|i| pool.submit(move || i * 10).unwrap()).collect();
/// assert_eq!(pool::collect(futs).unwrap(), vec![0, 10, 20, 30]);
/// let report = pool.shutdown(Shutdown::Wait);
/// assert_eq!(report.cancelled, 0);
/// ```
#[derive(Clone)]
pub struct ThreadPool {
    engine: Engine<ThreadBackend>,
    id: u64,
    shutdown_timeout: Option<Duration>,
    shared: bool,
    has_initializer: bool,
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("id", &self.id)
            .field("stats", &self.stats())
            .finish()
    }
}

impl ThreadPool {
    pub(crate) fn from_parts(
        backend: ThreadBackend,
        cfg: EngineConfig,
        shutdown_timeout: Option<Duration>,
    ) -> Result<ThreadPool, ConfigError> {
        let has_initializer = backend.initializer.is_some();
        Ok(ThreadPool {
            engine: Engine::new(backend, cfg)?,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shutdown_timeout,
            shared: false,
            has_initializer,
        })
    }

    /// Run `f` on the pool.
    ///
    /// # Errors
    ///
    /// The pool is shut down or broken, or its bounded queue is full with
    /// `Rejection::Reject`; `f` is handed back.
    #[inline]
    pub fn submit<F, R>(&self, f: F) -> Result<Future<R>, SubmitError<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.submit_with(f, SubmitOptions::default())
    }

    /// Run `f` on the pool and wait for its value (`submit(f)?.result()` in one call).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = pool::ThreadPool::builder().max_workers(2).build()?;
    /// assert_eq!(pool.apply(|| 6 * 7)?, 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The task's failure, or a refused submit as the error its future would have carried.
    pub fn apply<F, R>(&self, f: F) -> Result<R, TaskError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        Submit::apply(self, f)
    }

    /// Run `f` on the pool with options (timeout, label, timing).
    ///
    /// # Errors
    ///
    /// As [`ThreadPool::submit`].
    #[inline]
    pub fn submit_with<F, R>(&self, f: F, opts: SubmitOptions) -> Result<Future<R>, SubmitError<F>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.engine
            .submit_job(ClosureJob(f), opts)
            .map_err(|e| e.map_task(|j| j.0))
    }

    /// Apply `f` to every element of `items` on the pool's threads (and the calling thread,
    /// unless the pool has an initializer), writing results straight into the returned
    /// vector, in order. The slice is only borrowed: this call returns after every element
    /// was processed. Like rayon's `items.par_iter().map(f).collect()`.
    ///
    /// # Errors
    ///
    /// The first panic in element order (the other elements' results are dropped), or the
    /// pool's refusal (shut down, broken).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = pool::ThreadPool::builder().build().unwrap();
    /// let words = vec!["a".to_string(), "bcd".to_string()];
    /// assert_eq!(pool.map_slice(|w: &String| w.len(), &words), Ok(vec![1, 3]));
    /// ```
    pub fn map_slice<F, A, R>(&self, f: F, items: &[A]) -> Result<Vec<R>, TaskError>
    where
        F: Fn(&A) -> R + Clone + Send + 'static,
        A: Sync + 'static,
        R: Send + 'static,
    {
        direct::map_slice(self, f, items)
    }

    /// Change `max_workers` (at least 1); extra threads exit after their current task.
    pub fn resize(&self, max_workers: usize) {
        self.engine.resize(max_workers)
    }

    /// Start up to `n` more threads now.
    pub fn spawn_workers(&self, n: usize) {
        self.engine.spawn_workers(n)
    }

    /// Why the pool is broken, if it is.
    pub fn is_broken(&self) -> Option<BrokenReason> {
        self.engine.is_broken()
    }

    /// Has the pool been shut down? (Never for the [`shared`] pool.)
    ///
    /// # Examples
    ///
    /// ```
    /// use pool::{Executor, Shutdown, ThreadPool};
    ///
    /// let pool = ThreadPool::builder().max_workers(3).build()?;
    /// assert_eq!(pool.max_workers(), 3);
    /// assert!(!pool.is_shut_down());
    /// pool.shutdown(Shutdown::Wait);
    /// assert!(pool.is_shut_down());
    /// assert!(pool.submit(|| 1).unwrap_err().is_shutdown());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_shut_down(&self) -> bool {
        self.engine.is_shut_down()
    }

    /// The most workers the pool runs at once (as last resized).
    pub fn max_workers(&self) -> usize {
        self.engine.config().max_workers
    }

    /// Shut down, waiting for running tasks at most `d`.
    pub fn shutdown_timeout(&self, mode: Shutdown, d: Duration) -> ShutdownReport {
        if self.shared {
            return ShutdownReport::default();
        }
        self.engine.shutdown(mode, Some(d))
    }
}

impl Executor for ThreadPool {
    /// Shut down. For the [`shared`] pool this does nothing (other users rely on it).
    fn shutdown(&self, mode: Shutdown) -> ShutdownReport {
        if self.shared {
            return ShutdownReport::default();
        }
        self.engine.shutdown(mode, self.shutdown_timeout)
    }

    fn stats(&self) -> Stats {
        let mut s = self.engine.stats();
        s.executor_id = self.id;
        s
    }

    fn executor_id(&self) -> u64 {
        self.id
    }

    /// Workers (and the calling thread, unless the pool has an initializer) read the inputs
    /// and write the results directly into one output vector: the caller does work per
    /// chunk, not per item. A `Vec` input is taken over without copying.
    fn map_all<F, A, R, I>(&self, f: F, items: I) -> Result<Vec<R>, TaskError>
    where
        Self: Submit<Call<ChunkFn<F>, Vec<A>>> + Sized,
        F: Fn(A) -> R + Clone + Send + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
    {
        direct::map_iter(self, f, items.into_iter())
    }
}

/// The direct map's helper tasks run on the pool's threads.
impl Helpers for ThreadPool {
    fn max_workers(&self) -> usize {
        self.engine.config().max_workers
    }

    /// Not when the pool has an initializer (its thread-local setup may be needed), unless
    /// this is a pool thread.
    fn caller_may_help(&self) -> bool {
        !self.has_initializer || self.engine.on_worker_thread()
    }

    #[inline]
    fn submit_helper<T: FnOnce() + Send + 'static>(&self, task: T) -> Result<(), TaskError> {
        self.submit(task).map(drop).map_err(|e| e.to_task_error())
    }
}

impl<F, R> Submit<F> for ThreadPool
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    #[inline]
    fn submit_with(&self, task: F, opts: SubmitOptions) -> Result<Future<R>, SubmitError<F>> {
        ThreadPool::submit_with(self, task, opts)
    }
}

impl<F, A> Submit<Call<F, A>> for ThreadPool
where
    F: CallFn<A>,
    A: Send + 'static,
{
    #[inline]
    fn submit_with(
        &self,
        task: Call<F, A>,
        opts: SubmitOptions,
    ) -> Result<Future<F::Output>, SubmitError<Call<F, A>>> {
        self.engine
            .submit_job(CallJob(task), opts)
            .map_err(|e| e.map_task(|j| j.0))
    }
}

/// The process-wide thread pool: built on first use with every default (name
/// `"pool-shared"`), reused by every caller. `shutdown` on it does nothing.
///
/// # Examples
///
/// ```
/// let a = pool::shared().submit(|| 1).unwrap();
/// let b = pool::shared().submit(|| 2).unwrap();
/// assert_eq!(a.result().unwrap() + b.result().unwrap(), 3);
/// ```
pub fn shared() -> &'static ThreadPool {
    static SHARED: OnceLock<ThreadPool> = OnceLock::new();
    SHARED.get_or_init(|| {
        let mut p = ThreadPool::builder()
            .name("pool-shared")
            .build()
            .expect("default configuration is valid");
        p.shared = true;
        p
    })
}

/// Generic code over any pool ([`Parallel`]): the call runs on a pool thread (the serde bounds
/// are the process pools'; a thread pool does not encode anything).
impl Parallel for ThreadPool {
    fn submit_fn_with<F, A, R>(
        &self,
        f: F,
        arg: A,
        opts: SubmitOptions,
    ) -> Result<Future<R>, SubmitError<Call<F, A>>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        Submit::submit_with(self, Call { f, arg }, opts)
    }

    fn map_fn_with<'a, F, A, R, I>(&'a self, f: F, items: I, opts: MapOptions) -> MapIter<'a, R>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'a,
    {
        Executor::map_with(self, f, items, opts)
    }
}
