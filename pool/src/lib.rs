//! pool: robust, reusable thread and process pools.
//!
//! This crate is the front door: it re-exports the vocabulary of [`pool_core`] (futures,
//! errors, the [`Executor`] trait and its `map` family), the thread backend
//! ([`ThreadPool`]), the process backend ([`ProcessPool`]) and the codecs ([`codec`]).
//! Library authors who want only one backend can depend on the small crates directly.
//!
//! # Examples
//!
//! Threads:
//!
//! ```
//! use pool::{Executor, ThreadPool};
//!
//! let pool = ThreadPool::builder().max_workers(2).build()?;
//! let answer = pool.submit(|| 6 * 7)?;
//! assert_eq!(answer.result()?, 42);
//! let doubled: Vec<u64> = pool.map_all(|x: u64| x * 2, 0..4)?;
//! assert_eq!(doubled, [0, 2, 4, 6]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Processes — plain functions cross the process boundary without registration, and a
//! worker that crashes fails only its own task:
//!
//! ```
//! use pool::ProcessPool;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let pool = ProcessPool::builder().max_workers(2).build()?;
//! assert_eq!(pool.submit(square, 9)?.result()?, 81);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "progress")]
mod progress;

// The pools.
pub use pool_process::{
    HookResult, ProcessPool, ProcessPoolBuilder, StartMethod, TransportKind, named_task, reusable,
    worker_main,
};
pub use pool_thread::{SelfTestError, ThreadPool, ThreadPoolBuilder, shared};

// What every pool speaks: the traits, futures, options and errors.
pub use pool_core::{
    AsCompleted, BrokenReason, BuildError, Call, ChunkSize, CodecFailure, Executor, ExitReason,
    Future, MapIter, MapOptions, OnWorkerDeath, PanicInfo, Parallel, Progress, Rejection,
    RemoteError, ReturnWhen, Shutdown, ShutdownReport, Side, State, Stats, Submit, SubmitError,
    SubmitErrorKind, SubmitOptions, TaskError, TaskId, Timing, WaitResult, WorkerDied, WorkerId,
    as_completed, as_completed_ordered, callback_panics, collect, wait,
};
#[cfg(feature = "progress")]
pub use progress::progress_bar;

/// The traits and types most programs use, for a glob import that leaves the standard
/// prelude alone.
///
/// `use pool::*` would bring [`pool::Future`](crate::Future) into scope over the
/// prelude's `std::future::Future` trait, so `impl Future<Output = T>` would then name the
/// pool's future. This prelude has everything else a program needs to submit, map and
/// handle errors; name the pool's future as `pool::Future` where you need it (rarely: it is
/// what `submit` returns).
///
/// # Examples
///
/// ```
/// use pool::prelude::*;
///
/// // `Future` is still the standard trait here.
/// fn later(pool: &ThreadPool) -> impl Future<Output = u64> + use<> {
///     let handle: pool::Future<u64> = pool.submit(|| 6 * 7).unwrap();
///     async move { handle.await.unwrap() }
/// }
///
/// let pool = ThreadPool::builder().max_workers(1).build()?;
/// let squares: Vec<u64> = pool.map_all(|x: u64| x * x, 0..4)?;
/// assert_eq!(squares, [0, 1, 4, 9]);
/// let _answer = later(&pool); // an async value; any executor can drive it
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub mod prelude {
    pub use crate::{
        Executor, MapOptions, Parallel, ProcessPool, Shutdown, Submit, SubmitOptions, TaskError,
        ThreadPool,
    };
}

/// Workers on other machines (feature `nats`): [`NatsPool`](nats::NatsPool) submits named
/// tasks through a NATS JetStream server, [`NatsWorker`](nats::NatsWorker) serves them from a
/// local [`ProcessPool`] on any host. See the README's "Outgrowing one machine".
#[cfg(feature = "nats")]
pub mod nats {
    pub use pool_nats::{NatsPool, NatsPoolBuilder, NatsWorker};
}

/// Codecs: how arguments and results cross a process boundary.
///
/// See [`pool_codec`] for the measured comparison behind [`codec::DefaultCodec`].
pub mod codec {
    pub use pool_codec::*;
}

/// For people who build a backend: the engine, the worker traits and the pieces a custom
/// executor is made of. Programs that only use the pools do not need this module.
///
/// A backend implements [`Backend`](backend::Backend) (how to start a worker) and
/// [`Worker`](backend::Worker) (how to run one task on it); [`BackendPool`](backend::BackendPool)
/// turns the two into a whole executor — [`Executor`], [`Submit`] and [`Parallel`] — with the
/// engine's policies (timeouts, recycling, restarts, bounded queues). `pool-testkit`'s
/// conformance suite checks the result.
pub mod backend {
    pub use pool_core::{
        Backend, BackendPool, CallFn, ChunkFn, ChunkResults, ConfigError, Engine, EngineConfig,
        Erased, FinalizeError, Killer, Pipeline, Promise, RunContext, Runnable, StartError, Task,
        Worker, catch_panic, engine_defaults, promise,
    };
}
