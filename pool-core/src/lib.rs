//! pool: shared vocabulary and the policy engine.
//!
//! This crate is the floor every backend stands on:
//!
//! - [`Task`], [`Call`], [`ChunkFn`]: what can be submitted;
//! - [`Executor`] and [`Submit`]: the one trait pair every pool implements, with `map`,
//!   `map_unordered`, `map_all` and `map_with` written once on top of `submit`;
//! - [`Future`] / [`Promise`]: the one state machine (Pending → Running → Done / Failed /
//!   Cancelled) shared by every backend, with blocking, polling, callbacks and
//!   `std::future::Future`; [`wait`], [`as_completed`], [`collect`] over many futures;
//! - [`TaskError`], [`SubmitError`], [`RemoteError`]: why a task produced no value;
//! - [`Engine`], [`Backend`], [`Worker`]: the policy engine (sizing, idle shrink, recycling,
//!   timeouts, failure policy, bounded queue, shutdown, statistics) that a backend reuses by
//!   implementing only how to start, feed and stop one worker.
//!
//! No OS-specific code lives here.
//!
//! # Examples
//!
//! ```
//! let (promise, future) = pool::backend::promise::<u32>();
//! std::thread::spawn(move || {
//!     if promise.start() {
//!         promise.complete(Ok(42));
//!     }
//! });
//! assert_eq!(future.result().unwrap(), 42);
//! ```

mod engine;
mod error;
mod executor;
mod future;
mod loom;
mod panic;
mod settings;
mod task;

pub use engine::{
    Backend, Engine, EngineConfig, FinalizeError, Killer, OnWorkerDeath, Pipeline, Rejection,
    RunContext, Runnable, StartError, Worker,
};
pub use error::{
    BrokenReason, CodecFailure, ConfigError, ExitReason, PanicInfo, RemoteError, Side, SubmitError,
    SubmitErrorKind, TaskError, TaskId, WorkerDied, WorkerId,
};
pub use executor::{
    BackendPool, ChunkSize, Erased, Executor, MapIter, MapOptions, Parallel, Progress, Shutdown,
    ShutdownReport, Stats, Submit, SubmitOptions,
};
pub use future::{
    AsCompleted, Future, Promise, ReturnWhen, State, Timing, WaitResult, as_completed,
    as_completed_ordered, collect, promise, wait,
};
pub use panic::{callback_panics, catch_panic};
pub use settings::{BuildError, engine_defaults};
pub use task::{Call, CallFn, ChunkFn, ChunkResults, Task};
