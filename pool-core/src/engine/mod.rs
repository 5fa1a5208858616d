//! The policy engine: the one implementation of sizing, on-demand spawning, idle shrink,
//! recycling, timeouts, failure policy, the bounded queue and shutdown, shared by every
//! backend. A backend implements [`Backend`] (start one worker) and [`Worker`] (run one task,
//! report death, stop); the engine does the rest. See `README.md` beside this file for the
//! threads, the queue, the sleep/wake protocol and the life of a worker slot.

mod job;
mod lend;
mod pool;
mod queue;
mod watchdog;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use job::Runnable;
pub use pool::Engine;

use crate::error::{ConfigError, TaskError, TaskId, WorkerId};

/// Starts workers. The engine calls [`Backend::start`] on its own threads, several in
/// parallel.
pub trait Backend: Send + Sync + 'static {
    /// What a task hands the worker.
    type Input: Send + 'static;
    /// What the worker hands back.
    type Output: Send + 'static;
    /// One worker.
    type Worker: Worker<Input = Self::Input, Output = Self::Output>;

    /// Start one worker and run its initializer. Blocking.
    ///
    /// # Errors
    ///
    /// A [`StartError`]: counted as a start failure; [`StartError::Initializer`] breaks the
    /// pool with that cause; `max_start_failures` consecutive other failures break it too.
    fn start(&self, id: WorkerId) -> Result<Self::Worker, StartError>;
}

/// One worker, driven by one engine thread.
pub trait Worker: Send + 'static {
    /// What a task hands the worker.
    type Input: Send + 'static;
    /// What the worker hands back.
    type Output: Send + 'static;

    /// Run one task, blocking the calling engine thread until the worker answers or dies.
    ///
    /// # Errors
    ///
    /// The task's failure. `Err(TaskError::WorkerDied(..))` (or any error after which
    /// [`Worker::alive`] is false) means the worker is gone and the engine replaces it.
    fn run(&mut self, input: Self::Input, ctx: &RunContext) -> Result<Self::Output, TaskError>;

    /// Can another thread kill this worker while `run` blocks? (processes: yes; threads: no)
    fn killer(&self) -> Option<Killer> {
        None
    }

    /// The engine lends this worker to a caller thread for one task ([`Engine::call`]) with
    /// `true`, and takes it back with `false`. The caller has nothing else to do while it
    /// waits for the reply, unlike the engine's thread, which shares the CPU with every
    /// other: a process worker may poll for the reply a little before it blocks then.
    /// Default: nothing.
    fn lent(&mut self, lent: bool) {
        let _ = lent;
    }

    /// Is the worker still usable? Asked after a task failed.
    fn alive(&mut self) -> bool {
        true
    }

    /// The worker's process id, if it is a process.
    fn pid(&self) -> Option<u32> {
        None
    }

    /// Resident memory after the last task, for `max_memory_per_worker`.
    fn memory_bytes(&mut self) -> Option<u64> {
        None
    }

    /// Clean stop: run the finalizer and exit. Must return by `deadline` (kill if needed).
    ///
    /// # Errors
    ///
    /// The finalizer failed (reported in the shutdown report, never fatal).
    fn stop(self, deadline: Instant) -> Result<(), FinalizeError>;

    /// Pipelining: how many tasks may be sent to this worker before the oldest one's reply
    /// is received. The default, 1, means the engine only ever calls [`Worker::run`]; above 1
    /// it also uses [`Worker::send`] and [`Worker::recv`] (see the engine's `README.md`).
    fn max_in_flight(&self) -> usize {
        1
    }

    /// Pipelining: may `input` be sent while other tasks are in flight? Only asked when
    /// [`Worker::max_in_flight`] is above 1, for tasks without a time limit. A worker whose
    /// channel could block on a large send says no for large inputs (the engine then waits
    /// for the replies in flight and uses [`Worker::run`] for it).
    fn can_pipeline(&self, input: &Self::Input) -> bool {
        let _ = input;
        false
    }

    /// Pipelining: hand `input` to the worker without waiting for its reply. The worker
    /// starts it after the tasks sent before it, in order. The engine keeps `input` until
    /// the reply came (to run it elsewhere if the worker dies before starting it), then gives
    /// it back through [`Worker::recycle`].
    ///
    /// # Errors
    ///
    /// The task could not be delivered (the worker is gone: [`Worker::alive`] false).
    fn send(&mut self, input: &Self::Input, ctx: &RunContext) -> Result<(), TaskError> {
        let _ = (input, ctx);
        Err(TaskError::Broken(crate::error::BrokenReason::new(
            "this worker does not pipeline (max_in_flight is 1)",
        )))
    }

    /// Pipelining: wait for the reply to the oldest task sent and not yet received (`ctx`
    /// is that task's). Replies come in the order the tasks were sent.
    ///
    /// # Errors
    ///
    /// The task's failure. An error after which [`Worker::alive`] is false means the
    /// worker died while running *this* task; the tasks sent after it had not started.
    fn recv(&mut self, ctx: &RunContext) -> Result<Self::Output, TaskError> {
        let _ = ctx;
        Err(TaskError::Broken(crate::error::BrokenReason::new(
            "this worker does not pipeline (max_in_flight is 1)",
        )))
    }

    /// Pipelining: the input of a task that was sent and answered, handed back for reuse
    /// (buffers). The default drops it.
    fn recycle(&mut self, input: Self::Input) {
        drop(input);
    }
}

/// What a worker knows about the task it runs.
#[derive(Clone, Debug)]
pub struct RunContext {
    /// The task.
    pub task: TaskId,
    /// The task's label, if the submit gave one.
    pub label: Option<Arc<str>>,
    /// When the task's time limit expires, if it has one.
    pub deadline: Option<Instant>,
    /// The task's time limit, if it has one: what a `TimedOut` error reports as `after`
    /// (the deadline was computed from it when the task started).
    pub time_limit: Option<Duration>,
    /// The worker running it.
    pub worker: WorkerId,
}

impl RunContext {
    /// The label, or `task #N`: how errors name the task.
    pub fn task_name(&self) -> String {
        match &self.label {
            Some(l) => format!("{l} ({})", self.task),
            None => self.task.to_string(),
        }
    }
}

/// Kills a worker from another thread (its process tree, for process workers).
///
/// # Examples
///
/// ```
/// let k = pool_core::Killer::new(|| eprintln!("kill"));
/// # drop(k);
/// ```
#[derive(Clone)]
pub struct Killer(pub(crate) Arc<dyn Fn() + Send + Sync>);

impl Killer {
    /// A killer that runs `f`. `f` kills the worker and returns once it is dead (bounded:
    /// a few seconds at most), because the engine resolves the killed task (`TimedOut`,
    /// `Cancelled`) only after `f` returns — a caller who sees the error must be able to
    /// rely on the task no longer running. It runs on the thread that kills (the watchdog,
    /// a caller of `Future::kill`, `shutdown`) and must not wait for the worker's own engine
    /// thread.
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Self {
        Killer(Arc::new(f))
    }
}

impl fmt::Debug for Killer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Killer(..)")
    }
}

/// Why a worker could not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The initializer failed: the pool is broken with this cause.
    #[error("initializer failed: {0}")]
    Initializer(String),
    /// The worker could not be spawned.
    #[error("could not spawn a worker: {0}")]
    Spawn(String),
    /// The worker started but the handshake failed.
    #[error("worker handshake failed: {0}")]
    Handshake(String),
}

/// A finalizer failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("finalizer failed: {0}")]
pub struct FinalizeError(pub String);

/// What to do when the bounded queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Rejection {
    /// Block the submitter until there is room (or the pool shuts down).
    #[default]
    Block,
    /// Refuse: `SubmitErrorKind::QueueFull`, with the task handed back.
    Reject,
    /// Run the task on the submitting thread (in-process tasks only; others block).
    CallerRuns,
}

/// What a worker death does to the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum OnWorkerDeath {
    /// Fail only the task it ran (`WorkerDied`) and start a replacement.
    #[default]
    Replace,
    /// Break the pool (loky / `concurrent.futures` semantics): every pending task fails.
    BreakPool,
}

/// The engine's policy settings. Every backend's builder fills one of these.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Pool name; worker threads are named `{name}-{n}`. Default `"pool"`.
    pub name: String,
    /// Workers kept alive even when idle. Default 0.
    pub min_workers: usize,
    /// At most this many workers. Default: available parallelism.
    pub max_workers: usize,
    /// An idle worker above `min_workers` exits after this long. Default 60 s; `None` never.
    pub idle_timeout: Option<Duration>,
    /// Recycle a worker after this many tasks. Default `None`.
    pub max_tasks_per_worker: Option<u64>,
    /// Recycle a worker whose memory (`Worker::memory_bytes`, asked after each task) exceeds
    /// this many bytes. Each recycle is a `tracing` event, the pool's first at WARN level.
    /// Default `None`.
    pub max_memory_per_worker: Option<u64>,
    /// Time limit per task once started. Default `None`.
    pub task_timeout: Option<Duration>,
    /// Bound the queue of pending tasks. Default `None` (unbounded).
    pub queue_capacity: Option<usize>,
    /// What a full bounded queue does. Default [`Rejection::Block`].
    pub rejection: Rejection,
    /// What a worker death does. Default [`OnWorkerDeath::Replace`].
    pub on_worker_death: OnWorkerDeath,
    /// This many consecutive start failures break the pool. Default 3.
    pub max_start_failures: u32,
    /// Record [`Timing`](crate::Timing) for every task (two or three clock reads per task).
    /// Default true.
    pub record_timing: bool,
    /// Stack size of engine threads. Default `None` (Rust's default).
    pub stack_size: Option<usize>,
    /// How long `Worker::stop` may take. Default 5 s.
    pub stop_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            name: "pool".to_string(),
            min_workers: 0,
            max_workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            idle_timeout: Some(Duration::from_secs(60)),
            max_tasks_per_worker: None,
            max_memory_per_worker: None,
            task_timeout: None,
            queue_capacity: None,
            rejection: Rejection::Block,
            on_worker_death: OnWorkerDeath::Replace,
            max_start_failures: 3,
            record_timing: true,
            stack_size: None,
            stop_timeout: Duration::from_secs(5),
        }
    }
}

impl EngineConfig {
    /// Check that the settings can work.
    ///
    /// # Errors
    ///
    /// `max_workers` is 0, `min_workers > max_workers`, a zero `queue_capacity`,
    /// `max_tasks_per_worker` or `max_start_failures`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_workers == 0 {
            return Err(ConfigError::new("max_workers must be at least 1"));
        }
        if self.min_workers > self.max_workers {
            return Err(ConfigError::new(format!(
                "min_workers ({}) must not exceed max_workers ({})",
                self.min_workers, self.max_workers
            )));
        }
        if self.queue_capacity == Some(0) {
            return Err(ConfigError::new("queue_capacity must be at least 1"));
        }
        if self.max_tasks_per_worker == Some(0) {
            return Err(ConfigError::new("max_tasks_per_worker must be at least 1"));
        }
        if self.max_start_failures == 0 {
            return Err(ConfigError::new("max_start_failures must be at least 1"));
        }
        if self.idle_timeout == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "idle_timeout must be positive (use None to keep idle workers)",
            ));
        }
        Ok(())
    }
}
