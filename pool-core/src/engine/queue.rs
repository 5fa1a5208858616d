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
    push: Mutex<Worker<T>>,
    steal: Stealer<T>,
}

impl<T> Queue<T> {
    pub(crate) fn new() -> Self {
        let w = Worker::new_fifo();
        let steal = w.stealer();
        Queue {
            push: Mutex::new(w),
            steal,
        }
    }

    #[inline]
    pub(crate) fn push(&self, t: T) {
        self.push.lock().unwrap_or_else(|p| p.into_inner()).push(t);
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
