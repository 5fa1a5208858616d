//! The task queue: FIFO, many producers, many consumers, no allocation per task.
//!
//! A `crossbeam_deque::Worker` (FIFO flavour: one growable ring buffer) behind a lock for the
//! producers, and its lock-free `Stealer` for the engine threads. Unlike a linked queue of
//! blocks, nothing is allocated by the submitter and freed by a worker thread (which made the
//! allocator's arena lock a point of contention at a million tasks). The ring grows to the
//! largest backlog seen and stays that size.
//!
//! The producers' lock also guards the sleep protocol's two facts, the number of sleeping
//! engine threads and whether one is lingering (`README.md`, "Sleep / wake protocol"): a
//! push and a thread deciding to sleep meet under it.
//!
//! Under `--cfg pool_loom` the ring is a `VecDeque` inside the same lock (the model checks
//! the protocol around the ring, not crossbeam's ring itself).

use crate::loom::{Mutex, lock};

/// What the producers' lock guards.
struct Producer<T> {
    ring: ring::Ring<T>,
    /// Engine threads asleep (or about to be) waiting for a push. Keeping that count under
    /// the producers' lock is what makes the sleep protocol free of fences on the submit
    /// path: a thread registers as a sleeper only while holding this lock and seeing the
    /// queue empty, and a pusher reads the count while holding it, so either the sleeper
    /// sees the task or the pusher sees the sleeper.
    sleepers: usize,
    /// An engine thread is polling for work (see `Queue::push`): a push then needs no
    /// wake-up. Taken and given back under this lock, like `sleepers`.
    lingering: bool,
}

pub(crate) struct Queue<T> {
    producer: Mutex<Producer<T>>,
    #[cfg_attr(pool_loom, allow(dead_code))]
    take: ring::Take<T>,
}

impl<T> Queue<T> {
    pub(crate) fn new() -> Self {
        let (ring, take) = ring::new();
        Queue {
            producer: Mutex::new(Producer {
                ring,
                sleepers: 0,
                lingering: false,
            }),
            take,
        }
    }

    /// Run `f` holding the producers' lock.
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Producer<T>) -> R) -> R {
        f(&mut lock(&self.producer))
    }

    /// Push `t`, then run `then(sleepers, queued)` still holding the producers' lock.
    /// `sleepers` is 0 while an engine thread polls for work (it will find `t`; see
    /// [`Queue::stop_lingering`] for the hand-over).
    #[inline]
    pub(crate) fn push<R>(&self, t: T, then: impl FnOnce(usize, usize) -> R) -> R {
        self.with(|p| {
            p.ring.push(t);
            let sleepers = if p.lingering { 0 } else { p.sleepers };
            then(sleepers, p.ring.len())
        })
    }

    /// Become the one engine thread that polls for work; false if another one is.
    pub(crate) fn start_lingering(&self) -> bool {
        self.with(|p| !std::mem::replace(&mut p.lingering, true))
    }

    /// Stop polling. True if a sleeper must be woken now: pushes made while this thread
    /// polled woke nobody, and some of them may still be queued (this thread takes one at
    /// most).
    pub(crate) fn stop_lingering(&self) -> bool {
        self.with(|p| {
            p.lingering = false;
            p.sleepers > 0 && !p.ring.is_empty()
        })
    }

    /// The number of queued tasks, read holding the producers' lock.
    pub(crate) fn len_locked(&self) -> usize {
        self.with(|p| p.ring.len())
    }

    /// Run `f(&mut sleepers, queue_is_empty)` holding the producers' lock.
    pub(crate) fn locked<R>(&self, f: impl FnOnce(&mut usize, bool) -> R) -> R {
        self.with(|p| {
            let empty = p.ring.is_empty();
            f(&mut p.sleepers, empty)
        })
    }

    /// Take the oldest task, if any.
    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        #[cfg(not(pool_loom))]
        return self.take.pop();
        #[cfg(pool_loom)]
        return self.with(|p| p.ring.pop());
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        #[cfg(not(pool_loom))]
        return self.take.is_empty();
        #[cfg(pool_loom)]
        return self.with(|p| p.ring.is_empty());
    }
}

#[cfg(not(pool_loom))]
mod ring {
    use crossbeam_deque::{Steal, Stealer, Worker};

    /// The producers' end: pushed to only under the producers' lock.
    pub(super) type Ring<T> = Worker<T>;

    /// The consumers' end, lock-free.
    pub(super) struct Take<T>(Stealer<T>);

    pub(super) fn new<T>() -> (Ring<T>, Take<T>) {
        let ring = Worker::new_fifo();
        let take = Take(ring.stealer());
        (ring, take)
    }

    impl<T> Take<T> {
        #[inline]
        pub(super) fn pop(&self) -> Option<T> {
            // A plain load first: `steal` pins an epoch (a fence) even to find the ring
            // empty, and idle workers poll an empty ring a lot.
            if self.0.is_empty() {
                return None;
            }
            loop {
                match self.0.steal() {
                    Steal::Success(t) => return Some(t),
                    Steal::Empty => return None,
                    Steal::Retry => std::hint::spin_loop(),
                }
            }
        }

        #[inline]
        pub(super) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }
}

#[cfg(pool_loom)]
mod ring {
    use std::collections::VecDeque;
    use std::marker::PhantomData;

    pub(super) struct Ring<T>(VecDeque<T>);

    /// Consumers go through the producers' lock in the model.
    pub(super) struct Take<T>(PhantomData<fn() -> T>);

    pub(super) fn new<T>() -> (Ring<T>, Take<T>) {
        (Ring(VecDeque::new()), Take(PhantomData))
    }

    impl<T> Ring<T> {
        pub(super) fn push(&mut self, t: T) {
            self.0.push_back(t);
        }
        pub(super) fn pop(&mut self) -> Option<T> {
            self.0.pop_front()
        }
        pub(super) fn len(&self) -> usize {
            self.0.len()
        }
        pub(super) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }
}
