//! The thread backend: a worker is the engine thread itself; starting it runs the
//! initializer on that thread, stopping it runs the finalizer there.

use std::sync::Arc;
use std::time::Instant;

use pool_core::{
    Backend, CallFn, FinalizeError, RunContext, Runnable, StartError, TaskError, Worker, WorkerId,
};

/// A hook run on each worker thread: `Err(message)` reports a failure.
pub(crate) type Hook = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

pub(crate) struct ThreadBackend {
    pub(crate) initializer: Option<Hook>,
    pub(crate) finalizer: Option<Hook>,
}

/// One worker thread's state.
pub(crate) struct ThreadWorker {
    finalizer: Option<Hook>,
}

/// Run a hook, turning a panic into an error message.
pub(crate) fn run_hook(h: &Hook) -> Result<(), String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h())) {
        Ok(r) => r,
        Err(p) => Err(format!(
            "panicked: {}",
            p.downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "<non-string panic payload>".into())
        )),
    }
}

impl Backend for ThreadBackend {
    type Input = Box<dyn FnOnce() + Send>;
    type Output = ();
    type Worker = ThreadWorker;

    fn start(&self, _id: WorkerId) -> Result<ThreadWorker, StartError> {
        if let Some(init) = &self.initializer {
            run_hook(init).map_err(StartError::Initializer)?;
        }
        Ok(ThreadWorker {
            finalizer: self.finalizer.clone(),
        })
    }
}

impl Worker for ThreadWorker {
    type Input = Box<dyn FnOnce() + Send>;
    type Output = ();

    fn run(&mut self, input: Self::Input, _ctx: &RunContext) -> Result<(), TaskError> {
        input();
        Ok(())
    }

    fn stop(self, _deadline: Instant) -> Result<(), FinalizeError> {
        match &self.finalizer {
            Some(f) => run_hook(f).map_err(FinalizeError),
            None => Ok(()),
        }
    }
}

/// A closure task, run right on the engine thread.
pub(crate) struct ClosureJob<F>(pub(crate) F);

impl<F, R> Runnable<ThreadWorker> for ClosureJob<F>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    type Output = R;

    #[inline]
    fn run(self, _w: &mut ThreadWorker, _ctx: &RunContext) -> Result<R, TaskError> {
        Ok((self.0)())
    }

    fn run_here(self) -> Result<Result<R, TaskError>, Self> {
        Ok(Ok((self.0)()))
    }
}

/// A `Call` task, run right on the engine thread.
pub(crate) struct CallJob<F, A>(pub(crate) pool_core::Call<F, A>);

impl<F, A> Runnable<ThreadWorker> for CallJob<F, A>
where
    F: CallFn<A>,
    A: Send + 'static,
{
    type Output = F::Output;

    #[inline]
    fn run(self, _w: &mut ThreadWorker, _ctx: &RunContext) -> Result<F::Output, TaskError> {
        Ok(self.0.run())
    }

    fn run_here(self) -> Result<Result<F::Output, TaskError>, Self> {
        Ok(Ok(self.0.run()))
    }
}
