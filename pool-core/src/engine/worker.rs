//! What a backend implements: [`Backend`] starts workers, [`Worker`] is the base contract
//! every worker meets (run one task, health, stop, kill), and [`Pipeline`] the extension a
//! worker opts into to have several tasks in flight and to be lent to callers.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{TaskError, TaskId, WorkerId};

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

/// One worker, driven by one engine thread: the contract every backend meets.
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

    /// The extension this worker opts into: several tasks in flight, and lending to callers
    /// ([`Engine::call`](super::Engine::call)). The default, `None`, means the engine only
    /// ever calls [`Worker::run`]. Asked once when the worker starts and whenever the engine
    /// uses the extension; a worker that opts in answers `Some(self)` every time.
    fn pipeline(
        &mut self,
    ) -> Option<&mut dyn Pipeline<Input = Self::Input, Output = Self::Output>> {
        None
    }
}

/// Pipelining and lending: what a worker adds to [`Worker`] to have tasks sent behind the one
/// it runs, and to be lent to a caller thread. The process backend implements it; the engine's
/// `README.md` gives the protocol.
pub trait Pipeline {
    /// The worker's [`Worker::Input`].
    type Input;
    /// The worker's [`Worker::Output`].
    type Output;

    /// How many tasks may be sent to this worker before the oldest one's reply is received
    /// (above 1 to pipeline at all).
    fn max_in_flight(&self) -> usize;

    /// May `input` be sent while other tasks are in flight? Only asked for tasks without a
    /// time limit. A worker whose channel could block on a large send says no for large
    /// inputs (the engine then waits for the replies in flight and uses [`Worker::run`]).
    fn can_pipeline(&self, input: &Self::Input) -> bool;

    /// Hand `input` to the worker without waiting for its reply. The worker starts it after
    /// the tasks sent before it, in order. The engine keeps `input` until the reply came (to
    /// run it elsewhere if the worker dies before starting it), then gives it back through
    /// [`Pipeline::recycle`].
    ///
    /// # Errors
    ///
    /// The task could not be delivered (the worker is gone: [`Worker::alive`] false).
    fn send(&mut self, input: &Self::Input, ctx: &RunContext) -> Result<(), TaskError>;

    /// Wait for the reply to the oldest task sent and not yet received (`ctx` is that
    /// task's). Replies come in the order the tasks were sent.
    ///
    /// # Errors
    ///
    /// The task's failure. An error after which [`Worker::alive`] is false means the
    /// worker died while running *this* task; the tasks sent after it had not started.
    fn recv(&mut self, ctx: &RunContext) -> Result<Self::Output, TaskError>;

    /// The input of a task that was sent and answered, handed back for reuse (buffers). The
    /// default drops it.
    fn recycle(&mut self, input: Self::Input) {
        drop(input);
    }

    /// The engine lends this worker to a caller thread for one task
    /// ([`Engine::call`](super::Engine::call)) with `true`, and takes it back with `false`.
    /// The caller has nothing else to do while it waits for the reply, unlike the engine's
    /// thread, which shares the CPU with every other: a process worker may poll for the reply
    /// a little before it blocks then. Default: nothing.
    fn lent(&mut self, lent: bool) {
        let _ = lent;
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
/// let k = pool::backend::Killer::new(|| eprintln!("kill"));
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
