//! Where an idle pipelining worker waits, lendable to a caller thread
//! ([`Engine::call`](super::Engine::call)); the borrowing side is `lend.rs`.
//!
//! While its slot looks for work (`find_job`), an idle worker is *parked* in the slot's
//! [`Spot`]. A caller that wants one task's value borrows it from there, runs the task on it
//! from its own thread — the same `Job::run` the slot would — and gives it back. The slot
//! takes its worker back (`unpark`) as soon as `find_job` returns, waiting while it is lent;
//! so at any moment exactly one thread holds the worker, and the slot never runs a task, stops
//! or recycles its worker while a caller has it. A borrower that saw the worker die raises
//! `news`, which makes the slot's `find_job` return at once, so the death is handled (counted,
//! replaced, `BreakPool`) by the slot as for any death between tasks.
//!
//! Why: a process round trip through the slot thread takes four hand-offs between three
//! threads (caller → slot → worker → slot → caller); on a two-core machine two of them are
//! context switches. Borrowing leaves two parties, the caller and the worker process.

use std::sync::Arc;

use super::slot::SlotShared;
use crate::loom::lock_std;
use crate::loom::{AtomicBool, Condvar, Mutex, MutexGuard, Ordering, lock};

/// One pipelining slot's parking place for its idle worker.
pub(crate) struct Spot<W> {
    /// The slot, for the borrower's run (counters of the kill gate, killer, worker id).
    pub(crate) slot: Arc<SlotShared>,
    /// The worker's process id.
    pub(crate) pid: Option<u32>,
    /// A borrower saw the worker die: the slot must come back for it.
    pub(crate) news: AtomicBool,
    state: Mutex<State<W>>,
    returned: Condvar,
}

struct State<W> {
    /// The idle worker, while its slot looks for work and no caller holds it.
    parked: Option<W>,
    /// A caller holds the worker.
    lent: bool,
    /// The slot waits in `unpark` for the worker to come back.
    waiting: bool,
    /// Why the worker died while lent.
    death: Option<String>,
}

impl<W> Spot<W> {
    pub(crate) fn new(slot: Arc<SlotShared>, pid: Option<u32>) -> Self {
        Spot {
            slot,
            pid,
            news: AtomicBool::new(false),
            state: Mutex::new(State {
                parked: None,
                lent: false,
                waiting: false,
                death: None,
            }),
            returned: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<W>> {
        lock(&self.state)
    }

    /// The slot parks its idle worker (it holds no other).
    pub(crate) fn park(&self, worker: W) {
        let mut st = self.state();
        debug_assert!(st.parked.is_none() && !st.lent);
        st.parked = Some(worker);
    }

    /// The slot takes its worker back, waiting while a caller holds it; with the death a
    /// borrower saw, if any.
    pub(crate) fn unpark(&self) -> (W, Option<String>) {
        let mut st = self.state();
        while st.lent {
            st.waiting = true;
            st = self.returned.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.waiting = false;
        self.news.store(false, Ordering::Relaxed);
        let worker = st.parked.take().expect("unpark follows park");
        (worker, st.death.take())
    }

    /// A caller borrows the parked worker, if it is parked, not lent and alive. Never
    /// blocks: a busy spot is skipped.
    pub(crate) fn borrow(&self) -> Option<W> {
        let mut st = self.state.try_lock().ok()?;
        if st.lent || st.death.is_some() {
            return None;
        }
        let worker = st.parked.take()?;
        st.lent = true;
        Some(worker)
    }

    /// The borrower gives the worker back; `death`: why it died while lent. True if the
    /// slot must be woken to handle that death (it may be asleep in `find_job`).
    pub(crate) fn give_back(&self, worker: W, death: Option<String>) -> bool {
        let mut st = self.state();
        st.parked = Some(worker);
        st.lent = false;
        let dead = death.is_some();
        if dead {
            st.death = death;
            self.news.store(true, Ordering::Release);
        }
        if st.waiting {
            self.returned.notify_one();
        }
        dead
    }
}

/// The parking spots of a pool's pipelining slots, and whether its workers are lent at all.
pub(crate) struct Spots<W> {
    /// Not when a recycling limit is set (a lent run would have to count against it).
    lends: bool,
    all: std::sync::Mutex<Vec<Arc<Spot<W>>>>,
}

impl<W> Spots<W> {
    pub(crate) fn new(lends: bool) -> Self {
        Spots {
            lends,
            all: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Does this pool lend idle workers?
    pub(crate) fn lends(&self) -> bool {
        self.lends
    }

    /// A new spot for the slot's worker, if this pool lends.
    pub(crate) fn open(&self, slot: &Arc<SlotShared>, pid: Option<u32>) -> Option<Arc<Spot<W>>> {
        self.lends.then(|| {
            let spot = Arc::new(Spot::new(Arc::clone(slot), pid));
            lock_std(&self.all).push(Arc::clone(&spot));
            spot
        })
    }

    /// The slot is done with its spot.
    pub(crate) fn close(&self, spot: &Arc<Spot<W>>) {
        lock_std(&self.all).retain(|s| !Arc::ptr_eq(s, spot));
    }

    /// A parked (idle) worker nobody else holds, with its spot.
    pub(crate) fn borrow(&self) -> Option<(Arc<Spot<W>>, W)> {
        let all = lock_std(&self.all);
        all.iter()
            .find_map(|s| s.borrow().map(|w| (Arc::clone(s), w)))
    }
}
