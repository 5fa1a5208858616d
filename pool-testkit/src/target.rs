//! [`Target`]: what an executor must offer to be put through the conformance suite and the
//! fault matrix — submitting and mapping plain `fn` items with serde-friendly values.
//! [`NamedTarget`]: what an executor of named tasks must offer for the named suite.
//!
//! Fn items have types that cannot be written down, so a suite generic over the executor
//! cannot name `Submit<Call<{fn square}, u64>>` in a bound; `pool_core::Parallel` states it
//! once, generically over every `F: Fn(A) -> R + Copy`, and every `Parallel` is a `Target`.

use pool_codec::Codec;
use pool_core::{Call, Executor, Future, Parallel, SubmitError};
use pool_process::ProcessPool;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A value that can cross any executor's boundary: serde both ways, `Send`, owned.
pub trait Value: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Value for T {}

/// A function that can be shipped to any executor: zero-sized in practice (a fn item or a
/// capture-free closure), `Copy`, shareable.
pub trait TaskFn<A, R>: Fn(A) -> R + Copy + Send + Sync + 'static {}
impl<A, R, F: Fn(A) -> R + Copy + Send + Sync + 'static> TaskFn<A, R> for F {}

/// An executor the suite can drive: any [`Parallel`] pool (`ThreadPool`, `ProcessPool`, a
/// `BackendPool`, or a type of your own that implements `Parallel`) is one, with nothing to
/// write — so the suite runs from a `tests/` directory on any executor.
pub trait Target: Parallel + Sized + 'static {
    /// Submit `f(arg)` with default options.
    ///
    /// # Errors
    ///
    /// As [`Parallel::submit_fn`].
    fn call<F, A, R>(&self, f: F, arg: A) -> Result<Future<R>, SubmitError<Call<F, A>>>
    where
        F: TaskFn<A, R>,
        A: Value,
        R: Value,
    {
        self.submit_fn(f, arg)
    }
}

impl<P: Parallel + 'static> Target for P {}

/// An executor of named tasks (registered with `pool_process::named_task!`), which the named
/// suite ([`conformance::run_named`](crate::conformance::run_named)) can drive: a
/// `ProcessPool` built with `named_tasks`, or a pool whose workers are elsewhere and know
/// tasks by their names only. Implement it for a type of your own (a newtype, if the type is
/// another crate's) by forwarding to its `submit_named`.
///
/// # Examples
///
/// ```
/// use pool_testkit::NamedTarget;
/// use pool_testkit::conformance::named::{SQUARE, TASKS};
///
/// let pool = pool_process::ProcessPool::builder()
///     .max_workers(1)
///     .named_tasks(TASKS)
///     .build()?;
/// let f = NamedTarget::submit_named::<u64, u64>(&pool, SQUARE, 9)?;
/// assert_eq!(f.result()?, 81);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait NamedTarget: Executor + Sized + 'static {
    /// Run the task registered as `name` on `arg`.
    ///
    /// # Errors
    ///
    /// The executor refused the task (shut down, an argument that cannot be encoded, a name
    /// it knows it does not serve, ...); the argument is handed back.
    fn submit_named<A, R>(&self, name: &str, arg: A) -> Result<Future<R>, SubmitError<A>>
    where
        A: Value,
        R: Value;
}

impl<C: Codec> NamedTarget for ProcessPool<C> {
    fn submit_named<A, R>(&self, name: &str, arg: A) -> Result<Future<R>, SubmitError<A>>
    where
        A: Value,
        R: Value,
    {
        ProcessPool::submit_named(self, name, arg)
    }
}

/// Formerly implemented [`Target`]; every [`Parallel`] executor is a `Target` now, so this
/// expands to nothing (any arguments are accepted, for code written against it).
///
/// # Examples
///
/// ```
/// use pool_testkit::Target;
/// let pool = pool_thread::ThreadPool::builder().max_workers(1).build().unwrap();
/// fn double(x: u32) -> u32 { 2 * x }
/// assert_eq!(pool.call(double, 21).unwrap().result().unwrap(), 42);
/// ```
#[macro_export]
macro_rules! impl_target {
    ($($anything:tt)*) => {};
}

/// Re-exports for [`impl_target!`]; not public API.
#[doc(hidden)]
pub mod __rt {
    pub use pool_core::{
        Call, ChunkFn, Executor, Future, MapIter, MapOptions, Submit, SubmitError, SubmitOptions,
        TaskError,
    };
}
