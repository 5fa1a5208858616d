//! [`Engine`]: the shared state, the submit path, the worker-slot threads and shutdown.
//! The protocols are described in `README.md` beside this file.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_utils::{Backoff, CachePadded};

use super::job::{self, Begin, Flight, InputJob, Job, Meta, Ran, Resume, Runnable};
use super::lend::Spot;
use super::queue::Queue;
use super::watchdog::{Watch, Watchdog};
use super::{
    Backend, EngineConfig, Killer, OnWorkerDeath, Rejection, RunContext, StartError, Worker,
};
use crate::error::{
    BrokenReason, ConfigError, SubmitError, SubmitErrorKind, TaskError, TaskId, WorkerId,
};
use crate::executor::{Shutdown, ShutdownReport, Stats, SubmitOptions};
use crate::future::{Future, next_task_id};
use crate::panic;

thread_local! {
    /// The engine whose slot thread this is (its address), 0 elsewhere.
    static CURRENT_ENGINE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

const OPEN: u8 = 0;
/// Closed; workers finish the queue, then exit.
const WAIT: u8 = 1;
/// Closed; the queue was cancelled; workers exit after their task.
const CANCEL: u8 = 2;
/// Broken; the queue was failed; workers exit after their task.
const BROKEN: u8 = 3;

/// Pipelining: a task this quick lets the next ones be sent behind it (see `pipelined`).
const QUICK: Duration = Duration::from_millis(20);

/// Pipelining workers (processes): how long an idle slot keeps polling for the next task
/// before it sleeps. A caller submitting task after task (one round trip each) then finds
/// the slot awake instead of paying a futex wake-up per task.
const LINGER: Duration = Duration::from_micros(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Per-slot task counters. Written only by the slot's own thread (plain load + store), read
/// by `stats()`.
#[derive(Default)]
pub(crate) struct Counters {
    taken: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
}

#[inline]
fn bump(a: &AtomicU64) {
    a.store(a.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl Counters {
    #[inline]
    pub(crate) fn completed(&self) {
        bump(&self.completed)
    }
    #[inline]
    pub(crate) fn failed(&self) {
        bump(&self.failed)
    }
    #[inline]
    pub(crate) fn cancelled(&self) {
        bump(&self.cancelled)
    }
}

/// Rare events, counted with atomic RMWs from any thread.
#[derive(Default)]
pub(crate) struct Rare {
    timed_out: AtomicU64,
    replaced: AtomicU64,
    recycled: AtomicU64,
    spawned: AtomicU64,
    died: AtomicU64,
    idle_exits: AtomicU64,
    start_failures: AtomicU64,
    drained: AtomicU64,
    inline_done: AtomicU64,
    inline_failed: AtomicU64,
    lent: AtomicU64,
    pub(crate) callback_panics: Arc<AtomicU64>,
}

impl Rare {
    pub(crate) fn timed_out(&self) {
        self.timed_out.fetch_add(1, Ordering::Relaxed);
    }
}

/// What other threads may see of a worker slot.
pub(crate) struct SlotShared {
    id: WorkerId,
    counters: Counters,
    killer: OnceLock<Killer>,
    /// The task the slot is running, for killers (only maintained when there is a killer).
    gate: Mutex<Option<TaskId>>,
}

impl SlotShared {
    /// Kill the worker if it is still running `task`.
    pub(crate) fn kill_if_running(&self, task: TaskId) {
        let g = lock(&self.gate);
        if *g == Some(task)
            && let Some(k) = self.killer.get()
        {
            k.kill();
        }
    }

    /// Kill the worker if it is running anything. True if it did.
    fn kill_now(&self) -> bool {
        let g = lock(&self.gate);
        if g.is_some()
            && let Some(k) = self.killer.get()
        {
            k.kill();
            return true;
        }
        false
    }
}

/// What a job sees of the slot running it.
pub(crate) struct SlotEnv<'a> {
    slot: &'a Arc<SlotShared>,
    /// Where task outcomes are counted: the slot's own counters, or a borrower's scratch
    /// counters for a run on a lent worker (see `Shared::call_job`).
    counters: &'a Counters,
    pid: Option<u32>,
    /// Why the worker died, noted by the job that saw it (for the `worker died` event).
    death: std::cell::RefCell<Option<String>>,
    task_timeout: Option<Duration>,
    watchdog: &'a Watchdog,
    killing: &'a AtomicBool,
}

impl SlotEnv<'_> {
    #[inline]
    pub(crate) fn counters(&self) -> &Counters {
        self.counters
    }
    #[inline]
    pub(crate) fn task_timeout(&self) -> Option<Duration> {
        self.task_timeout
    }
    #[inline]
    pub(crate) fn worker_id(&self) -> WorkerId {
        self.slot.id
    }
    #[inline]
    pub(crate) fn killing(&self) -> bool {
        self.killing.load(Ordering::Relaxed)
    }

    pub(crate) fn watch(
        &self,
        cell: Arc<dyn job::Resolve>,
        deadline: Instant,
        after: Duration,
        ctx: &RunContext,
    ) {
        self.watchdog.watch(Watch {
            deadline,
            cell,
            after,
            worker: self.slot.id,
            pid: self.pid,
            task: ctx.task_name(),
            slot: self.slot.killer.get().map(|_| self.slot.clone()),
        });
    }

    /// A killer for the cell of task `id`, gated so it can only hit that task; opens the
    /// gate for `id`.
    #[inline]
    pub(crate) fn task_killer(&self, id: TaskId) -> Option<Killer> {
        let k = self.killer_for(id)?;
        *lock(&self.slot.gate) = Some(id);
        Some(k)
    }

    /// A killer for the cell of task `id` that kills only while the gate shows `id` (the
    /// gate is not touched).
    #[inline]
    pub(crate) fn killer_for(&self, id: TaskId) -> Option<Killer> {
        self.slot.killer.get()?;
        let slot = self.slot.clone();
        Some(Killer::new(move || slot.kill_if_running(id)))
    }

    /// Show `task` in the gate: the task the worker is running (pipelining: the oldest in
    /// flight), the only one a kill may hit.
    #[inline]
    fn set_gate(&self, task: Option<TaskId>) {
        if self.slot.killer.get().is_some() {
            *lock(&self.slot.gate) = task;
        }
    }

    /// Note the error after which the worker may be dead.
    #[cold]
    pub(crate) fn note_death(&self, e: &TaskError) {
        *self.death.borrow_mut() = Some(e.to_string());
    }

    #[cold]
    fn note_death_text(&self, why: String) {
        *self.death.borrow_mut() = Some(why);
    }

    fn take_death(&self) -> Option<String> {
        self.death.borrow_mut().take()
    }

    #[inline]
    pub(crate) fn task_finished(&self) {
        if self.slot.killer.get().is_some() {
            *lock(&self.slot.gate) = None;
        }
    }
}

/// The bounded queue's admission counter and the condvar blocked submitters wait on.
struct Bound {
    cap: usize,
    len: CachePadded<AtomicUsize>,
    blocked: AtomicUsize,
    mx: Mutex<()>,
    cv: Condvar,
}

impl Bound {
    fn try_reserve(&self) -> bool {
        let mut n = self.len.load(Ordering::Relaxed);
        loop {
            if n >= self.cap {
                return false;
            }
            match self
                .len
                .compare_exchange_weak(n, n + 1, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
    }

    /// Wait for room. False if the pool closed meanwhile.
    fn reserve_blocking(&self, status: &AtomicU8) -> bool {
        loop {
            if status.load(Ordering::Acquire) != OPEN {
                return false;
            }
            if self.try_reserve() {
                return true;
            }
            if status.load(Ordering::Acquire) != OPEN {
                return false;
            }
            let g = lock(&self.mx);
            self.blocked.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if self.try_reserve() {
                self.blocked.fetch_sub(1, Ordering::SeqCst);
                return true;
            }
            if status.load(Ordering::Acquire) != OPEN {
                self.blocked.fetch_sub(1, Ordering::SeqCst);
                return false;
            }
            // Woken by `release` (room) or `wake_all` (shutdown).
            let g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
            self.blocked.fetch_sub(1, Ordering::SeqCst);
            drop(g);
        }
    }

    fn release(&self) {
        self.len.fetch_sub(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.blocked.load(Ordering::Relaxed) > 0 {
            let _g = lock(&self.mx);
            self.cv.notify_one();
        }
    }

    fn wake_all(&self) {
        let _g = lock(&self.mx);
        self.cv.notify_all();
    }
}

#[derive(Default)]
struct Control {
    slots: Vec<Arc<SlotShared>>,
    retired: [u64; 4],
    broken: Option<BrokenReason>,
    finalizer_errors: Vec<String>,
}

type JobRef<W> = Arc<dyn Job<W>>;

/// A borrowed worker and the spot it goes back to.
type Borrowed<W> = (Arc<Spot<W>>, W);

struct Shared<B: Backend> {
    backend: B,
    cfg: EngineConfig,
    queue: Queue<JobRef<B::Worker>>,
    submitted: CachePadded<AtomicU64>,
    status: AtomicU8,
    killing: AtomicBool,
    max_workers: AtomicUsize,
    workers: CachePadded<AtomicUsize>,
    idle: CachePadded<AtomicUsize>,
    /// Slots whose worker is still starting.
    starting: AtomicUsize,
    /// Slot threads that have not finished (their worker's `stop` included). Changed under
    /// `ctl`, so `shutdown` waits for it without missing a wake-up.
    live: AtomicUsize,
    sleep_mx: Mutex<()>,
    sleep_cv: Condvar,
    bound: Option<Bound>,
    ctl: Mutex<Control>,
    ctl_cv: Condvar,
    rare: Arc<Rare>,
    next_worker: AtomicU64,
    start_failures_in_a_row: AtomicU32,
    memory_warned: AtomicBool,
    watchdog: Watchdog,
    /// Whether idle pipelining workers are lent to callers (`Engine::call`): not when a
    /// recycling limit is set (a lent run would have to count against it).
    lends: bool,
    /// The parking spots of the pipelining slots (see `engine/lend.rs`).
    spots: Mutex<Vec<Arc<Spot<B::Worker>>>>,
}

/// Why `find_job` came back without a job.
enum Gone {
    /// The slot left the `workers` count (idle timeout, resize, shutdown) and must exit.
    Left,
    /// A caller borrowed the slot's parked worker and saw it die: the slot must handle it.
    News,
}

/// Why a slot's loop ended.
enum Exit {
    /// Already left the `workers` count (idle timeout, resize, shutdown).
    Left,
    /// The worker died.
    Died { counted: bool },
    /// `max_tasks_per_worker` or the memory limit.
    Recycle,
}

/// The policy engine. Cheap to clone (all clones share one pool); dropping the last clone
/// shuts the pool down like `Shutdown::CancelPending` without waiting.
///
/// # Examples
///
/// A minimal backend whose "workers" double numbers:
///
/// ```
/// use std::time::Instant;
/// use pool_core::*;
///
/// struct Doubler;
/// struct W;
/// impl Worker for W {
///     type Input = u64;
///     type Output = u64;
///     fn run(&mut self, x: u64, _: &RunContext) -> Result<u64, TaskError> { Ok(2 * x) }
///     fn stop(self, _: Instant) -> Result<(), FinalizeError> { Ok(()) }
/// }
/// impl Backend for Doubler {
///     type Input = u64;
///     type Output = u64;
///     type Worker = W;
///     fn start(&self, _: WorkerId) -> Result<W, StartError> { Ok(W) }
/// }
///
/// let engine = Engine::new(Doubler, EngineConfig::default()).unwrap();
/// let f = engine.submit(21, SubmitOptions::default(), Ok).unwrap();
/// assert_eq!(f.result(), Ok(42));
/// engine.shutdown(Shutdown::Wait, None);
/// ```
pub struct Engine<B: Backend> {
    handle: Arc<Handle<B>>,
}

struct Handle<B: Backend> {
    shared: Arc<Shared<B>>,
}

impl<B: Backend> Drop for Handle<B> {
    fn drop(&mut self) {
        self.shared
            .shutdown(Shutdown::CancelPending, Some(Duration::ZERO));
    }
}

impl<B: Backend> Clone for Engine<B> {
    fn clone(&self) -> Self {
        Engine {
            handle: self.handle.clone(),
        }
    }
}

impl<B: Backend> std::fmt::Debug for Engine<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.handle.shared.cfg.name)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<B: Backend> Engine<B> {
    /// Validate `config` and create the engine; `min_workers` workers start right away (in
    /// parallel, on their own threads), the others on demand.
    ///
    /// # Errors
    ///
    /// The configuration is invalid (see [`EngineConfig::validate`]).
    pub fn new(backend: B, config: EngineConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let rare = Arc::new(Rare::default());
        let shared = Arc::new(Shared {
            backend,
            queue: Queue::new(),
            submitted: CachePadded::new(AtomicU64::new(0)),
            status: AtomicU8::new(OPEN),
            killing: AtomicBool::new(false),
            max_workers: AtomicUsize::new(config.max_workers),
            workers: CachePadded::new(AtomicUsize::new(0)),
            idle: CachePadded::new(AtomicUsize::new(0)),
            starting: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            sleep_mx: Mutex::new(()),
            sleep_cv: Condvar::new(),
            bound: config.queue_capacity.map(|cap| Bound {
                cap,
                len: CachePadded::new(AtomicUsize::new(0)),
                blocked: AtomicUsize::new(0),
                mx: Mutex::new(()),
                cv: Condvar::new(),
            }),
            ctl: Mutex::new(Control::default()),
            ctl_cv: Condvar::new(),
            watchdog: Watchdog::new(rare.clone(), config.name.clone()),
            rare,
            next_worker: AtomicU64::new(1),
            start_failures_in_a_row: AtomicU32::new(0),
            memory_warned: AtomicBool::new(false),
            lends: config.max_tasks_per_worker.is_none() && config.max_memory_per_worker.is_none(),
            spots: Mutex::new(Vec::new()),
            cfg: config,
        });
        panic::install_hook();
        let engine = Engine {
            handle: Arc::new(Handle { shared }),
        };
        engine.spawn_workers(engine.handle.shared.cfg.min_workers);
        Ok(engine)
    }

    fn shared(&self) -> &Arc<Shared<B>> {
        &self.handle.shared
    }

    /// Queue one input for a worker; `convert` maps the worker's output into the future's
    /// value (decoding, for process backends) and runs on the engine thread.
    ///
    /// # Errors
    ///
    /// The pool is shut down or broken, or the bounded queue is full with
    /// [`Rejection::Reject`]; the input is handed back.
    pub fn submit<T: Send + 'static>(
        &self,
        input: B::Input,
        opts: SubmitOptions,
        convert: impl FnOnce(B::Output) -> Result<T, TaskError> + Send + 'static,
    ) -> Result<Future<T>, SubmitError<B::Input>> {
        self.submit_job(InputJob { input, convert }, opts)
            .map_err(|e| e.map_task(|j| j.input))
    }

    /// Queue any [`Runnable`] job (one allocation for the job and its future together).
    ///
    /// # Errors
    ///
    /// As [`Engine::submit`]; the job is handed back.
    #[inline]
    pub fn submit_job<R: Runnable<B::Worker>>(
        &self,
        job: R,
        opts: SubmitOptions,
    ) -> Result<Future<R::Output>, SubmitError<R>> {
        self.shared().submit_job(job, opts)
    }

    /// Run one input and wait for its value: `submit(..)` then `result()`, except that when
    /// a pipelining worker (a process) is idle, the calling thread borrows it and talks to
    /// it directly — no engine thread between the caller and the worker (see
    /// `engine/README.md`, "Lending"). Timeouts, kills, death reports and statistics are
    /// those of a queued task.
    ///
    /// # Errors
    ///
    /// The task's failure, or the refusal a submit would give as the error its future
    /// would carry ([`SubmitError::to_task_error`]).
    pub fn call<T: Send + 'static>(
        &self,
        input: B::Input,
        opts: SubmitOptions,
        convert: impl FnOnce(B::Output) -> Result<T, TaskError> + Send + 'static,
    ) -> Result<T, TaskError> {
        self.shared().call_job(InputJob { input, convert }, opts)
    }

    /// Shut down (see [`Shutdown`]) and wait for the workers to exit, at most `deadline` if
    /// given (`None`: as long as the running tasks take). Idempotent; `Kill` after `Wait`
    /// escalates.
    pub fn shutdown(&self, mode: Shutdown, deadline: Option<Duration>) -> ShutdownReport {
        self.shared().shutdown(mode, deadline)
    }

    /// The pool's counters.
    pub fn stats(&self) -> Stats {
        self.shared().stats()
    }

    /// Change `max_workers` (at least 1). Extra workers exit after their current task.
    pub fn resize(&self, max_workers: usize) {
        let s = self.shared();
        let max = max_workers.max(1);
        let old = s.max_workers.swap(max, Ordering::SeqCst);
        if old != max {
            tracing::info!(target: "pool", pool = %s.cfg.name, from = old, to = max, "pool resized");
        }
        s.wake_all_sleepers();
        while !s.queue.is_empty() && s.try_spawn() {}
    }

    /// Start up to `n` more workers now (bounded by `max_workers`).
    pub fn spawn_workers(&self, n: usize) {
        for _ in 0..n {
            if !self.shared().try_spawn() {
                break;
            }
        }
    }

    /// Is the calling thread one of this engine's worker threads (a task running here)?
    pub fn on_worker_thread(&self) -> bool {
        let me = Arc::as_ptr(self.shared()) as *const () as usize;
        CURRENT_ENGINE.with(|c| c.get()) == me
    }

    /// Why the pool is broken, if it is.
    pub fn is_broken(&self) -> Option<BrokenReason> {
        lock(&self.shared().ctl).broken.clone()
    }

    /// The configuration the engine runs with (`max_workers` as last resized).
    pub fn config(&self) -> EngineConfig {
        let mut c = self.shared().cfg.clone();
        c.max_workers = self.shared().max_workers.load(Ordering::Relaxed);
        c
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.shared().backend
    }
}

/// Held by the one slot polling for work (see `Shared::search`); hands over when dropped.
struct Lingering<'a, B: Backend>(&'a Shared<B>);

impl<B: Backend> Drop for Lingering<'_, B> {
    fn drop(&mut self) {
        if self.0.queue.stop_lingering() {
            self.0.wake_one();
        }
    }
}

impl<B: Backend> Shared<B> {
    fn refuse<R>(&self, st: u8, job: R) -> SubmitError<R> {
        let kind = if st == BROKEN {
            SubmitErrorKind::Broken(
                lock(&self.ctl)
                    .broken
                    .clone()
                    .unwrap_or_else(|| BrokenReason::new("broken")),
            )
        } else {
            SubmitErrorKind::Shutdown
        };
        SubmitError::new(kind, Some(job))
    }

    #[inline]
    fn submit_job<R: Runnable<B::Worker>>(
        self: &Arc<Self>,
        mut job: R,
        opts: SubmitOptions,
    ) -> Result<Future<R::Output>, SubmitError<R>> {
        let st = self.status.load(Ordering::Acquire);
        if st != OPEN {
            return Err(self.refuse(st, job));
        }
        if let Some(b) = &self.bound
            && !b.try_reserve()
        {
            match self.cfg.rejection {
                Rejection::Reject => {
                    return Err(SubmitError::new(SubmitErrorKind::QueueFull, Some(job)));
                }
                Rejection::CallerRuns => match panic::catch(move || job.run_here()) {
                    Ok(Ok(r)) => return Ok(self.ran_here(r, &opts)),
                    Ok(Err(j)) => job = j,
                    Err(p) => return Ok(self.ran_here(Err(TaskError::Panicked(p)), &opts)),
                },
                Rejection::Block => {}
            }
            if !b.reserve_blocking(&self.status) {
                let st = self.status.load(Ordering::Acquire);
                return Err(self.refuse(st, job));
            }
            // Room may have been made by a shutdown draining the queue.
            let st = self.status.load(Ordering::Acquire);
            if st != OPEN {
                b.release();
                return Err(self.refuse(st, job));
            }
        }
        let cell = self.cell_of(job, opts);
        let fut = job::future_of(&cell);
        let (sleepers, queued, stranded) = self.queue.push(cell, |sleepers, queued| {
            // Under the producers' lock, which `try_leave` also holds: a push after the
            // last worker left a closed pool is seen here.
            bump(&self.submitted);
            let stranded = self.status.load(Ordering::Relaxed) != OPEN
                && self.workers.load(Ordering::Relaxed) == 0;
            (sleepers, queued, stranded)
        });
        if sleepers > 0 {
            self.wake_one();
        }
        // More queued tasks than idle workers to take them: start one more (up to max).
        // `workers` first: it rarely changes, while `idle` changes whenever a worker runs
        // dry, so a full pool does not pay a cache miss per submit.
        if self.workers.load(Ordering::Relaxed) < self.max_workers.load(Ordering::Relaxed)
            && queued > self.idle.load(Ordering::Relaxed)
        {
            self.try_spawn();
        }
        if stranded {
            self.drain(self.closed_error());
        }
        Ok(fut)
    }

    /// The task's cell (job, future and options in one allocation), with a new task id.
    #[inline]
    fn cell_of<R: Runnable<B::Worker>>(
        &self,
        job: R,
        opts: SubmitOptions,
    ) -> Arc<job::Cell<R, B::Worker>> {
        let meta = (opts.timeout.is_some() || opts.label.is_some()).then(|| {
            Box::new(Meta {
                label: opts.label.map(Arc::from),
                timeout: opts.timeout,
            })
        });
        job::new_cell::<B::Worker, R>(
            job,
            meta,
            next_task_id(),
            self.cfg.record_timing || opts.timing,
        )
    }

    /// A task that ran on the submitting thread (`CallerRuns`): an already resolved future.
    fn ran_here<T: Send + 'static>(
        &self,
        r: Result<T, TaskError>,
        _opts: &SubmitOptions,
    ) -> Future<T> {
        self.queue.locked(|_, _| bump(&self.submitted));
        if r.is_ok() {
            self.rare.inline_done.fetch_add(1, Ordering::Relaxed);
        } else {
            self.rare.inline_failed.fetch_add(1, Ordering::Relaxed);
        }
        let (p, f) = crate::future::promise();
        p.complete(r);
        f
    }

    fn wake_one(&self) {
        let _g = lock(&self.sleep_mx);
        self.sleep_cv.notify_one();
    }

    fn wake_all_sleepers(&self) {
        let _g = lock(&self.sleep_mx);
        self.sleep_cv.notify_all();
    }

    #[inline]
    fn pop(&self) -> Option<JobRef<B::Worker>> {
        let j = self.queue.pop()?;
        if let Some(b) = &self.bound {
            b.release();
        }
        Some(j)
    }

    /// Fail everything queued with `e`. Returns how many.
    fn drain(&self, e: TaskError) -> usize {
        let mut n = 0;
        while let Some(j) = self.pop() {
            if j.fail(e.clone()) {
                n += 1;
            }
            self.rare.drained.fetch_add(1, Ordering::Relaxed);
        }
        n
    }

    /// Reserve a worker and start its thread, if below `max_workers` and open.
    /// See [`Engine::call`].
    fn call_job<R: Runnable<B::Worker>>(
        self: &Arc<Self>,
        job: R,
        opts: SubmitOptions,
    ) -> Result<R::Output, TaskError> {
        if self.lends
            && self.bound.is_none()
            && self.status.load(Ordering::Acquire) == OPEN
            && let Some((spot, worker)) = self.borrow()
        {
            return self.run_lent(&spot, worker, job, opts);
        }
        match self.submit_job(job, opts) {
            Ok(f) => f.result(),
            Err(e) => Err(e.to_task_error()),
        }
    }

    /// A parked (idle) worker nobody else holds, with its spot.
    fn borrow(&self) -> Option<Borrowed<B::Worker>> {
        let spots = lock(&self.spots);
        spots
            .iter()
            .find_map(|s| s.borrow().map(|w| (Arc::clone(s), w)))
    }

    /// Run `job` on a borrowed worker from the calling thread, as its slot would, then give
    /// the worker back. The job never enters the queue: this thread is its only holder.
    fn run_lent<R: Runnable<B::Worker>>(
        self: &Arc<Self>,
        spot: &Spot<B::Worker>,
        mut worker: B::Worker,
        job: R,
        opts: SubmitOptions,
    ) -> Result<R::Output, TaskError> {
        // Counted as submitted, and (below) as run by the caller, like `CallerRuns`.
        self.queue.locked(|_, _| bump(&self.submitted));
        let cell = self.cell_of(job, opts);
        let fut = job::future_of(&cell);
        let scratch = Counters::default();
        let env = SlotEnv {
            slot: &spot.slot,
            counters: &scratch,
            pid: spot.pid,
            death: std::cell::RefCell::new(None),
            task_timeout: self.cfg.task_timeout,
            watchdog: &self.watchdog,
            killing: &self.killing,
        };
        self.rare.lent.fetch_add(1, Ordering::Relaxed);
        worker.lent(true);
        let ran = Job::run(cell, &mut worker, &env);
        worker.lent(false);
        match ran {
            Ran::Ok => self.rare.inline_done.fetch_add(1, Ordering::Relaxed),
            Ran::Err => self.rare.inline_failed.fetch_add(1, Ordering::Relaxed),
            // Resolved by the watchdog or a kill, and counted there.
            Ran::Lost | Ran::Skipped => 0,
        };
        let death = (matches!(ran, Ran::Err | Ran::Lost) && !worker.alive()).then(|| {
            env.take_death()
                .unwrap_or_else(|| "it died running a task for a caller".to_owned())
        });
        if spot.give_back(worker, death) {
            // Its slot may be asleep: it handles the death (replacement, BreakPool) now.
            self.wake_all_sleepers();
        }
        fut.result()
    }

    fn try_spawn(self: &Arc<Self>) -> bool {
        // Counted as starting before it counts as a worker: `all_busy` never sees the pool
        // full while the new worker is neither starting nor idle.
        self.starting.fetch_add(1, Ordering::SeqCst);
        let mut w = self.workers.load(Ordering::Relaxed);
        loop {
            if w >= self.max_workers.load(Ordering::Relaxed)
                || self.status.load(Ordering::Relaxed) >= CANCEL
            {
                self.starting.fetch_sub(1, Ordering::SeqCst);
                return false;
            }
            match self
                .workers
                .compare_exchange_weak(w, w + 1, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => w = now,
            }
        }
        self.spawn_reserved();
        true
    }

    /// Start a slot thread for a `workers` count already taken, and a `starting` count
    /// already taken.
    fn spawn_reserved(self: &Arc<Self>) {
        let id = WorkerId(self.next_worker.fetch_add(1, Ordering::Relaxed));
        let slot = Arc::new(SlotShared {
            id,
            counters: Counters::default(),
            killer: OnceLock::new(),
            gate: Mutex::new(None),
        });
        {
            let mut g = lock(&self.ctl);
            g.slots.push(slot.clone());
            self.live.fetch_add(1, Ordering::SeqCst);
        }
        let me = self.clone();
        let slot2 = slot.clone();
        let mut b = std::thread::Builder::new().name(format!("{}-{}", self.cfg.name, id.0));
        if let Some(sz) = self.cfg.stack_size {
            b = b.stack_size(sz);
        }
        if let Err(e) = b.spawn(move || me.slot_main(slot2)) {
            self.starting.fetch_sub(1, Ordering::SeqCst);
            self.rare.start_failures.fetch_add(1, Ordering::Relaxed);
            self.slot_gone(&slot, false);
            self.start_failed(StartError::Spawn(format!("could not spawn a thread: {e}")));
        }
    }

    /// Remove a slot from the registry (keeping its counts) and, unless it already left,
    /// from the `workers` count.
    fn slot_gone(&self, slot: &Arc<SlotShared>, already_left: bool) {
        let mut g = lock(&self.ctl);
        if let Some(i) = g.slots.iter().position(|s| Arc::ptr_eq(s, slot)) {
            g.slots.swap_remove(i);
        }
        let c = &slot.counters;
        g.retired[0] += c.taken.load(Ordering::Relaxed);
        g.retired[1] += c.completed.load(Ordering::Relaxed);
        g.retired[2] += c.failed.load(Ordering::Relaxed);
        g.retired[3] += c.cancelled.load(Ordering::Relaxed);
        drop(g);
        // Under the producers' lock, like `try_leave`: the last worker of a closed pool
        // makes sure nothing stays queued.
        let stranded = self.queue.locked(|_, empty| {
            let w = if already_left {
                self.workers.load(Ordering::SeqCst)
            } else {
                self.workers.fetch_sub(1, Ordering::SeqCst) - 1
            };
            !empty && w == 0 && self.status.load(Ordering::SeqCst) != OPEN
        });
        if stranded {
            self.drain(self.closed_error());
        }
        {
            let _g = lock(&self.ctl);
            self.live.fetch_sub(1, Ordering::SeqCst);
        }
        self.ctl_cv.notify_all();
    }

    /// What a task that cannot run any more resolves with: `Broken(reason)` or `Shutdown`.
    fn closed_error(&self) -> TaskError {
        if self.status.load(Ordering::SeqCst) == BROKEN {
            TaskError::Broken(
                lock(&self.ctl)
                    .broken
                    .clone()
                    .unwrap_or_else(|| BrokenReason::new("broken")),
            )
        } else {
            TaskError::Shutdown
        }
    }

    fn start_failed(self: &Arc<Self>, e: StartError) {
        let n = self.start_failures_in_a_row.fetch_add(1, Ordering::SeqCst) + 1;
        match e {
            StartError::Initializer(cause) => {
                self.break_pool(BrokenReason::new(format!("initializer failed: {cause}")));
            }
            e if n >= self.cfg.max_start_failures => {
                self.break_pool(BrokenReason::new(format!(
                    "{n} worker starts failed in a row; the last: {e}"
                )));
            }
            _ => {
                // Back off a little, then start a replacement if work is waiting.
                std::thread::sleep(Duration::from_millis(10 * u64::from(n)));
                if !self.queue.is_empty()
                    || self.workers.load(Ordering::Relaxed) < self.cfg.min_workers
                {
                    self.try_spawn();
                }
            }
        }
    }

    /// Break the pool: the first reason sticks; queued tasks and later submits fail with it.
    fn break_pool(&self, reason: BrokenReason) {
        {
            let mut g = lock(&self.ctl);
            if g.broken.is_none() {
                tracing::warn!(target: "pool", pool = %self.cfg.name, reason = %reason,
                    "pool broken");
                g.broken = Some(reason);
            }
        }
        self.status.store(BROKEN, Ordering::SeqCst);
        self.drain(self.closed_error());
        self.wake_all_sleepers();
        if let Some(b) = &self.bound {
            b.wake_all();
        }
        self.ctl_cv.notify_all();
    }

    /// Leave the `workers` (and `idle`) count if `workers` stays at least `min`. Refuses
    /// (false) if a job is queued that must still run. Holds the producers' lock, so a
    /// concurrent push either comes first (and is seen here) or sees this thread gone.
    fn try_leave(&self, min: usize) -> bool {
        self.queue.locked(|_, empty| {
            let st = self.status.load(Ordering::SeqCst);
            if !empty && (st == OPEN || st == WAIT) {
                return false;
            }
            let mut w = self.workers.load(Ordering::Relaxed);
            loop {
                if w <= min {
                    return false;
                }
                match self.workers.compare_exchange_weak(
                    w,
                    w - 1,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => w = now,
                }
            }
            self.idle.fetch_sub(1, Ordering::SeqCst);
            true
        })
    }

    /// Find the next job, or decide to leave. `Err(Gone::Left)` means the slot left the
    /// `workers` count and must exit; `Err(Gone::News)` that `news` was raised (the slot is
    /// no longer counted idle).
    /// `linger`: how long to keep polling (yielding the CPU) before sleeping, once idle.
    /// A pipelining slot (`linger` > 0) counts itself idle at once: other slots pipeline
    /// only while none is idle.
    /// `counted`: the caller already counted itself in `idle`.
    fn find_job(
        self: &Arc<Self>,
        linger: Duration,
        counted: bool,
        news: Option<&AtomicBool>,
    ) -> Result<JobRef<B::Worker>, Gone> {
        if counted {
            return self.search_idle(linger, news);
        }
        if let Some(j) = self.pop() {
            return Ok(j);
        }
        // A short spin first, without touching the shared `idle` counter: with a stream of
        // tiny tasks the queue runs dry between every two pushes, and two RMWs per task on a
        // line all workers share would cost more than the task.
        if self.status.load(Ordering::Relaxed) == OPEN && linger.is_zero() {
            let backoff = Backoff::new();
            while !backoff.is_completed() {
                backoff.snooze();
                if let Some(j) = self.pop() {
                    return Ok(j);
                }
            }
        }
        self.idle.fetch_add(1, Ordering::SeqCst);
        self.search_idle(linger, news)
    }

    /// `search`, for a slot counted in `idle`: it leaves the count with a job (and starts
    /// a worker if tasks still outnumber idle ones) or with news; a slot that left the pool
    /// left the count too, in `try_leave`.
    fn search_idle(
        self: &Arc<Self>,
        linger: Duration,
        news: Option<&AtomicBool>,
    ) -> Result<JobRef<B::Worker>, Gone> {
        let r = self.search(linger, news);
        match r {
            Ok(_) => {
                self.idle.fetch_sub(1, Ordering::SeqCst);
                self.spawn_if_short();
            }
            Err(Gone::News) => {
                self.idle.fetch_sub(1, Ordering::SeqCst);
            }
            Err(Gone::Left) => {}
        }
        r
    }

    /// A slot that counted itself idle has just taken a task. A task pushed between that
    /// take and the slot leaving the `idle` count saw this slot as idle and started no
    /// worker for itself; start one now if the queue holds more tasks than idle workers.
    /// The queue is read under the producers' lock, after `idle` was lowered: a push made
    /// after that read sees the lowered count and spawns by itself.
    fn spawn_if_short(self: &Arc<Self>) {
        if self.workers.load(Ordering::Relaxed) >= self.max_workers.load(Ordering::Relaxed) {
            return;
        }
        let queued = self.queue.len_locked();
        if queued > self.idle.load(Ordering::SeqCst) {
            self.try_spawn();
        }
    }

    fn search(
        &self,
        linger: Duration,
        news: Option<&AtomicBool>,
    ) -> Result<JobRef<B::Worker>, Gone> {
        let raised = || news.is_some_and(|n| n.load(Ordering::Acquire));
        let backoff = Backoff::new();
        // Only one idle slot at a time polls: on a small machine every other one would take
        // a context switch from the threads doing the work each time it yields, and a push
        // would wake a sleeper for nothing (the poller takes the task).
        let mut lingering =
            (!linger.is_zero() && self.queue.start_lingering()).then(|| Lingering(self));
        let mut linger_until = lingering.as_ref().map(|_| Instant::now() + linger);
        let mut idle_since = None::<Instant>;
        loop {
            if let Some(j) = self.pop() {
                return Ok(j);
            }
            if raised() {
                return Err(Gone::News);
            }
            let st = self.status.load(Ordering::Acquire);
            if st != OPEN {
                if st != WAIT {
                    // Cancelled or broken: anything that slipped in is not run.
                    self.drain(self.closed_error());
                }
                if self.try_leave(0) {
                    return Err(Gone::Left);
                }
                continue;
            }
            if self.workers.load(Ordering::Relaxed) > self.max_workers.load(Ordering::Relaxed)
                && self.try_leave(self.max_workers.load(Ordering::Relaxed))
            {
                return Err(Gone::Left);
            }
            if !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            if linger_until.is_some_and(|u| Instant::now() < u) {
                std::thread::yield_now();
                continue;
            }
            if lingering.take().is_some() {
                linger_until = None;
                continue;
            }
            // Sleep: register as a sleeper under the producers' lock, and only if the queue
            // is empty; we hold `sleep_mx` until the wait releases it, so a pusher that saw us
            // registered cannot notify before we wait.
            let since = *idle_since.get_or_insert_with(Instant::now);
            let g = lock(&self.sleep_mx);
            // Raised before its raiser takes `sleep_mx` to wake sleepers: seen here, or the
            // wake-up comes after this thread waits.
            if raised() {
                continue;
            }
            let asleep = self.queue.locked(|sleepers, empty| {
                if empty && self.status.load(Ordering::SeqCst) == OPEN {
                    *sleepers += 1;
                    true
                } else {
                    false
                }
            });
            if !asleep {
                continue;
            }
            let wait = match self.cfg.idle_timeout {
                Some(t) => t.saturating_sub(since.elapsed()),
                None => Duration::from_secs(3600),
            };
            let (g, _) = self
                .sleep_cv
                .wait_timeout(g, wait)
                .unwrap_or_else(|p| p.into_inner());
            drop(g);
            self.queue.locked(|sleepers, _| *sleepers -= 1);
            if let Some(t) = self.cfg.idle_timeout
                && since.elapsed() >= t
                && self.queue.is_empty()
            {
                if self.try_leave(self.cfg.min_workers) {
                    self.rare.idle_exits.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(target: "pool", pool = %self.cfg.name, "idle worker exits");
                    return Err(Gone::Left);
                }
                idle_since = None;
            }
            backoff.reset();
        }
    }

    fn slot_main(self: Arc<Self>, slot: Arc<SlotShared>) {
        CURRENT_ENGINE.with(|c| c.set(Arc::as_ptr(&self) as *const () as usize));
        panic::set_callback_counter(self.rare.callback_panics.clone());
        let started = match panic::catch(|| self.backend.start(slot.id)) {
            Ok(r) => r,
            Err(p) => Err(StartError::Initializer(format!(
                "the worker start panicked: {}",
                p.message
            ))),
        };
        // A pipelining worker counts itself idle before it stops counting as starting: in
        // between, `all_busy` would hold and another slot could pipeline a task behind a busy
        // worker while this one is about to be idle.
        let pre_idle = matches!(&started, Ok(w) if w.max_in_flight() > 1);
        if pre_idle {
            self.idle.fetch_add(1, Ordering::SeqCst);
        }
        self.starting.fetch_sub(1, Ordering::SeqCst);
        let mut worker = match started {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(target: "pool", pool = %self.cfg.name, worker = slot.id.0,
                    error = %e, "worker start failed");
                self.rare.start_failures.fetch_add(1, Ordering::Relaxed);
                self.slot_gone(&slot, false);
                self.start_failed(e);
                return;
            }
        };
        self.start_failures_in_a_row.store(0, Ordering::SeqCst);
        self.rare.spawned.fetch_add(1, Ordering::Relaxed);
        tracing::info!(target: "pool", pool = %self.cfg.name, worker = slot.id.0,
            pid = worker.pid(), "worker spawned");
        if let Some(k) = worker.killer() {
            let _ = slot.killer.set(k);
        }
        let env = SlotEnv {
            slot: &slot,
            counters: &slot.counters,
            pid: worker.pid(),
            death: std::cell::RefCell::new(None),
            task_timeout: self.cfg.task_timeout,
            watchdog: &self.watchdog,
            killing: &self.killing,
        };
        let k = worker.max_in_flight();
        let exit = if k > 1 {
            // Where the idle worker waits, lendable to callers (`Engine::call`).
            let spot = self.lends.then(|| {
                let spot = Arc::new(Spot::new(Arc::clone(&slot), worker.pid()));
                lock(&self.spots).push(Arc::clone(&spot));
                spot
            });
            let (exit, w) = self.pipelined(worker, &env, &slot, k, pre_idle, spot.as_deref());
            worker = w;
            if let Some(spot) = &spot {
                lock(&self.spots).retain(|s| !Arc::ptr_eq(s, spot));
            }
            exit
        } else {
            self.one_by_one(&mut worker, &env, &slot)
        };
        let open = self.status.load(Ordering::Acquire) == OPEN;
        let mut already_left = matches!(exit, Exit::Left);
        match exit {
            Exit::Left => {}
            Exit::Died { counted } => {
                if counted {
                    self.rare.died.fetch_add(1, Ordering::Relaxed);
                }
                let why = env.take_death();
                if counted {
                    tracing::warn!(target: "pool", pool = %self.cfg.name, worker = slot.id.0,
                        pid = env.pid, why = why.as_deref().unwrap_or("unknown"),
                        "worker died");
                } else {
                    tracing::info!(target: "pool", pool = %self.cfg.name, worker = slot.id.0,
                        pid = env.pid, why = why.as_deref().unwrap_or("killed by the pool"),
                        "worker killed");
                }
                if self.cfg.on_worker_death == OnWorkerDeath::BreakPool && counted && open {
                    self.break_pool(BrokenReason::new(format!(
                        "{} died and on_worker_death is BreakPool",
                        slot.id
                    )));
                } else if open || self.status.load(Ordering::Acquire) == WAIT {
                    self.rare.replaced.fetch_add(1, Ordering::Relaxed);
                    // Hand our place in `workers` to the replacement.
                    self.starting.fetch_add(1, Ordering::SeqCst);
                    self.spawn_reserved();
                    already_left = true;
                }
            }
            Exit::Recycle => {
                if open || self.status.load(Ordering::Acquire) == WAIT {
                    self.rare.recycled.fetch_add(1, Ordering::Relaxed);
                    self.starting.fetch_add(1, Ordering::SeqCst);
                    self.spawn_reserved();
                    already_left = true;
                }
            }
        }
        let deadline = Instant::now() + self.cfg.stop_timeout;
        if let Err(e) = worker.stop(deadline) {
            lock(&self.ctl)
                .finalizer_errors
                .push(format!("{}: {e}", slot.id));
        }
        self.slot_gone(&slot, already_left);
    }

    /// The slot's loop for workers that run one task at a time.
    fn one_by_one(
        self: &Arc<Self>,
        worker: &mut B::Worker,
        env: &SlotEnv<'_>,
        slot: &Arc<SlotShared>,
    ) -> Exit {
        let mut tasks = 0u64;
        loop {
            let Ok(job) = self.find_job(Duration::ZERO, false, None) else {
                return Exit::Left;
            };
            bump(&slot.counters.taken);
            let ran = job.run(worker, env);
            if ran == Ran::Skipped {
                continue;
            }
            tasks += 1;
            if matches!(ran, Ran::Err | Ran::Lost) && !worker.alive() {
                return Exit::Died {
                    counted: ran == Ran::Err && !self.killing.load(Ordering::Relaxed),
                };
            }
            if self.recycle_due(tasks, worker, slot, env) {
                return Exit::Recycle;
            }
        }
    }

    /// The slot's loop for pipelining workers: up to `k` tasks in flight (see README.md).
    fn pipelined(
        self: &Arc<Self>,
        mut worker: B::Worker,
        env: &SlotEnv<'_>,
        slot: &Arc<SlotShared>,
        k: usize,
        counted_idle: bool,
        spot: Option<&Spot<B::Worker>>,
    ) -> (Exit, B::Worker) {
        let mut flights: std::collections::VecDeque<Box<dyn Flight<B::Worker>>> =
            std::collections::VecDeque::with_capacity(k);
        // Dequeued but not pipelinable: runs once the flights have landed.
        let mut held: Option<JobRef<B::Worker>> = None;
        // Tasks finished on this worker.
        let mut tasks = 0u64;
        // Send nothing more: the worker is to be recycled, or a send found it gone.
        let mut recycle = false;
        let mut gone = false;
        // Send behind others only while tasks are quick: the last one the worker ran took
        // under `QUICK`, and the one it runs now started less than `QUICK` ago. A long task
        // then holds up at most the few sent behind it before it was known to be long.
        let mut quick = false;
        let mut head_since = Instant::now();
        // Counted in `idle` already (see below, and `slot_main`).
        let mut idle = counted_idle;
        let max_tasks = self.cfg.max_tasks_per_worker;
        loop {
            if flights.is_empty() {
                if recycle {
                    if let Some(j) = held.take() {
                        self.requeue(slot, j);
                    }
                    return (Exit::Recycle, worker);
                }
                if gone {
                    // A send found it gone, after the replies it wrote had come: it died
                    // between tasks. (`stop` reaps it.)
                    if let Some(j) = held.take() {
                        self.requeue(slot, j);
                    }
                    return (
                        Exit::Died {
                            counted: !self.killing.load(Ordering::Relaxed),
                        },
                        worker,
                    );
                }
                let job = match held.take() {
                    Some(j) => j,
                    None => {
                        let since = Instant::now();
                        let counted = std::mem::take(&mut idle);
                        // Idle: the worker waits in the spot, where a caller may borrow it
                        // (`Shared::call_job`); taken back as soon as there is news.
                        let (found, lent_death);
                        (worker, found, lent_death) = match spot {
                            Some(spot) => {
                                spot.park(worker);
                                let found = self.find_job(LINGER, counted, Some(&spot.news));
                                let (w, death) = spot.unpark();
                                (w, found, death)
                            }
                            None => (worker, self.find_job(LINGER, counted, None), None),
                        };
                        if let Some(why) = lent_death {
                            // It died running a task for a caller (who got that task's
                            // error); handled as any death between tasks.
                            env.note_death_text(why);
                            return match found {
                                Err(Gone::Left) => (Exit::Left, worker),
                                Ok(j) => {
                                    self.requeue(slot, j);
                                    let counted = !self.killing.load(Ordering::Relaxed);
                                    (Exit::Died { counted }, worker)
                                }
                                Err(Gone::News) => {
                                    let counted = !self.killing.load(Ordering::Relaxed);
                                    (Exit::Died { counted }, worker)
                                }
                            };
                        }
                        let j = match found {
                            Ok(j) => j,
                            Err(Gone::Left) => return (Exit::Left, worker),
                            // News without a death: nothing to do but look again.
                            Err(Gone::News) => continue,
                        };
                        bump(&slot.counters.taken);
                        // After a real sleep (`find_job` returns at once when a task is
                        // queued), make sure the worker did not die meanwhile (killed from
                        // outside): the task goes to its replacement instead of failing for
                        // a death it had nothing to do with.
                        if since.elapsed() >= LINGER && !worker.alive() {
                            env.note_death(&TaskError::Broken(BrokenReason::new(
                                "the worker died while idle",
                            )));
                            self.requeue(slot, j);
                            return (Exit::Died { counted: true }, worker);
                        }
                        j
                    }
                };
                let ran = if job.pipelinable(&worker, env) {
                    match job.begin(&mut worker, env, true) {
                        Begin::Skipped => Ran::Skipped,
                        Begin::Sent(f) => {
                            head_since = Instant::now();
                            flights.push_back(f);
                            continue;
                        }
                        // Nothing else was in flight: fails as `run` would.
                        Begin::NotDelivered(f, e) => {
                            let ran = f.finish(Err(e), &mut worker, env);
                            env.set_gate(None);
                            ran
                        }
                    }
                } else {
                    job.run(&mut worker, env)
                };
                if ran == Ran::Skipped {
                    continue;
                }
                tasks += 1;
                if matches!(ran, Ran::Err | Ran::Lost) && !worker.alive() {
                    return (
                        Exit::Died {
                            counted: ran == Ran::Err && !self.killing.load(Ordering::Relaxed),
                        },
                        worker,
                    );
                }
                recycle = self.recycle_due(tasks, &mut worker, slot, env);
                continue;
            }
            // Something is in flight: send more while there is room and work is queued.
            if !recycle
                && !gone
                && held.is_none()
                && flights.len() < k
                && max_tasks.is_none_or(|m| tasks + (flights.len() as u64) < m)
                && quick
                && head_since.elapsed() < QUICK
                && self.all_busy()
                && let Some(job) = self.pop()
            {
                bump(&slot.counters.taken);
                if job.pipelinable(&worker, env) {
                    match job.begin(&mut worker, env, false) {
                        Begin::Skipped => {}
                        Begin::Sent(f) => flights.push_back(f),
                        Begin::NotDelivered(f, e) => {
                            // Never reached the worker: it runs elsewhere.
                            env.note_death(&e);
                            self.requeue(slot, Arc::new(Resume::new(f)));
                            gone = true;
                        }
                    }
                } else {
                    held = Some(job);
                }
                continue;
            }
            // Wait for the oldest reply; the next oldest is then what the worker runs.
            let f = flights.pop_front().expect("a task in flight");
            let reply = worker.recv(f.ctx());
            let now = Instant::now();
            quick = now.duration_since(head_since) < QUICK;
            head_since = now;
            env.set_gate(flights.front().map(|n| n.ctx().task));
            if let Some(next) = flights.front()
                && next.resolved()
            {
                // Killed while it waited in flight: now that the worker runs it, kill the
                // worker (as for any running task); the tasks behind it run elsewhere.
                slot.kill_if_running(next.ctx().task);
            }
            // The last task in flight and nothing queued: count this slot idle *before* the
            // caller sees the result, so a task it submits next finds an idle worker instead
            // of starting another one.
            idle =
                flights.is_empty() && held.is_none() && !recycle && !gone && self.queue.is_empty();
            if idle {
                self.idle.fetch_add(1, Ordering::SeqCst);
            }
            let ran = f.finish(reply, &mut worker, env);
            tasks += 1;
            if matches!(ran, Ran::Err | Ran::Lost) && !worker.alive() {
                if std::mem::take(&mut idle) {
                    self.idle.fetch_sub(1, Ordering::SeqCst);
                }
                // It died running that task; the ones sent after it had not started.
                for f in flights.drain(..) {
                    self.requeue(slot, Arc::new(Resume::new(f)));
                }
                if let Some(j) = held.take() {
                    self.requeue(slot, j);
                }
                return (
                    Exit::Died {
                        counted: ran == Ran::Err && !self.killing.load(Ordering::Relaxed),
                    },
                    worker,
                );
            }
            if !recycle {
                recycle = self.recycle_due(tasks, &mut worker, slot, env);
            }
            if recycle && std::mem::take(&mut idle) {
                self.idle.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Every worker the pool may have is started and busy: a task sent behind others now
    /// could not have started sooner elsewhere.
    #[inline]
    fn all_busy(&self) -> bool {
        self.idle.load(Ordering::SeqCst) == 0
            && self.starting.load(Ordering::SeqCst) == 0
            && self.workers.load(Ordering::SeqCst) >= self.max_workers.load(Ordering::Relaxed)
    }

    /// After a task: is the worker due for recycling (task count or memory)?
    fn recycle_due(
        &self,
        tasks: u64,
        worker: &mut B::Worker,
        slot: &Arc<SlotShared>,
        env: &SlotEnv<'_>,
    ) -> bool {
        if self.cfg.max_tasks_per_worker.is_some_and(|m| tasks >= m) {
            tracing::info!(target: "pool", pool = %self.cfg.name, worker = slot.id.0,
                pid = env.pid, reason = "max_tasks_per_worker", tasks,
                "worker recycled");
            return true;
        }
        if let Some(limit) = self.cfg.max_memory_per_worker
            && let Some(m) = worker.memory_bytes()
            && m > limit
        {
            // The first memory recycle of a pool is a warning (the limit may be too low for
            // the work); the later ones are routine.
            if self.memory_warned.swap(true, Ordering::Relaxed) {
                tracing::info!(target: "pool", pool = %self.cfg.name, worker = slot.id.0,
                    pid = env.pid, reason = "max_memory_per_worker", memory_bytes = m,
                    limit, "worker recycled");
            } else {
                tracing::warn!(target: "pool", pool = %self.cfg.name, worker = slot.id.0,
                    pid = env.pid, reason = "max_memory_per_worker", memory_bytes = m,
                    limit, "worker recycled");
            }
            return true;
        }
        false
    }

    /// Put a dequeued job back (its worker died or is recycled before running it). It is
    /// not a new task: this slot gives its `taken` count back. On a pool that is cancelled
    /// or broken meanwhile it is resolved instead, as the queue's other tasks were.
    fn requeue(&self, slot: &SlotShared, job: JobRef<B::Worker>) {
        let t = &slot.counters.taken;
        t.store(
            t.load(Ordering::Relaxed).saturating_sub(1),
            Ordering::Relaxed,
        );
        let st = self.status.load(Ordering::Acquire);
        if st == CANCEL || st == BROKEN {
            let e = if st == CANCEL {
                TaskError::Cancelled
            } else {
                self.closed_error()
            };
            job.fail(e);
            self.rare.drained.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(b) = &self.bound {
            // Over the cap for a moment rather than lose it; the next pop releases it.
            b.len.fetch_add(1, Ordering::SeqCst);
        }
        let sleepers = self.queue.push(job, |sleepers, _| sleepers);
        if sleepers > 0 {
            self.wake_one();
        }
    }

    fn shutdown(&self, mode: Shutdown, deadline: Option<Duration>) -> ShutdownReport {
        let until = deadline.and_then(|d| Instant::now().checked_add(d));
        let target = if mode == Shutdown::Wait { WAIT } else { CANCEL };
        let mut report = ShutdownReport::default();
        let prev =
            match self
                .status
                .compare_exchange(OPEN, target, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(p) => p,
                Err(p) if p == WAIT && target == CANCEL => {
                    self.status.store(CANCEL, Ordering::SeqCst);
                    p
                }
                Err(p) => p,
            };
        let first = prev == OPEN || (prev == WAIT && target == CANCEL);
        // Logged when it changes something: the first shutdown, or an escalation while
        // workers are still running (not the no-op `CancelPending` of a dropped handle).
        let logged = prev == OPEN
            || ((first || mode == Shutdown::Kill)
                && prev != BROKEN
                && self.workers.load(Ordering::Relaxed) > 0);
        if logged {
            tracing::info!(target: "pool", pool = %self.cfg.name, mode = ?mode,
                workers = self.workers.load(Ordering::Relaxed), "shutdown begun");
        }
        if first && target == CANCEL {
            report.cancelled = self.drain(TaskError::Cancelled);
        }
        if mode == Shutdown::Kill && prev != BROKEN {
            self.killing.store(true, Ordering::SeqCst);
            let slots = lock(&self.ctl).slots.clone();
            for s in slots {
                if s.kill_now() {
                    report.killed += 1;
                }
            }
        }
        self.wake_all_sleepers();
        if let Some(b) = &self.bound {
            b.wake_all();
        }
        // A task that shuts down its own pool must not wait for its own worker.
        let me = std::ptr::from_ref(self) as *const () as usize;
        let own = usize::from(CURRENT_ENGINE.with(|c| c.get()) == me);
        let mut g = lock(&self.ctl);
        // Until every slot thread is done, its worker's `stop` (finalizer) included: a slot
        // leaves the `workers` count before it stops its worker.
        while self.live.load(Ordering::SeqCst) > own {
            match until {
                None => g = self.ctl_cv.wait(g).unwrap_or_else(|p| p.into_inner()),
                Some(u) => {
                    let now = Instant::now();
                    if now >= u {
                        break;
                    }
                    g = self
                        .ctl_cv
                        .wait_timeout(g, (u - now).min(Duration::from_millis(50)))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
            // Sleepers that missed the first wake-up (they were between checks) get another.
            drop(g);
            self.wake_all_sleepers();
            g = lock(&self.ctl);
        }
        report.finalizer_errors = std::mem::take(&mut g.finalizer_errors);
        report.unfinished_workers = self.live.load(Ordering::SeqCst);
        drop(g);
        if logged {
            tracing::info!(target: "pool", pool = %self.cfg.name, mode = ?mode,
                cancelled = report.cancelled, killed = report.killed,
                unfinished_workers = report.unfinished_workers,
                finalizer_errors = report.finalizer_errors.len(), "shutdown finished");
        }
        report
    }

    fn stats(&self) -> Stats {
        let g = lock(&self.ctl);
        let mut sum = g.retired;
        for s in &g.slots {
            let c = &s.counters;
            sum[0] += c.taken.load(Ordering::Relaxed);
            sum[1] += c.completed.load(Ordering::Relaxed);
            sum[2] += c.failed.load(Ordering::Relaxed);
            sum[3] += c.cancelled.load(Ordering::Relaxed);
        }
        drop(g);
        let r = &self.rare;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let inline = ld(&r.inline_done) + ld(&r.inline_failed);
        let submitted = self.submitted.load(Ordering::Relaxed);
        let workers = self.workers.load(Ordering::Relaxed);
        let idle = self.idle.load(Ordering::Relaxed).min(workers);
        Stats {
            workers,
            busy: workers - idle,
            idle,
            pending: submitted.saturating_sub(sum[0] + ld(&r.drained) + inline) as usize,
            submitted,
            completed: sum[1] + ld(&r.inline_done),
            failed: sum[2] + ld(&r.timed_out) + ld(&r.inline_failed),
            cancelled: sum[3] + ld(&r.drained),
            timed_out: ld(&r.timed_out),
            replaced: ld(&r.replaced),
            recycled: ld(&r.recycled),
            spawned: ld(&r.spawned),
            died: ld(&r.died),
            idle_exits: ld(&r.idle_exits),
            start_failures: ld(&r.start_failures),
            callback_panics: ld(&r.callback_panics),
            lent: ld(&r.lent),
            executor_id: 0,
        }
    }
}
