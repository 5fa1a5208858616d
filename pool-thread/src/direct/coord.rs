//! The coordinator of one direct map: chunk claiming, per-chunk outcome, the first error,
//! and the latch the caller waits on.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use pool_core::{TaskError, catch_panic};

pub(super) const UNTOUCHED: u8 = 0;
pub(super) const DONE: u8 = 1;
pub(super) const FAILED: u8 = 2;

/// Claims, per-chunk outcome, first error, and the latch the caller waits on.
pub(super) struct Coord {
    n: usize,
    chunk: usize,
    pub(super) nchunks: usize,
    next: AtomicUsize,
    pub(super) states: Box<[AtomicU8]>,
    finished: AtomicUsize,
    stop: AtomicBool,
    pub(super) error: Mutex<Option<(usize, TaskError)>>,
    done: Mutex<bool>,
    done_cv: Condvar,
}

impl Coord {
    pub(super) fn new(n: usize, chunk: usize) -> Self {
        let nchunks = n.div_ceil(chunk);
        Coord {
            n,
            chunk,
            nchunks,
            next: AtomicUsize::new(0),
            states: (0..nchunks).map(|_| AtomicU8::new(UNTOUCHED)).collect(),
            finished: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            error: Mutex::new(None),
            done: Mutex::new(false),
            done_cv: Condvar::new(),
        }
    }

    pub(super) fn range(&self, c: usize) -> (usize, usize) {
        let lo = c * self.chunk;
        (lo, (lo + self.chunk).min(self.n))
    }

    /// Claim and run chunks until none is left.
    pub(super) fn work(&self, run: &dyn Fn(usize, usize)) {
        loop {
            let c = self.next.fetch_add(1, Ordering::Relaxed);
            if c >= self.nchunks {
                return;
            }
            if !self.stop.load(Ordering::Relaxed) {
                let (lo, hi) = self.range(c);
                match catch_panic(|| run(lo, hi)) {
                    Ok(()) => self.states[c].store(DONE, Ordering::Relaxed),
                    Err(p) => {
                        self.states[c].store(FAILED, Ordering::Relaxed);
                        self.stop.store(true, Ordering::Relaxed);
                        let mut e = self.error.lock().unwrap_or_else(|p| p.into_inner());
                        if e.as_ref().is_none_or(|(i, _)| c < *i) {
                            *e = Some((c, TaskError::Panicked(p)));
                        }
                    }
                }
            }
            if self.finished.fetch_add(1, Ordering::AcqRel) + 1 == self.nchunks {
                *self.done.lock().unwrap_or_else(|p| p.into_inner()) = true;
                self.done_cv.notify_all();
            }
        }
    }

    /// A helper task was dropped without running (the pool refused or cancelled it): stop
    /// the map and mark every unclaimed chunk finished without touching the buffers.
    pub(super) fn abandon(&self) {
        {
            let mut e = self.error.lock().unwrap_or_else(|p| p.into_inner());
            if e.is_none() {
                *e = Some((usize::MAX, TaskError::Cancelled));
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        self.work(&|_, _| unreachable!("stopped: no chunk runs"));
    }

    pub(super) fn wait(&self) {
        let mut g = self.done.lock().unwrap_or_else(|p| p.into_inner());
        while !*g {
            g = self.done_cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }
}
