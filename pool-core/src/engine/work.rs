//! The slot loop: one loop for every worker. A worker that does not pipeline takes a task,
//! runs it, and looks for the next; a pipelining worker (`Worker::pipeline`) also keeps up to
//! `max_in_flight` tasks sent (`pipeline.rs`) and, while idle, waits in its spot where a caller
//! may borrow it (`spot.rs`, `lend.rs`). How a worker's death or recycling ends the loop is
//! decided here; what then happens to the slot is `slots.rs`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::job::{Begin, Ran, Resume};
use super::pipeline::Flights;
use super::search::Gone;
use super::shared::{BROKEN, CANCEL, JobRef, Shared};
use super::slot::{SlotEnv, SlotShared};
use super::spot::Spot;
use super::stats::{bump, count};
use super::{Backend, Worker};
use crate::error::{BrokenReason, TaskError};

/// Pipelining workers (processes): how long an idle slot keeps polling for the next task
/// before it sleeps. A caller submitting task after task (one round trip each) then finds
/// the slot awake instead of paying a futex wake-up per task.
pub(super) const LINGER: Duration = Duration::from_micros(100);

/// Why a slot's loop ended.
pub(super) enum Exit {
    /// Already left the `workers` count (idle timeout, resize, shutdown).
    Left,
    /// The worker died; `counted`: not the pool's doing (a kill it asked for).
    Died { counted: bool },
    /// `max_tasks_per_worker` or the memory limit.
    Recycle,
}

/// How the loop drives its worker.
pub(super) struct Variant<'a, W> {
    /// Tasks in flight at most: 1 for a worker that does not pipeline.
    pub(super) k: usize,
    /// Where the idle worker waits, lendable to callers (pipelining pools that lend).
    pub(super) spot: Option<&'a Spot<W>>,
}

impl<B: Backend> Shared<B> {
    /// The slot's loop (see `README.md`, "Life of a worker slot" and "Pipelining").
    /// `counted_idle`: the slot already counts itself idle.
    pub(super) fn work(
        self: &Arc<Self>,
        mut worker: B::Worker,
        env: &SlotEnv<'_>,
        slot: &Arc<SlotShared>,
        v: Variant<'_, B::Worker>,
        counted_idle: bool,
    ) -> (Exit, B::Worker) {
        let pipelines = v.k > 1;
        let linger = if pipelines { LINGER } else { Duration::ZERO };
        let mut fl = Flights::new(v.k);
        // Tasks finished on this worker.
        let mut tasks = 0u64;
        // Counted in `idle` already (see below, and `slot_main`).
        let mut idle = counted_idle;
        let max_tasks = self.cfg.max_tasks_per_worker;
        loop {
            if fl.is_empty() {
                if fl.recycle || fl.gone {
                    if let Some(j) = fl.held.take() {
                        self.requeue(slot, j);
                    }
                    // Gone: a send found it gone, after the replies it wrote had come: it
                    // died between tasks. (`stop` reaps it.)
                    let exit = if fl.recycle {
                        Exit::Recycle
                    } else {
                        self.died_between()
                    };
                    return (exit, worker);
                }
                let job = match fl.held.take() {
                    Some(j) => j,
                    None => {
                        let since = Instant::now();
                        let counted = std::mem::take(&mut idle);
                        // Idle: the worker waits in the spot, where a caller may borrow it;
                        // taken back as soon as there is news.
                        let (found, lent_death);
                        (worker, found, lent_death) = match v.spot {
                            Some(spot) => {
                                spot.park(worker);
                                let found = self.find_job(linger, counted, Some(&spot.news));
                                let (w, death) = spot.unpark();
                                (w, found, death)
                            }
                            None => (worker, self.find_job(linger, counted, None), None),
                        };
                        if let Some(why) = lent_death {
                            // It died running a task for a caller (who got that task's
                            // error); handled as any death between tasks.
                            env.note_death_text(why);
                            return match found {
                                Err(Gone::Left) => (Exit::Left, worker),
                                Ok(j) => {
                                    self.requeue(slot, j);
                                    (self.died_between(), worker)
                                }
                                Err(Gone::News) => (self.died_between(), worker),
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
                        if pipelines && since.elapsed() >= LINGER && !worker.alive() {
                            env.note_death(&TaskError::Broken(BrokenReason::new(
                                "the worker died while idle",
                            )));
                            self.requeue(slot, j);
                            return (Exit::Died { counted: true }, worker);
                        }
                        j
                    }
                };
                let ran = if pipelines && job.pipelinable(&mut worker, env) {
                    match job.begin(&mut worker, env, true) {
                        Begin::Skipped => Ran::Skipped,
                        Begin::Sent(f) => {
                            fl.sent_head(f);
                            continue;
                        }
                        // Nothing else was in flight: fails as `run` would.
                        Begin::NotDelivered(f, e) => {
                            let ran = f.finish(Err(e), &mut worker, env);
                            slot.set_gate(None);
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
                if let Some(exit) = self.died_running(ran, &mut worker) {
                    return (exit, worker);
                }
                fl.recycle = self.recycle_due(tasks, &mut worker, slot, env);
                continue;
            }
            // Something is in flight: send more while there is room and work is queued.
            if fl.may_send(tasks, max_tasks)
                && self.all_busy()
                && let Some(job) = self.pop()
            {
                bump(&slot.counters.taken);
                if job.pipelinable(&mut worker, env) {
                    match job.begin(&mut worker, env, false) {
                        Begin::Skipped => {}
                        Begin::Sent(f) => fl.sent.push_back(f),
                        Begin::NotDelivered(f, e) => {
                            // Never reached the worker: it runs elsewhere.
                            env.note_death(&e);
                            self.requeue(slot, Arc::new(Resume::new(f)));
                            fl.gone = true;
                        }
                    }
                } else {
                    fl.held = Some(job);
                }
                continue;
            }
            // Wait for the oldest reply; the next oldest is then what the worker runs.
            let f = fl.land();
            let reply = match worker.pipeline() {
                Some(p) => p.recv(f.ctx()),
                None => unreachable!("only a pipelining worker has tasks in flight"),
            };
            slot.set_gate(fl.sent.front().map(|n| n.ctx().task));
            if let Some(next) = fl.sent.front()
                && next.resolved()
            {
                // Killed while it waited in flight: now that the worker runs it, kill the
                // worker (as for any running task); the tasks behind it run elsewhere.
                slot.kill_if_running(next.ctx().task);
            }
            // The last task in flight and nothing queued: count this slot idle *before* the
            // caller sees the result, so a task it submits next finds an idle worker instead
            // of starting another one.
            idle = fl.drained() && self.queue.is_empty();
            if idle {
                self.sleep.enter_idle();
            }
            let ran = f.finish(reply, &mut worker, env);
            tasks += 1;
            if let Some(exit) = self.died_running(ran, &mut worker) {
                if std::mem::take(&mut idle) {
                    self.sleep.leave_idle();
                }
                // It died running that task; the ones sent after it had not started.
                for f in fl.sent.drain(..) {
                    self.requeue(slot, Arc::new(Resume::new(f)));
                }
                if let Some(j) = fl.held.take() {
                    self.requeue(slot, j);
                }
                return (exit, worker);
            }
            if !fl.recycle {
                fl.recycle = self.recycle_due(tasks, &mut worker, slot, env);
            }
            if fl.recycle && std::mem::take(&mut idle) {
                self.sleep.leave_idle();
            }
        }
    }

    /// After a task ran (`ran`): did its worker die? A failure after which the worker is not
    /// alive is a death, counted unless the pool killed it.
    #[inline]
    fn died_running(&self, ran: Ran, worker: &mut B::Worker) -> Option<Exit> {
        (matches!(ran, Ran::Err | Ran::Lost) && !worker.alive()).then(|| Exit::Died {
            counted: ran == Ran::Err && !self.killing.load(Ordering::Relaxed),
        })
    }

    /// The worker died between tasks (a send found it gone, or it died lent to a caller):
    /// counted unless the pool is killing its workers.
    fn died_between(&self) -> Exit {
        Exit::Died {
            counted: !self.killing.load(Ordering::Relaxed),
        }
    }

    /// Every worker the pool may have is started and busy: a task sent behind others now
    /// could not have started sooner elsewhere.
    #[inline]
    fn all_busy(&self) -> bool {
        self.sleep.idle() == 0 && self.census.all_started_and_full()
    }

    /// Put a dequeued job back (its worker died or is recycled before running it). It is
    /// not a new task: this slot gives its `taken` count back. On a pool that is cancelled
    /// or broken meanwhile it is resolved instead, as the queue's other tasks were.
    pub(super) fn requeue(&self, slot: &SlotShared, job: JobRef<B::Worker>) {
        slot.counters.untake();
        let st = self.status.load(Ordering::Acquire);
        if st == CANCEL || st == BROKEN {
            let e = if st == CANCEL {
                TaskError::Cancelled
            } else {
                self.closed_error()
            };
            job.fail(e);
            count(&self.rare.drained);
            return;
        }
        if let Some(b) = &self.bound {
            b.force_reserve();
        }
        let sleepers = self.queue.push(job, |sleepers, _| sleepers);
        if sleepers > 0 {
            self.sleep.wake_one();
        }
    }
}
