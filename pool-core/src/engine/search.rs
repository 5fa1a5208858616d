//! How a slot finds its next task: pop, spin, linger (one slot at a time), count itself
//! idle, sleep (`sleep.rs`) until woken or the idle timeout, or leave the pool. The protocol
//! is `README.md`'s "Sleep / wake protocol" and "Idle accounting".

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

use super::Backend;
use super::shared::{JobRef, OPEN, Shared, WAIT};
use super::stats::count;
use crate::loom::AtomicBool;

/// Why `find_job` came back without a job.
pub(super) enum Gone {
    /// The slot left the `workers` count (idle timeout, resize, shutdown) and must exit.
    Left,
    /// A caller borrowed the slot's parked worker and saw it die: the slot must handle it.
    News,
}

/// Held by the one slot polling for work (see `Shared::search`); hands over when dropped.
struct Lingering<'a, B: Backend>(&'a Shared<B>);

impl<B: Backend> Drop for Lingering<'_, B> {
    fn drop(&mut self) {
        if self.0.queue.stop_lingering() {
            self.0.sleep.wake_one();
        }
    }
}

impl<B: Backend> Shared<B> {
    #[inline]
    pub(super) fn pop(&self) -> Option<JobRef<B::Worker>> {
        let j = self.queue.pop()?;
        if let Some(b) = &self.bound {
            b.release();
        }
        Some(j)
    }

    /// Find the next job, or decide to leave. `Err(Gone::Left)` means the slot left the
    /// `workers` count and must exit; `Err(Gone::News)` that `news` was raised (the slot is
    /// no longer counted idle).
    /// `linger`: how long to keep polling (yielding the CPU) before sleeping, once idle.
    /// A pipelining slot (`linger` > 0) counts itself idle at once: other slots pipeline
    /// only while none is idle.
    /// `counted`: the caller already counted itself in `idle`.
    pub(super) fn find_job(
        self: &Arc<Self>,
        linger: Duration,
        counted: bool,
        news: Option<&AtomicBool>,
    ) -> Result<JobRef<B::Worker>, Gone> {
        if counted {
            return self.search_idle(linger, news);
        }
        if let Some(j) = self.pop() {
            return Ok(j);
        }
        // A short spin first, without touching the shared `idle` counter: with a stream of
        // tiny tasks the queue runs dry between every two pushes, and two RMWs per task on a
        // line all workers share would cost more than the task.
        if self.status.load(Ordering::Relaxed) == OPEN && linger.is_zero() {
            let backoff = Backoff::new();
            while !backoff.is_completed() {
                backoff.snooze();
                if let Some(j) = self.pop() {
                    return Ok(j);
                }
            }
        }
        self.sleep.enter_idle();
        self.search_idle(linger, news)
    }

    /// `search`, for a slot counted in `idle`: it leaves the count with a job (and starts
    /// a worker if tasks still outnumber idle ones) or with news; a slot that left the pool
    /// left the count too, in `try_leave`.
    fn search_idle(
        self: &Arc<Self>,
        linger: Duration,
        news: Option<&AtomicBool>,
    ) -> Result<JobRef<B::Worker>, Gone> {
        let r = self.search(linger, news);
        match r {
            Ok(_) => {
                self.sleep.leave_idle();
                self.spawn_if_short();
            }
            Err(Gone::News) => {
                self.sleep.leave_idle();
            }
            Err(Gone::Left) => {}
        }
        r
    }

    /// A slot that counted itself idle has just taken a task. A task pushed between that
    /// take and the slot leaving the `idle` count saw this slot as idle and started no
    /// worker for itself; start one now if the queue holds more tasks than idle workers.
    /// The queue is read under the producers' lock, after `idle` was lowered: a push made
    /// after that read sees the lowered count and spawns by itself.
    fn spawn_if_short(self: &Arc<Self>) {
        if !self.census.has_room() {
            return;
        }
        let queued = self.queue.len_locked();
        if queued > self.sleep.idle() {
            self.try_spawn();
        }
    }

    fn search(
        &self,
        linger: Duration,
        news: Option<&AtomicBool>,
    ) -> Result<JobRef<B::Worker>, Gone> {
        let raised = || news.is_some_and(|n| n.load(Ordering::Acquire));
        let backoff = Backoff::new();
        // Only one idle slot at a time polls: on a small machine every other one would take
        // a context switch from the threads doing the work each time it yields, and a push
        // would wake a sleeper for nothing (the poller takes the task).
        let mut lingering =
            (!linger.is_zero() && self.queue.start_lingering()).then(|| Lingering(self));
        let mut linger_until = lingering.as_ref().map(|_| Instant::now() + linger);
        let mut idle_since = None::<Instant>;
        loop {
            if let Some(j) = self.pop() {
                return Ok(j);
            }
            if raised() {
                return Err(Gone::News);
            }
            let st = self.status.load(Ordering::Acquire);
            if st != OPEN {
                if st != WAIT {
                    // Cancelled or broken: anything that slipped in is not run.
                    self.drain(self.closed_error());
                }
                if self.try_leave(0) {
                    return Err(Gone::Left);
                }
                continue;
            }
            if self.census.workers() > self.census.max() && self.try_leave(self.census.max()) {
                return Err(Gone::Left);
            }
            if !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            if linger_until.is_some_and(|u| Instant::now() < u) {
                std::thread::yield_now();
                continue;
            }
            if lingering.take().is_some() {
                linger_until = None;
                continue;
            }
            // Sleep: registered as a sleeper under the producers' lock, only if the queue is
            // empty (`sleep.rs`).
            let since = *idle_since.get_or_insert_with(Instant::now);
            let wait = match self.cfg.idle_timeout {
                Some(t) => t.saturating_sub(since.elapsed()),
                None => Duration::from_secs(3600),
            };
            let open = || self.status.load(Ordering::SeqCst) == OPEN;
            if !self.sleep.sleep(&self.queue, open, raised, wait) {
                continue;
            }
            if let Some(t) = self.cfg.idle_timeout
                && since.elapsed() >= t
                && self.queue.is_empty()
            {
                if self.try_leave(self.cfg.min_workers) {
                    count(&self.rare.idle_exits);
                    tracing::debug!(target: "pool", pool = %self.cfg.name, "idle worker exits");
                    return Err(Gone::Left);
                }
                idle_since = None;
            }
            backoff.reset();
        }
    }
}
