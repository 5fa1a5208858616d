//! [`ThreadPoolBuilder`]: by value, every default documented on its setter, validated by
//! [`ThreadPoolBuilder::build`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use pool_core::{EngineConfig, engine_defaults};

use crate::backend::{Hook, ThreadBackend, run_hook};
use crate::pool::ThreadPool;

pub use pool_core::BuildError;

/// What [`ThreadPool::test`] found wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelfTestError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] BuildError),
    /// The initializer failed.
    #[error("initializer failed: {0}")]
    Initializer(String),
    /// The finalizer failed.
    #[error("finalizer failed: {0}")]
    Finalizer(String),
    /// A worker thread could not be spawned with this configuration.
    #[error("could not spawn a worker thread: {0}")]
    Spawn(String),
}

/// Builds a [`ThreadPool`]. Every setter documents its default.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let pool = pool::ThreadPool::builder()
///     .name("resize")
///     .max_workers(4)
///     .min_workers(1)
///     .idle_timeout(Duration::from_secs(5))
///     .max_tasks_per_worker(10_000)
///     .build()
///     .unwrap();
/// assert_eq!(pool.submit(|| 1).unwrap().result(), Ok(1));
/// ```
#[derive(Clone)]
#[must_use]
pub struct ThreadPoolBuilder {
    pub(crate) cfg: EngineConfig,
    pub(crate) initializer: Option<Hook>,
    pub(crate) finalizer: Option<Hook>,
    pub(crate) shutdown_timeout: Option<Duration>,
}

impl Default for ThreadPoolBuilder {
    fn default() -> Self {
        ThreadPoolBuilder {
            cfg: engine_defaults("pool"),
            initializer: None,
            finalizer: None,
            shutdown_timeout: None,
        }
    }
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("cfg", &self.cfg)
            .field("initializer", &self.initializer.is_some())
            .field("finalizer", &self.finalizer.is_some())
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish()
    }
}

impl ThreadPoolBuilder {
    /// A builder with all defaults.
    pub fn new() -> Self {
        Self::default()
    }

    pool_core::engine_setters!(cfg, "pool");

    /// Run `f` on each worker thread when it starts. An `Err` (or a panic) breaks the pool:
    /// every pending future and every later submit fails with `Broken` and the cause.
    /// Default: none.
    pub fn initializer<E: fmt::Display>(
        mut self,
        f: impl Fn() -> Result<(), E> + Send + Sync + 'static,
    ) -> Self {
        self.initializer = Some(Arc::new(move || f().map_err(|e| e.to_string())));
        self
    }

    /// Run `f` on each worker thread before it exits cleanly; failures are reported in the
    /// [`ShutdownReport`](pool_core::ShutdownReport). Default: none.
    pub fn finalizer<E: fmt::Display>(
        mut self,
        f: impl Fn() -> Result<(), E> + Send + Sync + 'static,
    ) -> Self {
        self.finalizer = Some(Arc::new(move || f().map_err(|e| e.to_string())));
        self
    }

    /// How long [`Executor::shutdown`](pool_core::Executor::shutdown) waits for running
    /// tasks. Default `None`: as long as they take (threads cannot be killed).
    pub fn shutdown_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.shutdown_timeout = d.into();
        self
    }

    /// Check the configuration and build the pool.
    ///
    /// # Errors
    ///
    /// [`BuildError`] when a setting cannot work (zero `max_workers`, `min_workers` above
    /// `max_workers`, zero `queue_capacity` or `max_tasks_per_worker`, zero `idle_timeout`).
    ///
    /// # Examples
    ///
    /// ```
    /// let e = pool::ThreadPool::builder().max_workers(0).build().unwrap_err();
    /// assert!(e.to_string().contains("max_workers"));
    /// ```
    pub fn build(self) -> Result<ThreadPool, BuildError> {
        let name = self.cfg.name.clone();
        let backend = ThreadBackend {
            initializer: self.initializer,
            finalizer: self.finalizer,
        };
        ThreadPool::from_parts(backend, self.cfg, self.shutdown_timeout)
            .map_err(|source| BuildError::new("thread", name, source))
    }

    /// Validate without building.
    ///
    /// # Errors
    ///
    /// As [`ThreadPoolBuilder::build`].
    pub fn validate(&self) -> Result<(), BuildError> {
        self.cfg
            .validate()
            .map_err(|source| BuildError::new("thread", self.cfg.name.clone(), source))
    }

    /// The self-test behind [`ThreadPool::test`].
    pub(crate) fn self_test(&self) -> Result<(), SelfTestError> {
        self.validate()?;
        let init = self.initializer.clone();
        let fin = self.finalizer.clone();
        let mut b = std::thread::Builder::new().name(format!("{}-selftest", self.cfg.name));
        if let Some(sz) = self.cfg.stack_size {
            b = b.stack_size(sz);
        }
        let h = b
            .spawn(move || -> Result<(), SelfTestError> {
                if let Some(i) = &init {
                    run_hook(i).map_err(SelfTestError::Initializer)?;
                }
                if let Some(f) = &fin {
                    run_hook(f).map_err(SelfTestError::Finalizer)?;
                }
                Ok(())
            })
            .map_err(|e| SelfTestError::Spawn(e.to_string()))?;
        h.join()
            .unwrap_or_else(|_| Err(SelfTestError::Spawn("self-test thread panicked".into())))
    }
}

/// The builder's entry points on the pool itself.
impl ThreadPool {
    /// A builder with every default (see its setters).
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::default()
    }

    /// A pool with every default.
    ///
    /// # Errors
    ///
    /// Only if the defaults were invalid, which they are not.
    pub fn new() -> Result<ThreadPool, BuildError> {
        Self::builder().build()
    }

    /// Self-test a configuration (asyncpal's `test()`): validate it, then run its initializer
    /// and finalizer once on a fresh thread built like a worker, and report what failed.
    ///
    /// # Errors
    ///
    /// The first failure: invalid configuration, initializer, finalizer, thread spawn.
    ///
    /// # Examples
    ///
    /// ```
    /// use pool::{SelfTestError, ThreadPool};
    /// let b = ThreadPool::builder().initializer(|| Err::<(), _>("no database"));
    /// assert_eq!(
    ///     ThreadPool::test(&b),
    ///     Err(SelfTestError::Initializer("no database".into()))
    /// );
    /// ```
    pub fn test(builder: &ThreadPoolBuilder) -> Result<(), SelfTestError> {
        builder.self_test()
    }
}
