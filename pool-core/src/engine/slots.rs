//! The life of a worker slot: reserving a place and spawning its thread, starting the
//! worker, running the slot loop (`work.rs`), then handling how it ended — a death (counted,
//! replaced or breaking the pool) or a recycle — stopping the worker and leaving the
//! registry (`README.md`, "Life of a worker slot").

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::pool::set_current;
use super::shared::{CANCEL, OPEN, Shared, WAIT};
use super::slot::{SlotEnv, SlotShared};
use super::stats::count;
use super::work::{Exit, Variant};
use super::{Backend, OnWorkerDeath, StartError, Worker};
use crate::error::BrokenReason;
use crate::loom::lock_std as lock;
use crate::panic;

impl<B: Backend> Shared<B> {
    pub(super) fn try_spawn(self: &Arc<Self>) -> bool {
        if !self
            .census
            .reserve(|| self.status.load(Ordering::Relaxed) >= CANCEL)
        {
            return false;
        }
        self.spawn_reserved();
        true
    }

    /// Start a slot thread for a `workers` count already taken, and a `starting` count
    /// already taken.
    fn spawn_reserved(self: &Arc<Self>) {
        let id = self.census.next_id();
        let slot = Arc::new(SlotShared::new(id));
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
            self.census.started();
            count(&self.rare.start_failures);
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
        slot.counters.add_to(&mut g.retired);
        drop(g);
        // Under the producers' lock, like `try_leave`: the last worker of a closed pool
        // makes sure nothing stays queued.
        let stranded = self.queue.locked(|_, empty| {
            let w = if already_left {
                self.census.workers_now()
            } else {
                self.census.leave()
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

    fn start_failed(self: &Arc<Self>, e: StartError) {
        let n = self.census.start_failed();
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
                if !self.queue.is_empty() || self.census.workers() < self.cfg.min_workers {
                    self.try_spawn();
                }
            }
        }
    }

    /// Leave the `workers` (and `idle`) count if `workers` stays at least `min`. Refuses
    /// (false) if a job is queued that must still run. Holds the producers' lock, so a
    /// concurrent push either comes first (and is seen here) or sees this thread gone.
    pub(super) fn try_leave(&self, min: usize) -> bool {
        self.queue.locked(|_, empty| {
            let st = self.status.load(Ordering::SeqCst);
            if !empty && (st == OPEN || st == WAIT) {
                return false;
            }
            if !self.census.leave_above(min) {
                return false;
            }
            self.sleep.leave_idle();
            true
        })
    }

    fn slot_main(self: Arc<Self>, slot: Arc<SlotShared>) {
        set_current(&self);
        panic::set_callback_counter(self.rare.callback_panics.clone());
        let started = match panic::catch(|| self.backend.start(slot.id)) {
            Ok(r) => r,
            Err(p) => Err(StartError::Initializer(format!(
                "the worker start panicked: {}",
                p.message
            ))),
        };
        let mut worker = match started {
            Ok(w) => w,
            Err(e) => {
                self.census.started();
                tracing::warn!(target: "pool", pool = %self.cfg.name, worker = slot.id.0,
                    error = %e, "worker start failed");
                count(&self.rare.start_failures);
                self.slot_gone(&slot, false);
                self.start_failed(e);
                return;
            }
        };
        let k = worker.pipeline().map_or(1, |p| p.max_in_flight().max(1));
        // A pipelining worker counts itself idle before it stops counting as starting: in
        // between, `all_busy` would hold and another slot could pipeline a task behind a busy
        // worker while this one is about to be idle.
        let pre_idle = k > 1;
        if pre_idle {
            self.sleep.enter_idle();
        }
        self.census.started();
        self.census.start_succeeded();
        count(&self.rare.spawned);
        tracing::info!(target: "pool", pool = %self.cfg.name, worker = slot.id.0,
            pid = worker.pid(), "worker spawned");
        if let Some(k) = worker.killer() {
            let _ = slot.killer.set(k);
        }
        let env = SlotEnv::new(
            &slot,
            &slot.counters,
            worker.pid(),
            self.cfg.task_timeout,
            &self.watchdog,
            &self.killing,
        );
        let spot = if k > 1 {
            self.spots.open(&slot, worker.pid())
        } else {
            None
        };
        let v = Variant {
            k,
            spot: spot.as_deref(),
        };
        let (exit, worker) = self.work(worker, &env, &slot, v, pre_idle);
        if let Some(spot) = &spot {
            self.spots.close(spot);
        }
        let already_left = self.slot_ended(exit, &slot, &env);
        let deadline = Instant::now() + self.cfg.stop_timeout;
        if let Err(e) = worker.stop(deadline) {
            lock(&self.ctl)
                .finalizer_errors
                .push(format!("{}: {e}", slot.id));
        }
        self.slot_gone(&slot, already_left);
    }

    /// The one place a slot's end is handled: a death is logged and counted, then replaced
    /// or breaks the pool (`OnWorkerDeath`); a recycle is replaced. The replacement takes
    /// this slot's place in `workers`. True if the slot no longer counts in `workers`.
    fn slot_ended(self: &Arc<Self>, exit: Exit, slot: &SlotShared, env: &SlotEnv<'_>) -> bool {
        let open = self.status.load(Ordering::Acquire) == OPEN;
        let replace = |what: &std::sync::atomic::AtomicU64| {
            if open || self.status.load(Ordering::Acquire) == WAIT {
                count(what);
                // Hand our place in `workers` to the replacement.
                self.census.hand_over();
                self.spawn_reserved();
                true
            } else {
                false
            }
        };
        match exit {
            Exit::Left => true,
            Exit::Recycle => replace(&self.rare.recycled),
            Exit::Died { counted } => {
                let why = env.take_death();
                if counted {
                    count(&self.rare.died);
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
                    false
                } else {
                    replace(&self.rare.replaced)
                }
            }
        }
    }

    /// After a task: is the worker due for recycling (task count or memory)?
    pub(super) fn recycle_due(
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
}
