//! Shutdown and the failure policy's pool-wide half: closing the pool (`Shutdown`), breaking
//! it (`BreakPool`, initializer failures, too many failed starts), failing what is queued.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Backend;
use super::pool::is_current;
use super::shared::{BROKEN, CANCEL, OPEN, Shared, WAIT};
use super::stats::count;
use crate::error::{BrokenReason, TaskError};
use crate::executor::{Shutdown, ShutdownReport};
use crate::loom::lock_std as lock;

impl<B: Backend> Shared<B> {
    /// What a task that cannot run any more resolves with: `Broken(reason)` or `Shutdown`.
    pub(super) fn closed_error(&self) -> TaskError {
        if self.status.load(Ordering::SeqCst) == BROKEN {
            TaskError::Broken(self.broken_reason())
        } else {
            TaskError::Shutdown
        }
    }

    /// Why the pool broke (asked once it is `BROKEN`).
    pub(super) fn broken_reason(&self) -> BrokenReason {
        lock(&self.ctl)
            .broken
            .clone()
            .unwrap_or_else(|| BrokenReason::new("broken"))
    }

    /// Break the pool: the first reason sticks; queued tasks and later submits fail with it.
    pub(super) fn break_pool(&self, reason: BrokenReason) {
        {
            let mut g = lock(&self.ctl);
            if g.broken.is_none() {
                tracing::warn!(target: "pool", pool = %self.cfg.name, reason = %reason,
                    "pool broken");
                g.broken = Some(reason);
            }
        }
        self.status.store(BROKEN, Ordering::SeqCst);
        self.drain(self.closed_error());
        self.sleep.wake_all();
        if let Some(b) = &self.bound {
            b.wake_all();
        }
        self.ctl_cv.notify_all();
    }

    /// Fail everything queued with `e`. Returns how many.
    pub(super) fn drain(&self, e: TaskError) -> usize {
        let mut n = 0;
        while let Some(j) = self.pop() {
            if j.fail(e.clone()) {
                n += 1;
            }
            count(&self.rare.drained);
        }
        n
    }

    /// Close the pool (see `Engine::shutdown`).
    pub(super) fn shutdown(&self, mode: Shutdown, deadline: Option<Duration>) -> ShutdownReport {
        let until = deadline.and_then(|d| Instant::now().checked_add(d));
        let target = if mode == Shutdown::Wait { WAIT } else { CANCEL };
        let mut report = ShutdownReport::default();
        let prev =
            match self
                .status
                .compare_exchange(OPEN, target, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(p) => p,
                Err(p) if p == WAIT && target == CANCEL => {
                    self.status.store(CANCEL, Ordering::SeqCst);
                    p
                }
                Err(p) => p,
            };
        let first = prev == OPEN || (prev == WAIT && target == CANCEL);
        // Logged when it changes something: the first shutdown, or an escalation while
        // workers are still running (not the no-op `CancelPending` of a dropped handle).
        let logged = prev == OPEN
            || ((first || mode == Shutdown::Kill) && prev != BROKEN && self.census.workers() > 0);
        if logged {
            tracing::info!(target: "pool", pool = %self.cfg.name, mode = ?mode,
                workers = self.census.workers(), "shutdown begun");
        }
        if first && target == CANCEL {
            report.cancelled = self.drain(TaskError::Cancelled);
        }
        if mode == Shutdown::Kill && prev != BROKEN {
            self.killing.store(true, Ordering::SeqCst);
            let slots = lock(&self.ctl).slots.clone();
            for s in slots {
                if s.kill_now() {
                    report.killed += 1;
                }
            }
        }
        self.sleep.wake_all();
        if let Some(b) = &self.bound {
            b.wake_all();
        }
        // A task that shuts down its own pool must not wait for its own worker.
        let own = usize::from(is_current(std::ptr::from_ref(self)));
        let mut g = lock(&self.ctl);
        // Until every slot thread is done, its worker's `stop` (finalizer) included: a slot
        // leaves the `workers` count before it stops its worker.
        while self.live.load(Ordering::SeqCst) > own {
            match until {
                None => g = self.ctl_cv.wait(g).unwrap_or_else(|p| p.into_inner()),
                Some(u) => {
                    let now = Instant::now();
                    if now >= u {
                        break;
                    }
                    g = self
                        .ctl_cv
                        .wait_timeout(g, (u - now).min(Duration::from_millis(50)))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
            // Sleepers that missed the first wake-up (they were between checks) get another.
            drop(g);
            self.sleep.wake_all();
            g = lock(&self.ctl);
        }
        report.finalizer_errors = std::mem::take(&mut g.finalizer_errors);
        report.unfinished_workers = self.live.load(Ordering::SeqCst);
        drop(g);
        if logged {
            tracing::info!(target: "pool", pool = %self.cfg.name, mode = ?mode,
                cancelled = report.cancelled, killed = report.killed,
                unfinished_workers = report.unfinished_workers,
                finalizer_errors = report.finalizer_errors.len(), "shutdown finished");
        }
        report
    }
}
