//! A queued task: its future's cell and its payload in one allocation, behind the
//! type-erased [`Job`] the queue holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pool::{Counters, SlotEnv};
use super::{RunContext, Worker};
use crate::error::{TaskError, TaskId};
use crate::future::cell::{Core, FROM_PENDING, FROM_RUNNING, HasCore, WithPayload};
use crate::panic::catch;

/// Something the engine can run on a worker: the engine's unit of work.
///
/// [`Engine::submit`](super::Engine::submit) wraps a backend input and a conversion into
/// one; in-process backends implement it for their own task types (a closure run right on the
/// engine thread) so a task costs one allocation.
pub trait Runnable<W>: Send + 'static {
    /// What the future resolves to.
    type Output: Send + 'static;

    /// Run on `worker`, on the engine thread that owns it. Panics are caught by the engine.
    ///
    /// # Errors
    ///
    /// The task's failure.
    fn run(self, worker: &mut W, ctx: &RunContext) -> Result<Self::Output, TaskError>;

    /// Run on the submitting thread, without a worker (for `Rejection::CallerRuns`). The
    /// default cannot, and hands the job back (the engine then blocks instead).
    ///
    /// # Errors
    ///
    /// `Err(self)` when the job needs a worker.
    fn run_here(self) -> Result<Result<Self::Output, TaskError>, Self>
    where
        Self: Sized,
    {
        Err(self)
    }
}

/// `Engine::submit`'s job: a backend input plus the conversion of the worker's output.
pub(crate) struct InputJob<I, C> {
    pub(crate) input: I,
    pub(crate) convert: C,
}

impl<W, C, T> Runnable<W> for InputJob<W::Input, C>
where
    W: Worker,
    C: FnOnce(W::Output) -> Result<T, TaskError> + Send + 'static,
    T: Send + 'static,
{
    type Output = T;
    fn run(self, worker: &mut W, ctx: &RunContext) -> Result<T, TaskError> {
        worker.run(self.input, ctx).and_then(self.convert)
    }
}

/// Per-task options that are rarely set, boxed so the common task carries one null pointer.
pub(crate) struct Meta {
    pub(crate) label: Option<Arc<str>>,
    pub(crate) timeout: Option<Duration>,
}

pub(crate) struct Entry<R> {
    pub(crate) job: R,
    pub(crate) meta: Option<Box<Meta>>,
}

/// How running a job went, for the engine's bookkeeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ran {
    /// Cancelled before it started; not run.
    Skipped,
    /// Finished with a value.
    Ok,
    /// Finished with an error; the worker may be dead.
    Err,
    /// Finished, but the future had already been resolved (timed out, killed); the worker
    /// may be dead.
    Lost,
}

/// The queue's view of a task.
pub(crate) trait Job<W>: Send + Sync {
    /// Run it on `worker`. Called once, by the thread that dequeued it.
    fn run(self: Arc<Self>, worker: &mut W, env: &SlotEnv<'_>) -> Ran;
    /// Resolve it with `e` without running it (queue drained). Called once, by the thread
    /// that dequeued it. True if this resolved it.
    fn fail(self: Arc<Self>, e: TaskError) -> bool;
}

/// Resolve a running task from outside (the watchdog).
pub(crate) trait Resolve: Send + Sync {
    /// Resolve a running task with `e`, calling `count` after winning and before waiters
    /// wake (so a caller that saw the error sees the count). True if it won.
    fn resolve_running(&self, e: TaskError, count: &dyn Fn()) -> bool;
    fn id(&self) -> TaskId;
}

impl<T: Send, P: Send> Resolve for WithPayload<T, P> {
    fn resolve_running(&self, e: TaskError, count: &dyn Fn()) -> bool {
        self.core.complete_counted(Err(e), FROM_RUNNING, count)
    }
    fn id(&self) -> TaskId {
        self.core.id()
    }
}

pub(crate) type Cell<R, W> = WithPayload<<R as Runnable<W>>::Output, Entry<R>>;

impl<W, R> Job<W> for Cell<R, W>
where
    W: Worker,
    R: Runnable<W>,
{
    #[inline]
    fn run(self: Arc<Self>, worker: &mut W, env: &SlotEnv<'_>) -> Ran {
        // SAFETY: this thread dequeued the job; the queue hands each entry out once.
        let Some(entry) = (unsafe { self.take_payload() }) else {
            return Ran::Skipped;
        };
        let core: &Core<R::Output> = &self.core;
        if !core.start() {
            drop(entry);
            env.counters().cancelled();
            return Ran::Skipped;
        }
        let (label, timeout) = match entry.meta {
            Some(m) => (m.label, m.timeout.or(env.task_timeout())),
            None => (None, env.task_timeout()),
        };
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let ctx = RunContext {
            task: core.id(),
            label,
            deadline,
            worker: env.worker_id(),
        };
        if let Some(d) = deadline {
            env.watch(self.clone(), d, timeout.unwrap_or_default(), &ctx);
        }
        if let Some(k) = env.task_killer(core.id()) {
            core.set_killer(k);
        }
        let job = entry.job;
        let r = match catch(|| job.run(worker, &ctx)) {
            Ok(r) => r,
            Err(p) => Err(TaskError::Panicked(p)),
        };
        env.task_finished();
        let r = match r {
            Err(TaskError::WorkerDied(_)) if env.killing() => Err(TaskError::Cancelled),
            r => r,
        };
        if let Err(e) = &r
            && !matches!(
                e,
                TaskError::Panicked(_) | TaskError::Encode(_) | TaskError::Decode(_)
            )
        {
            env.note_death(e);
        }
        let ok = r.is_ok();
        let cancelled = matches!(r, Err(TaskError::Cancelled));
        // Count before resolving, so a caller that saw the result sees the count.
        let counters: &Counters = env.counters();
        match core.complete_counted(r, FROM_RUNNING, || {
            if ok {
                counters.completed()
            } else if cancelled {
                counters.cancelled()
            } else {
                counters.failed()
            }
        }) {
            true if ok => Ran::Ok,
            true => Ran::Err,
            false => {
                // Resolved meanwhile: by the watchdog (counted there) or by `kill`.
                if core.state() == crate::future::cell::CANCELLED {
                    counters.cancelled();
                }
                Ran::Lost
            }
        }
    }

    fn fail(self: Arc<Self>, e: TaskError) -> bool {
        // SAFETY: this thread dequeued the job; the queue hands each entry out once.
        drop(unsafe { self.take_payload() });
        self.core.complete(Err(e), FROM_PENDING).is_ok()
    }
}

/// Build the cell for a job.
pub(crate) fn new_cell<W, R>(
    job: R,
    meta: Option<Box<Meta>>,
    id: TaskId,
    timed: bool,
) -> Arc<Cell<R, W>>
where
    W: Worker,
    R: Runnable<W>,
{
    Arc::new(WithPayload::new(Core::new(id, timed), Entry { job, meta }))
}

/// The future of a cell.
pub(crate) fn future_of<W, R>(cell: &Arc<Cell<R, W>>) -> crate::future::Future<R::Output>
where
    W: Worker,
    R: Runnable<W>,
{
    let c: Arc<dyn HasCore<R::Output>> = cell.clone();
    crate::future::Future::from_cell(c)
}
