//! The state all of a pool's threads share: one part per mechanism (queue, sleep, admission,
//! statistics, watchdog, lending spots) plus the gauges and the control block the life cycle
//! and shutdown use. The mechanisms' methods live in their own files.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize};
use std::sync::{Arc, Condvar, Mutex};

use crossbeam_utils::CachePadded;

use super::admission::Bound;
use super::census::Census;
use super::job::Job;
use super::queue::Queue;
use super::sleep::Sleep;
use super::slot::SlotShared;
use super::spot::Spots;
use super::stats::{Rare, Tally};
use super::watchdog::Watchdog;
use super::{Backend, EngineConfig};
use crate::error::BrokenReason;

/// Open: submits are taken.
pub(super) const OPEN: u8 = 0;
/// Closed; workers finish the queue, then exit.
pub(super) const WAIT: u8 = 1;
/// Closed; the queue was cancelled; workers exit after their task.
pub(super) const CANCEL: u8 = 2;
/// Broken; the queue was failed; workers exit after their task.
pub(super) const BROKEN: u8 = 3;

pub(super) type JobRef<W> = Arc<dyn Job<W>>;

/// What changes rarely and is read under one lock: the live slots, the retired slots'
/// counts, why the pool broke, the finalizers' errors.
#[derive(Default)]
pub(super) struct Control {
    pub(super) slots: Vec<Arc<SlotShared>>,
    pub(super) retired: Tally,
    pub(super) broken: Option<BrokenReason>,
    pub(super) finalizer_errors: Vec<String>,
}

pub(super) struct Shared<B: Backend> {
    pub(super) backend: B,
    pub(super) cfg: EngineConfig,
    pub(super) queue: Queue<JobRef<B::Worker>>,
    pub(super) submitted: CachePadded<AtomicU64>,
    /// `OPEN`, `WAIT`, `CANCEL` or `BROKEN`.
    pub(super) status: AtomicU8,
    /// `Shutdown::Kill` is under way: deaths are the pool's doing.
    pub(super) killing: AtomicBool,
    pub(super) census: Census,
    /// Slot threads that have not finished (their worker's `stop` included). Changed under
    /// `ctl`, so `shutdown` waits for it without missing a wake-up.
    pub(super) live: AtomicUsize,
    pub(super) sleep: Sleep,
    pub(super) bound: Option<Bound>,
    pub(super) ctl: Mutex<Control>,
    pub(super) ctl_cv: Condvar,
    pub(super) rare: Arc<Rare>,
    pub(super) memory_warned: AtomicBool,
    pub(super) watchdog: Watchdog,
    /// Where idle pipelining workers wait, lendable to callers (`lend.rs`).
    pub(super) spots: Spots<B::Worker>,
}

impl<B: Backend> Shared<B> {
    /// The state of a new pool; `cfg` is already validated.
    pub(super) fn new(backend: B, cfg: EngineConfig) -> Self {
        let rare = Arc::new(Rare::default());
        Shared {
            backend,
            queue: Queue::new(),
            submitted: CachePadded::new(AtomicU64::new(0)),
            status: AtomicU8::new(OPEN),
            killing: AtomicBool::new(false),
            census: Census::new(cfg.max_workers),
            live: AtomicUsize::new(0),
            sleep: Sleep::new(),
            bound: cfg.queue_capacity.map(Bound::new),
            ctl: Mutex::new(Control::default()),
            ctl_cv: Condvar::new(),
            watchdog: Watchdog::new(rare.clone(), cfg.name.clone()),
            rare,
            memory_warned: AtomicBool::new(false),
            spots: Spots::new(
                cfg.max_tasks_per_worker.is_none() && cfg.max_memory_per_worker.is_none(),
            ),
            cfg,
        }
    }
}
