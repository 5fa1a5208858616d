//! [`Engine`]: the handle, the submit path and resizing. The other mechanisms live beside
//! this file, one each (see `README.md`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::job::{self, InputJob, Meta, Runnable};
use super::shared::{BROKEN, OPEN, Shared};
use super::stats::bump;
use super::{Backend, EngineConfig, Rejection};
use crate::error::{BrokenReason, ConfigError, SubmitError, SubmitErrorKind, TaskError};
use crate::executor::{Shutdown, ShutdownReport, Stats, SubmitOptions};
use crate::future::{Future, next_task_id};
use crate::loom::lock_std as lock;
use crate::panic;

thread_local! {
    /// The engine whose slot thread this is (its address), 0 elsewhere.
    static CURRENT_ENGINE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Mark the calling thread as a slot thread of `shared`'s engine.
pub(super) fn set_current<B: Backend>(shared: &Arc<Shared<B>>) {
    CURRENT_ENGINE.with(|c| c.set(Arc::as_ptr(shared) as *const () as usize));
}

/// Is the calling thread a slot thread of the engine whose state is at `shared`?
pub(super) fn is_current<T>(shared: *const T) -> bool {
    CURRENT_ENGINE.with(|c| c.get()) == shared as *const () as usize
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
/// use pool::backend::*;
/// use pool::*;
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
        let shared = Arc::new(Shared::new(backend, config));
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
        let s = self.shared();
        let g = lock(&s.ctl);
        let mut sum = g.retired;
        for slot in &g.slots {
            slot.counters.add_to(&mut sum);
        }
        drop(g);
        let submitted = s.submitted.load(Ordering::Relaxed);
        let workers = s.census.workers();
        s.rare
            .stats(sum, submitted, workers, s.sleep.idle_relaxed())
    }

    /// Change `max_workers` (at least 1). Extra workers exit after their current task.
    pub fn resize(&self, max_workers: usize) {
        let s = self.shared();
        let max = max_workers.max(1);
        let old = s.census.set_max(max);
        if old != max {
            tracing::info!(target: "pool", pool = %s.cfg.name, from = old, to = max, "pool resized");
        }
        s.sleep.wake_all();
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
        is_current(Arc::as_ptr(self.shared()))
    }

    /// Why the pool is broken, if it is.
    pub fn is_broken(&self) -> Option<BrokenReason> {
        lock(&self.shared().ctl).broken.clone()
    }

    /// Has `shutdown` been called (the pool takes no more tasks)? A broken pool is not shut
    /// down: see [`Engine::is_broken`].
    pub fn is_shut_down(&self) -> bool {
        matches!(
            self.shared().status.load(Ordering::SeqCst),
            super::shared::WAIT | super::shared::CANCEL
        )
    }

    /// The configuration the engine runs with (`max_workers` as last resized).
    pub fn config(&self) -> EngineConfig {
        let mut c = self.shared().cfg.clone();
        c.max_workers = self.shared().census.max();
        c
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.shared().backend
    }
}

impl<B: Backend> Shared<B> {
    fn refuse<R>(&self, st: u8, job: R) -> SubmitError<R> {
        let kind = if st == BROKEN {
            SubmitErrorKind::Broken(self.broken_reason())
        } else {
            SubmitErrorKind::Shutdown
        };
        SubmitError::new(kind, Some(job))
    }

    #[inline]
    pub(super) fn submit_job<R: Runnable<B::Worker>>(
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
            if !b.reserve_blocking(|| self.status.load(Ordering::Acquire) == OPEN) {
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
            let stranded =
                self.status.load(Ordering::Relaxed) != OPEN && self.census.workers() == 0;
            (sleepers, queued, stranded)
        });
        if sleepers > 0 {
            self.sleep.wake_one();
        }
        // More queued tasks than idle workers to take them: start one more (up to max).
        // `workers` first: it rarely changes, while `idle` changes whenever a worker runs
        // dry, so a full pool does not pay a cache miss per submit.
        if self.census.has_room() && queued > self.sleep.idle_relaxed() {
            self.try_spawn();
        }
        if stranded {
            self.drain(self.closed_error());
        }
        Ok(fut)
    }

    /// The task's cell (job, future and options in one allocation), with a new task id.
    #[inline]
    pub(super) fn cell_of<R: Runnable<B::Worker>>(
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
        self.rare.ran_inline(r.is_ok());
        let (p, f) = crate::future::promise();
        p.complete(r);
        f
    }
}
