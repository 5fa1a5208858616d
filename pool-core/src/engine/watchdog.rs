//! The watchdog: one lazily started thread per engine that resolves tasks running past their
//! deadline as `TimedOut` and, when the backend can, kills their worker first.
//!
//! A kill goes through the worker slot's *gate* (a mutex holding the id of the task the slot
//! is running): the watchdog kills only while the gate still shows the timed-out task, and
//! the slot clears the gate before it takes its next task, so a kill can never hit a later
//! task.

use std::collections::BinaryHeap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Killer;
use super::stats::Rare;
use crate::error::{TaskError, WorkerId};

/// Resolve a running task from outside (the watchdog).
pub(crate) trait Resolve: Send + Sync {
    /// Resolve a running task with `e`, calling `count` after winning and before waiters
    /// wake (so a caller that saw the error sees the count). True if it won.
    fn resolve_running(&self, e: TaskError, count: &dyn Fn()) -> bool;

    /// Has the task finished (or is it gone)? Its watch can then be dropped early.
    fn finished(&self) -> bool;
}

pub(crate) struct Watch {
    pub(crate) deadline: Instant,
    pub(crate) cell: Arc<dyn Resolve>,
    pub(crate) after: Duration,
    pub(crate) worker: WorkerId,
    pub(crate) pid: Option<u32>,
    pub(crate) task: String,
    /// Kills the worker only while its slot's gate still shows this task.
    pub(crate) kill: Option<Killer>,
}

struct Item(Watch);

impl PartialEq for Item {
    fn eq(&self, o: &Self) -> bool {
        self.0.deadline == o.0.deadline
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Item {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // Min-heap on the deadline.
        o.0.deadline.cmp(&self.0.deadline)
    }
}

pub(crate) struct Watchdog {
    tx: Mutex<Option<mpsc::Sender<Watch>>>,
    rare: Arc<Rare>,
    name: String,
}

impl Watchdog {
    pub(crate) fn new(rare: Arc<Rare>, name: String) -> Self {
        Watchdog {
            tx: Mutex::new(None),
            rare,
            name,
        }
    }

    pub(crate) fn watch(&self, w: Watch) {
        let mut g = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            let (tx, rx) = mpsc::channel();
            let rare = self.rare.clone();
            let name = self.name.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{}-watchdog", self.name))
                .spawn(move || run(rx, rare, name));
            if spawned.is_err() {
                // Without a watchdog the task simply has no time limit; say so once.
                tracing::error!(target: "pool", pool = %self.name,
                    "could not start the watchdog thread; task timeouts are not enforced");
                return;
            }
            *g = Some(tx);
        }
        if let Some(tx) = g.as_ref() {
            let _ = tx.send(w);
        }
    }
}

/// How many watches the heap holds before it is first swept of finished tasks' watches.
const SWEEP_AT: usize = 1024;

fn run(rx: mpsc::Receiver<Watch>, rare: Arc<Rare>, name: String) {
    let mut heap: BinaryHeap<Item> = BinaryHeap::new();
    // Most timed tasks finish long before their deadline. Their watches hold only weak
    // references, but would still pile up until then (tasks per second times the timeout):
    // each time the heap doubles past its size after the last sweep, finished ones go.
    let mut sweep_at = SWEEP_AT;
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|i| i.0.deadline <= now) {
            let Item(w) = heap.pop().expect("peeked");
            // User code can run here: the last reference to a task whose future was dropped
            // may be this one, and dropping it drops the task's closure or result. A panic in
            // such a `Drop` must not end the watchdog (every later timeout would be lost).
            let task = w.task.clone();
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fire(w, &rare, &name)))
                .is_err()
            {
                tracing::error!(target: "pool", pool = %name, task = %task,
                    "a panic while timing out a task (a Drop of the task or its result) was \
                     contained");
            }
        }
        let got = match heap.peek() {
            Some(i) => rx.recv_timeout(i.0.deadline.saturating_duration_since(now)),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match got {
            Ok(w) => {
                heap.push(Item(w));
                if heap.len() >= sweep_at {
                    heap.retain(|i| !i.0.cell.finished());
                    sweep_at = (heap.len() * 2).max(SWEEP_AT);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // The engine is gone; still honour the deadlines already registered.
                if heap.is_empty() {
                    return;
                }
                let wait = heap
                    .peek()
                    .map(|i| i.0.deadline.saturating_duration_since(Instant::now()));
                if let Some(d) = wait {
                    std::thread::sleep(d);
                }
            }
        }
    }
}

fn fire(w: Watch, rare: &Rare, pool: &str) {
    let err = TaskError::TimedOut {
        after: w.after,
        worker: w.worker,
        pid: w.pid,
        task: w.task.clone(),
    };
    // Kill, then resolve: the kill runs after this thread has won the right to resolve (so
    // a result arriving meanwhile cannot complete the task, and no worker is killed for a task
    // that finished) and before waiters wake. A backend's killer returns once the worker is
    // dead, so a caller that sees `TimedOut` never races the task it reacts to.
    let kill = || {
        rare.timed_out();
        if let Some(k) = &w.kill {
            k.kill();
        }
    };
    if !w.cell.resolve_running(err, &kill) {
        return;
    }
    tracing::warn!(target: "pool", pool, task = %w.task, worker = w.worker.0, pid = w.pid,
        after = ?w.after, "task timed out");
}
