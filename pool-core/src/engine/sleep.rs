//! Sleep and wake-up of idle slot threads, and the `idle` count submitters read to decide
//! whether to start another worker (`README.md`, "Sleep / wake protocol" and "Idle
//! accounting").
//!
//! A slot thread sleeps only after registering as a sleeper under the queue's producers'
//! lock while the queue is empty, and it holds the sleep mutex from before that check until
//! it waits; a submitter reads the sleeper count under the same producers' lock right after
//! its push and notifies under the sleep mutex. So either the sleeper sees the task or the
//! submitter sees the sleeper, and the notify cannot come before the wait.

use std::time::Duration;

use crossbeam_utils::CachePadded;

use super::queue::Queue;
use crate::loom::{AtomicUsize, Condvar, Mutex, Ordering, lock};

pub(crate) struct Sleep {
    mx: Mutex<()>,
    cv: Condvar,
    /// Slots that found no work and count themselves idle.
    idle: CachePadded<AtomicUsize>,
}

impl Sleep {
    pub(crate) fn new() -> Self {
        Sleep {
            mx: Mutex::new(()),
            cv: Condvar::new(),
            idle: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// Wake one sleeping slot.
    pub(crate) fn wake_one(&self) {
        let _g = lock(&self.mx);
        self.cv.notify_one();
    }

    /// Wake every sleeping slot (shutdown, resize, news for a slot).
    pub(crate) fn wake_all(&self) {
        let _g = lock(&self.mx);
        self.cv.notify_all();
    }

    /// Sleep until woken or `wait` passes — only if the queue is empty, `open()` holds and
    /// `raised()` does not (`raised`: news for this slot, set before its raiser calls
    /// `wake_all`). False if it did not sleep.
    pub(crate) fn sleep<T>(
        &self,
        queue: &Queue<T>,
        open: impl Fn() -> bool,
        raised: impl Fn() -> bool,
        wait: Duration,
    ) -> bool {
        let g = lock(&self.mx);
        // Raised before its raiser takes the sleep mutex to wake sleepers: seen here, or the
        // wake-up comes after this thread waits.
        if raised() {
            return false;
        }
        let asleep = queue.locked(|sleepers, empty| {
            if empty && open() {
                *sleepers += 1;
                true
            } else {
                false
            }
        });
        if !asleep {
            return false;
        }
        let (g, _) = self
            .cv
            .wait_timeout(g, wait)
            .unwrap_or_else(|p| p.into_inner());
        drop(g);
        queue.locked(|sleepers, _| *sleepers -= 1);
        true
    }

    /// This slot counts itself idle.
    #[inline]
    pub(crate) fn enter_idle(&self) {
        self.idle.fetch_add(1, Ordering::SeqCst);
    }

    /// This slot no longer counts itself idle.
    #[inline]
    pub(crate) fn leave_idle(&self) {
        self.idle.fetch_sub(1, Ordering::SeqCst);
    }

    /// How many slots count themselves idle.
    #[inline]
    pub(crate) fn idle(&self) -> usize {
        self.idle.load(Ordering::SeqCst)
    }

    /// The idle count for a cheap decision (a submitter's spawn test, statistics).
    #[inline]
    pub(crate) fn idle_relaxed(&self) -> usize {
        self.idle.load(Ordering::Relaxed)
    }
}
