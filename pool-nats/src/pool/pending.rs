//! The caller's table of tasks not answered yet: what resolves each one, where it is stored,
//! and a condition variable that wakes a submitter waiting for room and a shutdown waiting
//! for the table to empty.
//!
//! A task leaves the table exactly once — answered, failed to store, cancelled by its
//! caller or by a shutdown — so it is resolved once, whatever the redeliveries.

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use pool_core::TaskError;

/// A pending task's future, seen from the table: marked started when a worker says so,
/// resolved from its answer (the result's bytes or an error).
pub(crate) trait Waiting: Send {
    /// A worker started the task. False if its future was cancelled first.
    fn start(&self) -> bool;
    /// Resolves the future.
    fn resolve(self: Box<Self>, outcome: Result<Vec<u8>, TaskError>);
}

pub(crate) type Resolver = Box<dyn Waiting>;

/// A task taken out of the table by a cancellation: where it is stored, if it is already.
pub(crate) struct Withdrawn {
    pub(crate) id: String,
    pub(crate) seq: Option<u64>,
}

struct Entry {
    resolve: Resolver,
    /// The task's sequence in the task stream, once the server stored it.
    seq: Option<u64>,
    /// A worker said it started the task.
    started: bool,
}

#[derive(Default)]
struct Table {
    tasks: HashMap<String, Entry>,
    /// Cancelled before the server confirmed storing them: removed from the stream as soon
    /// as it does.
    cancelled_unstored: HashSet<String>,
    /// Taken out to be resolved, not resolved yet (a shutdown waits for them too).
    resolving: usize,
}

#[derive(Default)]
pub(crate) struct Pending {
    table: Mutex<Table>,
    changed: Condvar,
}

impl Pending {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// (queued, started): tasks not answered yet, by whether a worker said it started them.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let table = self.lock();
        let started = table.tasks.values().filter(|e| e.started).count();
        (table.tasks.len() - started, started)
    }

    pub(crate) fn insert(&self, id: String, resolve: Resolver) {
        self.lock().tasks.insert(
            id,
            Entry {
                resolve,
                seq: None,
                started: false,
            },
        );
    }

    /// Blocks while `limit` tasks are pending, until `open()` turns false.
    pub(crate) fn wait_for_room(&self, limit: usize, open: impl Fn() -> bool) {
        let mut table = self.lock();
        while table.tasks.len() >= limit && open() {
            table = self
                .changed
                .wait(table)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Wakes whoever waits in [`Pending::wait_for_room`] (the pool is shutting down).
    pub(crate) fn wake_all(&self) {
        self.changed.notify_all();
    }

    /// Waits until nothing is pending or `deadline` passes. True if nothing is pending.
    pub(crate) fn wait_empty(&self, deadline: Instant) -> bool {
        let mut table = self.lock();
        while !table.tasks.is_empty() || table.resolving > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            table = self
                .changed
                .wait_timeout(table, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Takes the task `id` out and resolves it with `outcome()` (its answer came, or it could
    /// not be stored). False if it is not pending (already resolved: a repeated answer).
    pub(crate) fn resolve(
        &self,
        id: &str,
        outcome: impl FnOnce() -> Result<Vec<u8>, TaskError>,
    ) -> bool {
        let resolve = {
            let mut table = self.lock();
            table.cancelled_unstored.remove(id);
            let Some(entry) = table.tasks.remove(id) else {
                return false;
            };
            table.resolving += 1;
            entry.resolve
        };
        resolve.resolve(outcome());
        self.lock().resolving -= 1;
        self.changed.notify_all();
        true
    }

    /// The server stored task `id` at `seq`. True if the task was cancelled meanwhile (then
    /// the caller removes it from the stream).
    pub(crate) fn stored(&self, id: &str, seq: u64) -> bool {
        let mut table = self.lock();
        if table.cancelled_unstored.remove(id) {
            return true;
        }
        if let Some(entry) = table.tasks.get_mut(id) {
            entry.seq = Some(seq);
        }
        false
    }

    /// A worker started task `id`.
    pub(crate) fn start(&self, id: &str) {
        if let Some(entry) = self.lock().tasks.get_mut(id)
            && !entry.started
        {
            entry.started = true;
            entry.resolve.start();
        }
    }

    /// The caller cancelled task `id` (its future already says so): it leaves the table
    /// without being resolved again. `None` if it was not pending.
    pub(crate) fn cancel(&self, id: &str) -> Option<Withdrawn> {
        let mut table = self.lock();
        let entry = table.tasks.remove(id)?;
        if entry.seq.is_none() {
            table.cancelled_unstored.insert(id.to_owned());
        }
        drop(table);
        self.changed.notify_all();
        // The resolver is dropped here: its promise finds its future already resolved.
        Some(Withdrawn {
            id: id.to_owned(),
            seq: entry.seq,
        })
    }

    /// Takes every pending task out (a shutdown resolves them), or with `only_queued` those
    /// no worker said it started.
    pub(crate) fn drain(&self, only_queued: bool) -> Vec<(Withdrawn, Resolver)> {
        let mut table = self.lock();
        let ids: Vec<String> = table
            .tasks
            .iter()
            .filter(|(_, e)| !(only_queued && e.started))
            .map(|(id, _)| id.clone())
            .collect();
        let drained: Vec<_> = ids
            .into_iter()
            .filter_map(|id| {
                let e = table.tasks.remove(&id)?;
                Some((Withdrawn { id, seq: e.seq }, e.resolve))
            })
            .collect();
        for (w, _) in &drained {
            if w.seq.is_none() {
                table.cancelled_unstored.insert(w.id.clone());
            }
        }
        drop(table);
        self.changed.notify_all();
        drained
    }
}
