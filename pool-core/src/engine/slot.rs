//! The slot handle: what other threads may see of a worker slot (its id, counters, killer and
//! kill gate), and what a job sees of the slot running it (`SlotEnv`).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::stats::Counters;
use super::watchdog::{Resolve, Watch, Watchdog};
use super::{Killer, RunContext};
use crate::error::{TaskError, TaskId, WorkerId};
use crate::loom::lock_std as lock;

/// What other threads may see of a worker slot.
pub(crate) struct SlotShared {
    pub(super) id: WorkerId,
    pub(super) counters: Counters,
    pub(super) killer: OnceLock<Killer>,
    /// The task the slot is running, for killers (only maintained when there is a killer).
    gate: Mutex<Option<TaskId>>,
}

impl SlotShared {
    pub(super) fn new(id: WorkerId) -> Self {
        SlotShared {
            id,
            counters: Counters::default(),
            killer: OnceLock::new(),
            gate: Mutex::new(None),
        }
    }

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
    pub(super) fn kill_now(&self) -> bool {
        let g = lock(&self.gate);
        if g.is_some()
            && let Some(k) = self.killer.get()
        {
            k.kill();
            return true;
        }
        false
    }

    /// Show `task` in the gate: the task the worker is running (pipelining: the oldest in
    /// flight), the only one a kill may hit.
    #[inline]
    pub(super) fn set_gate(&self, task: Option<TaskId>) {
        if self.killer.get().is_some() {
            *lock(&self.gate) = task;
        }
    }
}

/// What a job sees of the slot running it.
pub(crate) struct SlotEnv<'a> {
    pub(super) slot: &'a Arc<SlotShared>,
    /// Where task outcomes are counted: the slot's own counters, or a borrower's scratch
    /// counters for a run on a lent worker (see `lend.rs`).
    pub(super) counters: &'a Counters,
    pub(super) pid: Option<u32>,
    /// Why the worker died, noted by the job that saw it (for the `worker died` event).
    death: RefCell<Option<String>>,
    task_timeout: Option<Duration>,
    watchdog: &'a Watchdog,
    killing: &'a AtomicBool,
}

impl<'a> SlotEnv<'a> {
    pub(super) fn new(
        slot: &'a Arc<SlotShared>,
        counters: &'a Counters,
        pid: Option<u32>,
        task_timeout: Option<Duration>,
        watchdog: &'a Watchdog,
        killing: &'a AtomicBool,
    ) -> Self {
        SlotEnv {
            slot,
            counters,
            pid,
            death: RefCell::new(None),
            task_timeout,
            watchdog,
            killing,
        }
    }

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
    /// The pool is shutting down with `Shutdown::Kill`: a death is the pool's doing.
    #[inline]
    pub(crate) fn killing(&self) -> bool {
        self.killing.load(Ordering::Relaxed)
    }

    pub(crate) fn watch(
        &self,
        cell: Arc<dyn Resolve>,
        deadline: Instant,
        after: Duration,
        ctx: &RunContext,
    ) {
        let kill = self.killer_for(ctx.task);
        self.watchdog.watch(Watch {
            deadline,
            cell,
            after,
            worker: self.slot.id,
            pid: self.pid,
            task: ctx.task_name(),
            kill,
        });
    }

    /// A killer for the cell of task `id`, gated so it can only hit that task; opens the
    /// gate for `id`.
    #[inline]
    pub(crate) fn task_killer(&self, id: TaskId) -> Option<Killer> {
        let k = self.killer_for(id)?;
        self.slot.set_gate(Some(id));
        Some(k)
    }

    /// A killer for the cell of task `id` that kills only while the gate shows `id` (the
    /// gate is not touched). It holds the slot weakly: a finished task's future, or its watch
    /// before the deadline, must not keep a retired worker's handle (a process's pidfd) open;
    /// while the task runs, the engine holds the slot.
    #[inline]
    pub(crate) fn killer_for(&self, id: TaskId) -> Option<Killer> {
        self.slot.killer.get()?;
        let slot = Arc::downgrade(self.slot);
        Some(Killer::new(move || {
            if let Some(slot) = slot.upgrade() {
                slot.kill_if_running(id);
            }
        }))
    }

    /// Note the error after which the worker may be dead.
    #[cold]
    pub(crate) fn note_death(&self, e: &TaskError) {
        *self.death.borrow_mut() = Some(e.to_string());
    }

    #[cold]
    pub(super) fn note_death_text(&self, why: String) {
        *self.death.borrow_mut() = Some(why);
    }

    pub(super) fn take_death(&self) -> Option<String> {
        self.death.borrow_mut().take()
    }

    #[inline]
    pub(crate) fn task_finished(&self) {
        self.slot.set_gate(None);
    }
}
