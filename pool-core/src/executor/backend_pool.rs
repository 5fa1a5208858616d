//! [`BackendPool`]: a whole executor from a [`Backend`] whose workers run calls in-process
//! (an [`Erased`] call in, its boxed value out).

use std::any::Any;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    Executor, MapIter, MapOptions, Parallel, Shutdown, ShutdownReport, Stats, Submit, SubmitOptions,
};
use crate::engine::{Backend, Engine, EngineConfig};
use crate::error::{BrokenReason, ConfigError, SubmitError, TaskError};
use crate::future::Future;
use crate::task::{Call, CallFn};

/// One call, its types erased, for a worker that runs calls in its own process (a thread, a
/// thread with a special stack, an embedded interpreter...): [`Erased::run`] runs it and
/// boxes its value.
pub struct Erased(Box<dyn ErasedCall>);

trait ErasedCall: Send {
    fn run(self: Box<Self>) -> Box<dyn Any + Send>;
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

impl<F: CallFn<A>, A: Send + 'static> ErasedCall for Call<F, A> {
    fn run(self: Box<Self>) -> Box<dyn Any + Send> {
        Box::new((*self).run())
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// A closure submitted as a task (`FnOnce() -> R`).
struct Thunk<F>(F);

impl<F: FnOnce() -> R + Send + 'static, R: Send + 'static> ErasedCall for Thunk<F> {
    fn run(self: Box<Self>) -> Box<dyn Any + Send> {
        Box::new((self.0)())
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// A boxed value unboxed as the task's result type.
fn unbox<T: 'static>(out: Box<dyn Any + Send>) -> Result<T, TaskError> {
    out.downcast::<T>().map(|v| *v).map_err(|_| {
        TaskError::Broken(BrokenReason::new(
            "the worker answered a value of another type than the call's",
        ))
    })
}

/// A refused task, handed back as it was put in.
fn unerase<T: 'static>(erased: Erased) -> T {
    *erased
        .0
        .into_any()
        .downcast::<T>()
        .expect("the task put in is the task handed back")
}

impl Erased {
    /// Run the call; its value, boxed (the pool unboxes it for the caller's future).
    pub fn run(self) -> Box<dyn Any + Send> {
        self.0.run()
    }
}

impl std::fmt::Debug for Erased {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Erased(..)")
    }
}

/// A complete executor — [`Executor`], [`Submit`] for calls, [`Parallel`], the `map` family —
/// from a [`Backend`] whose workers take an [`Erased`] call and answer its boxed value. A
/// third party implements `Backend` and `Worker` and gets the pool policy (sizing, idle
/// shrink, recycling, timeouts, failure policy, shutdown, statistics) from the engine.
///
/// # Examples
///
/// ```
/// use std::any::Any;
/// use std::time::Instant;
/// use pool::backend::*;
/// use pool::*;
///
/// /// Workers that run each call right on the engine's thread.
/// struct Here;
/// struct HereWorker;
///
/// impl Backend for Here {
///     type Input = Erased;
///     type Output = Box<dyn Any + Send>;
///     type Worker = HereWorker;
///     fn start(&self, _: WorkerId) -> Result<HereWorker, StartError> {
///         Ok(HereWorker)
///     }
/// }
///
/// impl Worker for HereWorker {
///     type Input = Erased;
///     type Output = Box<dyn Any + Send>;
///     fn run(&mut self, call: Erased, _: &RunContext) -> Result<Self::Output, TaskError> {
///         catch_panic(|| call.run()).map_err(TaskError::Panicked)
///     }
///     fn stop(self, _: Instant) -> Result<(), FinalizeError> {
///         Ok(())
///     }
/// }
///
/// let pool = BackendPool::new(Here, EngineConfig::default())?;
/// assert_eq!(pool.submit_fn(|x: u64| x + 1, 41)?.result()?, 42);
/// assert_eq!(pool.submit(|| "a closure")?.result()?, "a closure");
/// assert_eq!(pool.map_all(|x: u64| x * x, 0..4)?, [0, 1, 4, 9]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BackendPool<B>
where
    B: Backend<Input = Erased, Output = Box<dyn Any + Send>>,
{
    engine: Engine<B>,
}

impl<B> BackendPool<B>
where
    B: Backend<Input = Erased, Output = Box<dyn Any + Send>>,
{
    /// The pool, with `config`'s policy.
    ///
    /// # Errors
    ///
    /// The configuration is invalid.
    pub fn new(backend: B, config: EngineConfig) -> Result<Self, ConfigError> {
        Ok(BackendPool {
            engine: Engine::new(backend, config)?,
        })
    }

    /// The engine under the pool (resizing, its configuration, the backend).
    pub fn engine(&self) -> &Engine<B> {
        &self.engine
    }
}

impl<B> Clone for BackendPool<B>
where
    B: Backend<Input = Erased, Output = Box<dyn Any + Send>>,
{
    fn clone(&self) -> Self {
        BackendPool {
            engine: self.engine.clone(),
        }
    }
}

impl<B> std::fmt::Debug for BackendPool<B>
where
    B: Backend<Input = Erased, Output = Box<dyn Any + Send>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendPool")
            .field("engine", &self.engine)
            .finish()
    }
}

impl<B> Executor for BackendPool<B>
where
    B: Backend<Input = Erased, Output = Box<dyn Any + Send>>,
{
    fn shutdown(&self, mode: Shutdown) -> ShutdownReport {
        self.engine.shutdown(mode, None)
    }

    fn stats(&self) -> Stats {
        self.engine.stats()
    }
}

impl<B, F, A> Submit<Call<F, A>> for BackendPool<B>
where
    B: Backend<Input = Erased, Output = Box<dyn Any + Send>>,
    F: CallFn<A>,
    A: Send + 'static,
{
    fn submit_with(
        &self,
        task: Call<F, A>,
        opts: SubmitOptions,
    ) -> Result<Future<F::Output>, SubmitError<Call<F, A>>> {
        self.engine
            .submit(Erased(Box::new(task)), opts, unbox::<F::Output>)
            .map_err(|e| e.map_task(unerase::<Call<F, A>>))
    }
}

impl<B, F, R> Submit<F> for BackendPool<B>
where
    B: Backend<Input = Erased, Output = Box<dyn Any + Send>>,
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    fn submit_with(&self, task: F, opts: SubmitOptions) -> Result<Future<R>, SubmitError<F>> {
        self.engine
            .submit(Erased(Box::new(Thunk(task))), opts, unbox::<R>)
            .map_err(|e| e.map_task(|erased| unerase::<Thunk<F>>(erased).0))
    }
}

impl<B> Parallel for BackendPool<B>
where
    B: Backend<Input = Erased, Output = Box<dyn Any + Send>>,
{
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
