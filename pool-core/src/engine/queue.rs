//! The task queue: FIFO, many producers, many consumers, no allocation per task.
//!
//! A `crossbeam_deque::Worker` (FIFO flavour: one growable ring buffer) behind a mutex for
//! the producers, and its lock-free `Stealer` for the engine threads. Unlike a linked queue
//! of blocks, nothing is allocated by the submitter and freed by a worker thread (which made
//! the allocator's arena lock a point of contention at a million tasks). The ring grows to
//! the largest backlog seen and stays that size.

use std::sync::Mutex;

use crossbeam_deque::{Steal, Stealer, Worker};

pub(crate) struct Queue<T> {
    /// The ring's producer end, and the number of engine threads asleep (or about to be)
    /// waiting for a push. Keeping that count under the producers' mutex is what makes the
    /// sleep protocol free of fences on the submit path: a thread registers as a sleeper only
    /// while holding this mutex and seeing the queue empty, and a pusher reads the count while
    /// holding it, so either the sleeper sees the task or the pusher sees the sleeper.
    push: Mutex<(Worker<T>, usize)>,
    steal: Stealer<T>,
}

impl<T> Queue<T> {
    pub(crate) fn new() -> Self {
        let w = Worker::new_fifo();
        let steal = w.stealer();
        Queue {
            push: Mutex::new((w, 0)),
            steal,
        }
    }

    /// Push `t`, then run `then(sleepers, queued)` still holding the producers' mutex.
    #[inline]
    pub(crate) fn push<R>(&self, t: T, then: impl FnOnce(usize, usize) -> R) -> R {
        let g = self.push.lock().unwrap_or_else(|p| p.into_inner());
        g.0.push(t);
        then(g.1, g.0.len())
    }

    /// Run `f(&mut sleepers, queue_is_empty)` holding the producers' mutex.
    pub(crate) fn locked<R>(&self, f: impl FnOnce(&mut usize, bool) -> R) -> R {
        let mut g = self.push.lock().unwrap_or_else(|p| p.into_inner());
        let empty = g.0.is_empty();
        f(&mut g.1, empty)
    }

    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        loop {
            match self.steal.steal() {
                Steal::Success(t) => return Some(t),
                Steal::Empty => return None,
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.steal.is_empty()
    }
}
