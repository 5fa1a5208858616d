//! The engine policy every pool builder offers, defined once: the setters (the
//! [`engine_setters!`](crate::engine_setters) macro, which writes them as inherent methods of
//! a builder), the defaults they start from ([`engine_defaults`]) and the error `build`
//! returns ([`BuildError`]). Settings that only make sense for one backend (hooks,
//! environment, transport, codec, ...) stay in that backend's builder.

use std::sync::OnceLock;

use crate::engine::EngineConfig;
use crate::error::ConfigError;

/// A pool builder refused its settings: which kind of pool, its name, and what was wrong.
/// Every backend's `build` returns this.
///
/// # Examples
///
/// ```
/// let e = pool::BuildError::new(
///     "thread",
///     "resize",
///     pool::backend::ConfigError::new("max_workers must be at least 1"),
/// );
/// assert_eq!(
///     e.to_string(),
///     "cannot build thread pool \"resize\": invalid pool configuration: max_workers must be at least 1"
/// );
/// assert_eq!(e.name(), "resize");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot build {kind} pool {name:?}: {source}")]
pub struct BuildError {
    kind: &'static str,
    name: String,
    #[source]
    source: ConfigError,
}

impl BuildError {
    /// The pool of kind `kind` (`"thread"`, `"process"`) named `name` cannot be built
    /// because of `source`.
    pub fn new(kind: &'static str, name: impl Into<String>, source: ConfigError) -> Self {
        BuildError {
            kind,
            name: name.into(),
            source,
        }
    }

    /// The kind of pool: `"thread"`, `"process"`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The pool's name (the builder's `name` setting).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What was wrong.
    pub fn config_error(&self) -> &ConfigError {
        &self.source
    }
}

/// Keeps what was wrong, for callers that report a [`ConfigError`].
impl From<BuildError> for ConfigError {
    fn from(e: BuildError) -> ConfigError {
        e.source
    }
}

/// The engine policy a builder starts from: [`EngineConfig::default`] named `name`, with
/// `record_timing` off.
///
/// `record_timing` is off because it costs clock reads and an allocation on every task and
/// few callers read [`Future::timing`](crate::Future::timing); a caller who wants it turns it
/// on for the pool (`record_timing(true)`) or for one task
/// ([`SubmitOptions::timing`](crate::SubmitOptions::timing)), and `map` asks for it on its own
/// chunks when it sizes them.
///
/// `max_workers` asks the OS for the CPUs this process may use
/// ([`std::thread::available_parallelism`] reads the affinity mask and the cgroup quota
/// files), which is done once per process: the count is that of the first builder made.
pub fn engine_defaults(name: impl Into<String>) -> EngineConfig {
    static DEFAULT: OnceLock<EngineConfig> = OnceLock::new();
    EngineConfig {
        name: name.into(),
        record_timing: false,
        ..DEFAULT.get_or_init(EngineConfig::default).clone()
    }
}

/// Writes the engine policy setters as inherent methods of a pool builder that keeps its
/// [`EngineConfig`] in the field `$field`, so that every builder offers the same setters with
/// the same parameter types and documentation. `$default_name` is the builder's default
/// `name`, for the documentation only (the builder sets it, see [`engine_defaults`]).
///
/// Besides the setters it writes `engine_config(&self) -> &EngineConfig`, the policy as set
/// so far.
///
/// ```ignore
/// impl ThreadPoolBuilder {
///     pool_core::engine_setters!(cfg, "pool");
///     // backend-specific setters ...
/// }
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! engine_setters {
    ($field:ident, $default_name:literal) => {
        /// At most this many workers. Must be at least 1. Default: the CPUs this process may
        /// use ([`std::thread::available_parallelism`], which honours the affinity mask and
        /// the cgroup CPU quota), counted once per process, when its first builder is made.
        pub fn max_workers(mut self, n: usize) -> Self {
            self.$field.max_workers = n;
            self
        }

        /// Workers kept alive even when idle, started when the pool is built. Must not
        /// exceed `max_workers`. Default 0.
        pub fn min_workers(mut self, n: usize) -> Self {
            self.$field.min_workers = n;
            self
        }

        /// An idle worker above `min_workers` exits after this long; `None` keeps idle
        /// workers. Takes a `Duration` or an `Option<Duration>`; must not be zero.
        /// Default 60 s.
        pub fn idle_timeout(mut self, d: impl Into<Option<::std::time::Duration>>) -> Self {
            self.$field.idle_timeout = d.into();
            self
        }

        /// Replace a worker (transparently) after it ran this many tasks. Must be at least
        /// 1. Default: never.
        pub fn max_tasks_per_worker(mut self, n: u64) -> Self {
            self.$field.max_tasks_per_worker = Some(n);
            self
        }

        /// Replace a worker whose resident memory, measured after each task, exceeds this
        /// many bytes. Only workers whose memory can be measured are checked: process
        /// workers are, thread workers are not (a thread pool ignores this setting).
        /// Default: no limit.
        pub fn max_memory_per_worker(mut self, bytes: u64) -> Self {
            self.$field.max_memory_per_worker = Some(bytes);
            self
        }

        /// Time limit per task once started; past it the task's future fails with
        /// `TaskError::TimedOut`. A process worker is then killed with its process tree and
        /// replaced; a thread cannot be killed, so its late result is discarded and the
        /// thread stays busy until the task returns. Default: none.
        pub fn task_timeout(mut self, d: ::std::time::Duration) -> Self {
            self.$field.task_timeout = Some(d);
            self
        }

        /// What a worker death does: fail the task it ran and replace the worker, or break
        /// the pool. Thread workers die only by a failing initializer. Default
        /// [`OnWorkerDeath::Replace`](pool_core::OnWorkerDeath::Replace).
        pub fn on_worker_death(mut self, policy: $crate::OnWorkerDeath) -> Self {
            self.$field.on_worker_death = policy;
            self
        }

        /// This many consecutive failures to start a worker break the pool. Must be at
        /// least 1. Default 3.
        pub fn max_start_failures(mut self, n: u32) -> Self {
            self.$field.max_start_failures = n;
            self
        }

        /// Bound the queue of pending tasks to `n` (at least 1). Default: unbounded.
        pub fn queue_capacity(mut self, n: usize) -> Self {
            self.$field.queue_capacity = Some(n);
            self
        }

        /// What `submit` does when the bounded queue is full: block, refuse, or run the
        /// task on the submitting thread (in-process tasks only; others block). Default
        /// [`Rejection::Block`](pool_core::Rejection::Block).
        pub fn rejection(mut self, r: $crate::Rejection) -> Self {
            self.$field.rejection = r;
            self
        }

        #[doc = concat!(
                            "Pool name; the engine's threads are named `{name}-{n}`. Default `\"",
                            $default_name,
                            "\"`."
                        )]
        pub fn name(mut self, name: impl Into<String>) -> Self {
            self.$field.name = name.into();
            self
        }

        /// Stack size in bytes of the engine's threads (in a thread pool, the threads that
        /// run the tasks). Default: Rust's default (2 MiB, or `RUST_MIN_STACK`).
        pub fn stack_size(mut self, bytes: usize) -> Self {
            self.$field.stack_size = Some(bytes);
            self
        }

        /// Record [`Timing`](pool_core::Timing) for every task (clock reads on every task).
        /// Default false: a future's `timing()` is empty unless its submit asked for it with
        /// [`SubmitOptions::timing`](pool_core::SubmitOptions::timing).
        pub fn record_timing(mut self, on: bool) -> Self {
            self.$field.record_timing = on;
            self
        }

        /// The engine policy set so far (what the setters above wrote).
        pub fn engine_config(&self) -> &$crate::EngineConfig {
            &self.$field
        }
    };
}
