//! The worker census: how many workers the pool may have (`max_workers`, resizable), how many
//! slots count as workers and how many of those are still starting, the next worker's id and
//! the run of failed starts. `slots.rs` reserves and gives back places; submitters, `search.rs`
//! and the pipelining test (`all_busy`) read it.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

use crate::error::WorkerId;

pub(super) struct Census {
    max: AtomicUsize,
    workers: CachePadded<AtomicUsize>,
    /// Slots whose worker is still starting.
    starting: AtomicUsize,
    next_id: AtomicU64,
    failures_in_a_row: AtomicU32,
}

impl Census {
    pub(super) fn new(max: usize) -> Self {
        Census {
            max: AtomicUsize::new(max),
            workers: CachePadded::new(AtomicUsize::new(0)),
            starting: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            failures_in_a_row: AtomicU32::new(0),
        }
    }

    /// `max_workers` as last set.
    #[inline]
    pub(super) fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }

    /// Resize; the previous maximum.
    pub(super) fn set_max(&self, max: usize) -> usize {
        self.max.swap(max, Ordering::SeqCst)
    }

    /// Slots counted as workers (a cheap read).
    #[inline]
    pub(super) fn workers(&self) -> usize {
        self.workers.load(Ordering::Relaxed)
    }

    /// Slots counted as workers, ordered with the other counts (`SeqCst`).
    #[inline]
    pub(super) fn workers_now(&self) -> usize {
        self.workers.load(Ordering::SeqCst)
    }

    /// Below `max_workers`: a submit may start another worker. `workers` first: it rarely
    /// changes, so a full pool does not pay a read of `max` per submit.
    #[inline]
    pub(super) fn has_room(&self) -> bool {
        self.workers() < self.max()
    }

    /// Take a place for a new worker, counted as starting *before* it counts as a worker
    /// (so `all_started_and_full` never holds while the new worker is neither starting nor
    /// idle). False, and nothing taken, when the pool is full or `closed()` says so.
    pub(super) fn reserve(&self, closed: impl Fn() -> bool) -> bool {
        self.starting.fetch_add(1, Ordering::SeqCst);
        let mut w = self.workers.load(Ordering::Relaxed);
        loop {
            if w >= self.max() || closed() {
                self.starting.fetch_sub(1, Ordering::SeqCst);
                return false;
            }
            match self
                .workers
                .compare_exchange_weak(w, w + 1, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => w = now,
            }
        }
    }

    /// A replacement takes the place of a slot that counts as a worker: it starts.
    pub(super) fn hand_over(&self) {
        self.starting.fetch_add(1, Ordering::SeqCst);
    }

    /// A slot's worker is no longer starting (started, or failed to).
    pub(super) fn started(&self) {
        self.starting.fetch_sub(1, Ordering::SeqCst);
    }

    /// Leave the worker count if it stays at least `min`. False, and still counted, if not.
    pub(super) fn leave_above(&self, min: usize) -> bool {
        let mut w = self.workers.load(Ordering::Relaxed);
        loop {
            if w <= min {
                return false;
            }
            match self
                .workers
                .compare_exchange_weak(w, w - 1, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => w = now,
            }
        }
    }

    /// Leave the worker count unconditionally; how many remain.
    pub(super) fn leave(&self) -> usize {
        self.workers.fetch_sub(1, Ordering::SeqCst) - 1
    }

    /// No worker is starting and the pool has every worker it may have.
    #[inline]
    pub(super) fn all_started_and_full(&self) -> bool {
        self.starting.load(Ordering::SeqCst) == 0 && self.workers_now() >= self.max()
    }

    /// The id of the next worker.
    pub(super) fn next_id(&self) -> WorkerId {
        WorkerId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// A start failed: how many in a row now.
    pub(super) fn start_failed(&self) -> u32 {
        self.failures_in_a_row.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// A start succeeded: the run of failures is over.
    pub(super) fn start_succeeded(&self) {
        self.failures_in_a_row.store(0, Ordering::SeqCst);
    }
}
