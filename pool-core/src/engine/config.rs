//! The engine's policy settings: what every backend's builder fills in.

use std::time::Duration;

use crate::error::ConfigError;

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
