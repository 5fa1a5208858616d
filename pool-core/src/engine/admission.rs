//! Admission to a bounded queue (`queue_capacity`): a counter of queued tasks and the
//! condvar blocked submitters wait on. Every dequeue releases a place and wakes one blocked
//! submitter, only when someone is blocked (no polling).

use std::sync::atomic::{AtomicUsize, Ordering, fence};
use std::sync::{Condvar, Mutex};

use crossbeam_utils::CachePadded;

use crate::loom::lock_std as lock;

/// The bounded queue's admission counter and the condvar blocked submitters wait on.
pub(super) struct Bound {
    cap: usize,
    len: CachePadded<AtomicUsize>,
    blocked: AtomicUsize,
    mx: Mutex<()>,
    cv: Condvar,
}

impl Bound {
    pub(super) fn new(cap: usize) -> Self {
        Bound {
            cap,
            len: CachePadded::new(AtomicUsize::new(0)),
            blocked: AtomicUsize::new(0),
            mx: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    /// Take a place if there is one.
    pub(super) fn try_reserve(&self) -> bool {
        let mut n = self.len.load(Ordering::Relaxed);
        loop {
            if n >= self.cap {
                return false;
            }
            match self
                .len
                .compare_exchange_weak(n, n + 1, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
    }

    /// Take a place over the cap for a moment (a task put back in the queue) rather than
    /// lose it; the next dequeue releases it.
    pub(super) fn force_reserve(&self) {
        self.len.fetch_add(1, Ordering::SeqCst);
    }

    /// Wait for room. False if the pool closed meanwhile (`open` turned false).
    pub(super) fn reserve_blocking(&self, open: impl Fn() -> bool) -> bool {
        loop {
            if !open() {
                return false;
            }
            if self.try_reserve() {
                return true;
            }
            if !open() {
                return false;
            }
            let g = lock(&self.mx);
            self.blocked.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if self.try_reserve() {
                self.blocked.fetch_sub(1, Ordering::SeqCst);
                return true;
            }
            if !open() {
                self.blocked.fetch_sub(1, Ordering::SeqCst);
                return false;
            }
            // Woken by `release` (room) or `wake_all` (shutdown).
            let g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
            self.blocked.fetch_sub(1, Ordering::SeqCst);
            drop(g);
        }
    }

    /// A task left the queue: give its place back, waking one blocked submitter.
    pub(super) fn release(&self) {
        self.len.fetch_sub(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.blocked.load(Ordering::Relaxed) > 0 {
            let _g = lock(&self.mx);
            self.cv.notify_one();
        }
    }

    /// The pool closed: every blocked submitter looks again (and gives up).
    pub(super) fn wake_all(&self) {
        let _g = lock(&self.mx);
        self.cv.notify_all();
    }
}
