//! Lending (`Engine::call`): a caller that will block for one task's value runs it itself on
//! an idle pipelining worker parked in its slot's spot (`spot.rs`), instead of handing it to
//! that worker's slot thread: two parties per round trip instead of three. The protocol is
//! `README.md`'s "Lending".

use std::sync::Arc;

use super::job::{self, Job, Ran, Runnable};
use super::shared::{OPEN, Shared};
use super::slot::SlotEnv;
use super::spot::Spot;
use super::stats::{Counters, bump, count};
use super::{Backend, Worker};
use crate::error::TaskError;
use crate::executor::SubmitOptions;

impl<B: Backend> Shared<B> {
    /// See [`Engine::call`].
    pub(super) fn call_job<R: Runnable<B::Worker>>(
        self: &Arc<Self>,
        job: R,
        opts: SubmitOptions,
    ) -> Result<R::Output, TaskError> {
        if self.spots.lends()
            && self.bound.is_none()
            && self.status.load(std::sync::atomic::Ordering::Acquire) == OPEN
            && let Some((spot, worker)) = self.spots.borrow()
        {
            return self.run_lent(&spot, worker, job, opts);
        }
        match self.submit_job(job, opts) {
            Ok(f) => f.result(),
            Err(e) => Err(e.to_task_error()),
        }
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
        let env = SlotEnv::new(
            &spot.slot,
            &scratch,
            spot.pid,
            self.cfg.task_timeout,
            &self.watchdog,
            &self.killing,
        );
        count(&self.rare.lent);
        let lent = |worker: &mut B::Worker, on: bool| {
            if let Some(p) = worker.pipeline() {
                p.lent(on);
            }
        };
        lent(&mut worker, true);
        let ran = Job::run(cell, &mut worker, &env);
        lent(&mut worker, false);
        match ran {
            Ran::Ok => self.rare.ran_inline(true),
            Ran::Err => self.rare.ran_inline(false),
            // Resolved by the watchdog or a kill, and counted there.
            Ran::Lost | Ran::Skipped => {}
        }
        let death = (matches!(ran, Ran::Err | Ran::Lost) && !worker.alive()).then(|| {
            env.take_death()
                .unwrap_or_else(|| "it died running a task for a caller".to_owned())
        });
        if spot.give_back(worker, death) {
            // Its slot may be asleep: it handles the death (replacement, BreakPool) now.
            self.sleep.wake_all();
        }
        fut.result()
    }
}
