//! Statistics: per-slot task counters written only by their slot's thread (no shared cache
//! line on the hot path) and rare events in shared atomics, summed by `Engine::stats`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::executor::Stats;

/// Add one to a counter only one thread writes (a plain load and store, no RMW).
#[inline]
pub(super) fn bump(a: &AtomicU64) {
    a.store(a.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Per-slot task counters. Written only by the slot's own thread (plain load + store), read
/// by `stats()`.
#[derive(Default)]
pub(crate) struct Counters {
    pub(super) taken: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
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

    /// A dequeued task given back to the queue: it was not taken after all.
    pub(super) fn untake(&self) {
        let t = &self.taken;
        t.store(
            t.load(Ordering::Relaxed).saturating_sub(1),
            Ordering::Relaxed,
        );
    }

    /// Add this slot's counts to `sum` (taken, completed, failed, cancelled).
    pub(super) fn add_to(&self, sum: &mut Tally) {
        sum[0] += self.taken.load(Ordering::Relaxed);
        sum[1] += self.completed.load(Ordering::Relaxed);
        sum[2] += self.failed.load(Ordering::Relaxed);
        sum[3] += self.cancelled.load(Ordering::Relaxed);
    }
}

/// Summed slot counters: taken, completed, failed, cancelled.
pub(super) type Tally = [u64; 4];

/// Rare events, counted with atomic RMWs from any thread.
#[derive(Default)]
pub(crate) struct Rare {
    timed_out: AtomicU64,
    pub(super) replaced: AtomicU64,
    pub(super) recycled: AtomicU64,
    pub(super) spawned: AtomicU64,
    pub(super) died: AtomicU64,
    pub(super) idle_exits: AtomicU64,
    pub(super) start_failures: AtomicU64,
    pub(super) drained: AtomicU64,
    pub(super) inline_done: AtomicU64,
    pub(super) inline_failed: AtomicU64,
    pub(super) lent: AtomicU64,
    pub(crate) callback_panics: Arc<AtomicU64>,
}

/// Add one to a counter any thread may write.
#[inline]
pub(super) fn count(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

impl Rare {
    pub(crate) fn timed_out(&self) {
        count(&self.timed_out);
    }

    /// A task run outside the slots (caller-runs, lent): counted by its outcome.
    pub(super) fn ran_inline(&self, ok: bool) {
        count(if ok {
            &self.inline_done
        } else {
            &self.inline_failed
        });
    }

    /// The pool's statistics from the slots' summed counters and the pool's gauges.
    pub(super) fn stats(&self, sum: Tally, submitted: u64, workers: usize, idle: usize) -> Stats {
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let inline = ld(&self.inline_done) + ld(&self.inline_failed);
        let idle = idle.min(workers);
        Stats {
            workers,
            busy: workers - idle,
            idle,
            pending: submitted.saturating_sub(sum[0] + ld(&self.drained) + inline) as usize,
            submitted,
            completed: sum[1] + ld(&self.inline_done),
            failed: sum[2] + ld(&self.timed_out) + ld(&self.inline_failed),
            cancelled: sum[3] + ld(&self.drained),
            timed_out: ld(&self.timed_out),
            replaced: ld(&self.replaced),
            recycled: ld(&self.recycled),
            spawned: ld(&self.spawned),
            died: ld(&self.died),
            idle_exits: ld(&self.idle_exits),
            start_failures: ld(&self.start_failures),
            callback_panics: ld(&self.callback_panics),
            lent: ld(&self.lent),
            executor_id: 0,
        }
    }
}
