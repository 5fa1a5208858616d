//! A queued task: its future's cell and its payload in one allocation, behind the
//! type-erased [`Job`] the queue holds.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::slot::SlotEnv;
use super::stats::Counters;
use super::watchdog::Resolve;
use super::{RunContext, Worker};
use crate::error::{TaskError, TaskId};
use crate::future::cell::{Core, FROM_PENDING, FROM_RUNNING, HasCore, WithPayload};
use crate::panic::{catch, drop_contained, report_contained};

// User code the engine drops on its own threads (a cancelled or drained task's closure, a
// result nobody will take, a late result) may panic in `Drop`. Every such drop goes through
// `drop_contained`, so the panic is reported and the thread carries on: unwinding out of a
// job would kill its slot thread with its worker still counted, and the pool would hang.
const CANCELLED_TASK: &str = "dropping a cancelled task";
const DRAINED_TASK: &str = "dropping a task the pool will not run";
const FINISHED_TASK: &str = "dropping a finished task (its result, if nobody took it)";

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

    /// For pipelining workers ([`Pipeline::max_in_flight`](super::Pipeline::max_in_flight) above 1): the input this job
    /// hands the worker, if the job is just an input plus a conversion of the output (as
    /// [`Engine::submit`](super::Engine::submit)'s jobs are). The default: none, the job
    /// always goes through [`Runnable::run`].
    fn input(&self) -> Option<&W::Input>
    where
        W: Worker,
    {
        None
    }

    /// For pipelining workers: finish a job whose [`Runnable::input`] was sent with
    /// [`Pipeline::send`](super::Pipeline::send) and answered with `reply` (give the input back with
    /// [`Pipeline::recycle`](super::Pipeline::recycle)). Only called on jobs whose `input` is `Some`; the default
    /// resolves `reply`'s error or says the job cannot be finished this way.
    ///
    /// # Errors
    ///
    /// The task's failure.
    fn finish(
        self,
        worker: &mut W,
        reply: Result<W::Output, TaskError>,
    ) -> Result<Self::Output, TaskError>
    where
        W: Worker,
        Self: Sized,
    {
        let _ = worker;
        reply.and(Err(TaskError::Broken(crate::error::BrokenReason::new(
            "a job without an input was pipelined",
        ))))
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
    fn input(&self) -> Option<&W::Input> {
        Some(&self.input)
    }
    fn finish(self, worker: &mut W, reply: Result<W::Output, TaskError>) -> Result<T, TaskError> {
        if let Some(p) = worker.pipeline() {
            p.recycle(self.input);
        }
        reply.and_then(self.convert)
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
pub(crate) trait Job<W: Worker>: Send + Sync {
    /// Run it on `worker`. Called once, by the thread that dequeued it.
    fn run(self: Arc<Self>, worker: &mut W, env: &SlotEnv<'_>) -> Ran;
    /// Resolve it with `e` without running it (queue drained). Called once, by the thread
    /// that dequeued it. True if this resolved it.
    fn fail(self: Arc<Self>, e: TaskError) -> bool;
    /// May it be sent to `worker` behind other tasks in flight (pipelining)? Asked by the
    /// thread that dequeued it, before `run` or `begin`.
    fn pipelinable(&self, worker: &mut W, env: &SlotEnv<'_>) -> bool;
    /// Start it and hand its input to `worker` with `Pipeline::send` (only if `pipelinable`).
    /// Called once, by the thread that dequeued it, instead of `run`.
    /// `head`: nothing else is in flight (the worker will run it at once).
    fn begin(self: Arc<Self>, worker: &mut W, env: &SlotEnv<'_>, head: bool) -> Begin<W>;
}

/// What `Job::begin` did.
pub(crate) enum Begin<W: Worker> {
    /// Cancelled before it started; not sent.
    Skipped,
    /// Sent; its reply is to be received with `Pipeline::recv`.
    Sent(Box<dyn Flight<W>>),
    /// Started but could not be delivered (the worker is gone): not run by the worker.
    NotDelivered(Box<dyn Flight<W>>, TaskError),
}

/// A started task whose input was sent to a pipelining worker and whose reply is awaited.
pub(crate) trait Flight<W: Worker>: Send {
    fn ctx(&self) -> &RunContext;
    /// Resolved already (killed while in flight)?
    fn resolved(&self) -> bool;
    /// The reply came: convert it, resolve the future, count.
    fn finish(
        self: Box<Self>,
        reply: Result<W::Output, TaskError>,
        worker: &mut W,
        env: &SlotEnv<'_>,
    ) -> Ran;
    /// The worker died before starting it: run it whole on another worker.
    fn run_again(self: Box<Self>, worker: &mut W, env: &SlotEnv<'_>) -> Ran;
    /// Resolve it with `e` (the pool closed before it could run again). True if this
    /// resolved it.
    fn fail(self: Box<Self>, e: TaskError) -> bool;
}

struct FlightOf<R: Runnable<W>, W: Worker> {
    cell: Arc<Cell<R, W>>,
    job: R,
    ctx: RunContext,
}

impl<R: Runnable<W>, W: Worker> Flight<W> for FlightOf<R, W> {
    fn ctx(&self) -> &RunContext {
        &self.ctx
    }

    fn resolved(&self) -> bool {
        self.cell.core.is_terminal()
    }

    fn finish(
        self: Box<Self>,
        reply: Result<W::Output, TaskError>,
        worker: &mut W,
        env: &SlotEnv<'_>,
    ) -> Ran {
        let FlightOf { cell, job, .. } = *self;
        let r = match catch(|| job.finish(worker, reply)) {
            Ok(r) => r,
            Err(p) => Err(TaskError::Panicked(p)),
        };
        let ran = resolve(&cell.core, r, env);
        drop_contained(FINISHED_TASK, cell);
        ran
    }

    fn run_again(self: Box<Self>, worker: &mut W, env: &SlotEnv<'_>) -> Ran {
        let FlightOf { cell, job, mut ctx } = *self;
        let core: &Core<R::Output> = &cell.core;
        if core.is_terminal() {
            // Resolved while waiting (killed): nothing to run.
            drop_contained(CANCELLED_TASK, job);
            if core.state() == crate::future::cell::CANCELLED {
                env.counters().cancelled();
            }
            drop_contained(FINISHED_TASK, cell);
            return Ran::Skipped;
        }
        ctx.worker = env.worker_id();
        if let Some(k) = env.task_killer(core.id()) {
            core.set_killer(k);
        }
        run_started(cell, job, worker, &ctx, env)
    }

    fn fail(self: Box<Self>, e: TaskError) -> bool {
        let FlightOf { cell, job, .. } = *self;
        let won = cell.core.complete(Err(e), FROM_RUNNING).is_ok();
        drop_contained(DRAINED_TASK, job);
        drop_contained(FINISHED_TASK, cell);
        won
    }
}

/// A started task put back in the queue after its worker died before starting it.
pub(crate) struct Resume<W: Worker>(std::sync::Mutex<Option<Box<dyn Flight<W>>>>);

impl<W: Worker> Resume<W> {
    pub(crate) fn new(f: Box<dyn Flight<W>>) -> Self {
        Resume(std::sync::Mutex::new(Some(f)))
    }
    fn take(&self) -> Option<Box<dyn Flight<W>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl<W: Worker> Job<W> for Resume<W> {
    fn run(self: Arc<Self>, worker: &mut W, env: &SlotEnv<'_>) -> Ran {
        match self.take() {
            Some(f) => f.run_again(worker, env),
            None => Ran::Skipped,
        }
    }
    fn fail(self: Arc<Self>, e: TaskError) -> bool {
        self.take().is_some_and(|f| f.fail(e))
    }
    fn pipelinable(&self, _: &mut W, _: &SlotEnv<'_>) -> bool {
        false
    }
    fn begin(self: Arc<Self>, _: &mut W, _: &SlotEnv<'_>, _: bool) -> Begin<W> {
        // Never pipelinable, so never begun.
        Begin::Skipped
    }
}

/// Run a started task on `worker` (panics caught), close the kill gate, resolve and count
/// it, and let go of its cell (`holder`).
fn run_started<R: Runnable<W>, W: Worker>(
    cell: Arc<Cell<R, W>>,
    job: R,
    worker: &mut W,
    ctx: &RunContext,
    env: &SlotEnv<'_>,
) -> Ran {
    let r = match catch(|| job.run(worker, ctx)) {
        Ok(r) => r,
        Err(p) => Err(TaskError::Panicked(p)),
    };
    env.task_finished();
    let ran = resolve(&cell.core, r, env);
    drop_contained(FINISHED_TASK, cell);
    ran
}

/// Resolve a started task with `r` (on its worker's thread) and count it.
fn resolve<T: Send>(core: &Core<T>, r: Result<T, TaskError>, env: &SlotEnv<'_>) -> Ran {
    if let Err(e) = &r
        && !matches!(
            e,
            TaskError::Panicked(_) | TaskError::Encode(_) | TaskError::Decode(_)
        )
    {
        env.note_death(e);
    }
    let r = match r {
        Err(TaskError::WorkerDied(_)) if env.killing() => Err(TaskError::Cancelled),
        r => r,
    };
    let ok = r.is_ok();
    let cancelled = matches!(r, Err(TaskError::Cancelled));
    // Count before resolving, so a caller that saw the result sees the count.
    let counters: &Counters = env.counters();
    let mut won = false;
    let claimed = catch(|| {
        core.complete_counted(r, FROM_RUNNING, || {
            won = true;
            if ok {
                counters.completed()
            } else if cancelled {
                counters.cancelled()
            } else {
                counters.failed()
            }
        })
    });
    // User code runs here in two ways: a result that lost the claim (it came too late) is
    // dropped, and a waiting `.await`er's waker is woken.
    let claimed = claimed.unwrap_or_else(|p| {
        let what = if won {
            "waking the task's waiter"
        } else {
            "dropping a result that came after its task was resolved"
        };
        report_contained(what, &p);
        won
    });
    match claimed {
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

/// The watchdog's reference to a timed task's cell: weak, so a task that finished before its
/// deadline does not keep its result (or anything it holds) alive until then. While the task
/// runs, its slot holds the cell. A reference upgraded here may turn out to be the last one
/// (the task finished and its future was dropped meanwhile): it is released with
/// `drop_contained`, since releasing it may drop the task's result on the watchdog's thread.
struct Watched<T: Send, P: Send>(Weak<WithPayload<T, P>>);

impl<T: Send, P: Send> Resolve for Watched<T, P> {
    fn resolve_running(&self, e: TaskError, count: &dyn Fn()) -> bool {
        let cell = self.0.upgrade();
        let won = cell
            .as_ref()
            .is_some_and(|c| c.core.complete_counted(Err(e), FROM_RUNNING, count));
        drop_contained(FINISHED_TASK, cell);
        won
    }

    fn finished(&self) -> bool {
        let cell = self.0.upgrade();
        let finished = cell.as_ref().is_none_or(|c| c.core.is_terminal());
        drop_contained(FINISHED_TASK, cell);
        finished
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
        let Some((cell, entry)) = start(self, env) else {
            return Ran::Skipped;
        };
        let core: &Core<R::Output> = &cell.core;
        let (label, timeout) = match entry.meta {
            Some(m) => (m.label, m.timeout.or(env.task_timeout())),
            None => (None, env.task_timeout()),
        };
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let ctx = RunContext {
            task: core.id(),
            label,
            deadline,
            time_limit: timeout,
            worker: env.worker_id(),
        };
        if let Some(d) = deadline {
            let watched = Watched(Arc::downgrade(&cell));
            env.watch(Arc::new(watched), d, timeout.unwrap_or_default(), &ctx);
        }
        if let Some(k) = env.task_killer(core.id()) {
            core.set_killer(k);
        }
        let job = entry.job;
        run_started(cell, job, worker, &ctx, env)
    }

    fn fail(self: Arc<Self>, e: TaskError) -> bool {
        // SAFETY: this thread dequeued the job; the queue hands each entry out once.
        drop_contained(DRAINED_TASK, unsafe { self.take_payload() });
        let won = self.core.complete(Err(e), FROM_PENDING).is_ok();
        drop_contained(FINISHED_TASK, self);
        won
    }

    #[inline]
    fn pipelinable(&self, worker: &mut W, env: &SlotEnv<'_>) -> bool {
        // SAFETY: this thread dequeued the job; nothing takes the payload meanwhile.
        let Some(entry) = (unsafe { self.payload() }) else {
            return false;
        };
        let timeout = match &entry.meta {
            Some(m) => m.timeout.or(env.task_timeout()),
            None => env.task_timeout(),
        };
        timeout.is_none()
            && entry
                .job
                .input()
                .is_some_and(|i| worker.pipeline().is_some_and(|p| p.can_pipeline(i)))
    }

    fn begin(self: Arc<Self>, worker: &mut W, env: &SlotEnv<'_>, head: bool) -> Begin<W> {
        let Some((cell, entry)) = start(self, env) else {
            return Begin::Skipped;
        };
        let core: &Core<R::Output> = &cell.core;
        // Pipelinable: no time limit.
        let ctx = RunContext {
            task: core.id(),
            label: entry.meta.and_then(|m| m.label),
            deadline: None,
            time_limit: None,
            worker: env.worker_id(),
        };
        // The oldest in flight is what the worker runs: open the gate for it before its
        // killer can be reached (as `task_killer` does for `run`).
        let killer = if head {
            env.task_killer(core.id())
        } else {
            env.killer_for(core.id())
        };
        if let Some(k) = killer {
            core.set_killer(k);
        }
        let job = entry.job;
        let sent = match job.input() {
            Some(input) => match worker.pipeline() {
                Some(p) => p.send(input, &ctx),
                None => Err(TaskError::Broken(crate::error::BrokenReason::new(
                    "this worker does not pipeline",
                ))),
            },
            None => Err(TaskError::Broken(crate::error::BrokenReason::new(
                "a job without an input was pipelined",
            ))),
        };
        let flight = Box::new(FlightOf { cell, job, ctx });
        match sent {
            Ok(()) => Begin::Sent(flight),
            Err(e) => Begin::NotDelivered(flight, e),
        }
    }
}

/// A task taken out of the queue and marked running: its cell and its payload.
type Started<R, W> = (Arc<Cell<R, W>>, Entry<R>);

/// Take a dequeued task's payload and mark it running; `None` (the cell released, a
/// cancellation counted) if it was cancelled before it could start.
fn start<W: Worker, R: Runnable<W>>(
    cell: Arc<Cell<R, W>>,
    env: &SlotEnv<'_>,
) -> Option<Started<R, W>> {
    // SAFETY: this thread dequeued the job; the queue hands each entry out once.
    let Some(entry) = (unsafe { cell.take_payload() }) else {
        drop_contained(FINISHED_TASK, cell);
        return None;
    };
    if !cell.core.start() {
        drop_contained(CANCELLED_TASK, entry);
        env.counters().cancelled();
        drop_contained(FINISHED_TASK, cell);
        return None;
    }
    Some((cell, entry))
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
