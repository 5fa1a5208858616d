//! Pipelining state of one slot: the tasks sent to its worker and not yet answered (oldest
//! first), a dequeued task held back until they land, and when more may be sent (`README.md`,
//! "Pipelining"). The slot loop (`work.rs`) drives it; a worker that does not pipeline never
//! has anything in flight.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Worker;
use super::job::Flight;
use super::shared::JobRef;

/// A task this quick lets the next ones be sent behind it.
const QUICK: Duration = Duration::from_millis(20);

pub(super) struct Flights<W: Worker> {
    /// Sent and unanswered, oldest first (replies come in send order).
    pub(super) sent: VecDeque<Box<dyn Flight<W>>>,
    /// Dequeued but not pipelinable: runs once the flights have landed.
    pub(super) held: Option<JobRef<W>>,
    /// Send nothing more: the worker is to be recycled.
    pub(super) recycle: bool,
    /// Send nothing more: a send found the worker gone.
    pub(super) gone: bool,
    /// The worker's previous task took under `QUICK`.
    quick: bool,
    /// When the task the worker runs now started.
    head_since: Instant,
    /// At most this many in flight.
    k: usize,
}

impl<W: Worker> Flights<W> {
    pub(super) fn new(k: usize) -> Self {
        Flights {
            sent: VecDeque::with_capacity(k),
            held: None,
            recycle: false,
            gone: false,
            quick: false,
            head_since: Instant::now(),
            k,
        }
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// The first task sent after the flights had landed: the worker runs it at once.
    pub(super) fn sent_head(&mut self, f: Box<dyn Flight<W>>) {
        self.head_since = Instant::now();
        self.sent.push_back(f);
    }

    /// May another task be sent behind those in flight? Only while tasks are quick: the
    /// last one the worker ran took under `QUICK`, and the one it runs now started less than
    /// `QUICK` ago — a long task then holds up at most the few sent behind it before it was
    /// known to be long. `tasks`: finished on this worker; `max_tasks`: the recycling limit.
    pub(super) fn may_send(&self, tasks: u64, max_tasks: Option<u64>) -> bool {
        !self.recycle
            && !self.gone
            && self.held.is_none()
            && self.sent.len() < self.k
            && max_tasks.is_none_or(|m| tasks + (self.sent.len() as u64) < m)
            && self.quick
            && self.head_since.elapsed() < QUICK
    }

    /// Take the oldest flight, whose reply is next; the one after it is what the worker runs
    /// from now on.
    pub(super) fn land(&mut self) -> Box<dyn Flight<W>> {
        let f = self.sent.pop_front().expect("a task in flight");
        let now = Instant::now();
        self.quick = now.duration_since(self.head_since) < QUICK;
        self.head_since = now;
        f
    }

    /// Nothing in flight or held, nothing stopping more work: the slot is about to be idle.
    pub(super) fn drained(&self) -> bool {
        self.sent.is_empty() && self.held.is_none() && !self.recycle && !self.gone
    }
}
