//! The task queue: FIFO, many producers, many consumers, no allocation per task.
//!
//! A `crossbeam_deque::Worker` (FIFO flavour: one growable ring buffer) behind a small lock
//! for the producers, and its lock-free `Stealer` for the engine threads. Unlike a linked
//! queue of blocks, nothing is allocated by the submitter and freed by a worker thread (which
//! made the allocator's arena lock a point of contention at a million tasks). The ring grows
//! to the largest backlog seen and stays that size.
//!
//! The producers' lock is a spin-then-yield lock rather than `std::sync::Mutex`: it is held
//! for a few instructions, almost never contended (submitters, and engine threads about to
//! sleep), and its release is a plain store instead of a locked exchange — that exchange was
//! a third of the submit path. This is the module's `unsafe`: the lock guards an
//! `UnsafeCell`.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_deque::{Steal, Stealer, Worker};
use crossbeam_utils::Backoff;

/// What the producers' lock guards.
struct Producer<T> {
    ring: Worker<T>,
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
    locked: AtomicBool,
    producer: UnsafeCell<Producer<T>>,
    steal: Stealer<T>,
}

// SAFETY: `producer` is only reached through `with`, which holds `locked` (acquire on lock,
// release on unlock), so one thread at a time; `Worker<T>` and the tasks are `Send`.
unsafe impl<T: Send> Sync for Queue<T> {}
// SAFETY: as above; the queue owns `T`s, which may move between threads.
unsafe impl<T: Send> Send for Queue<T> {}

impl<T> Queue<T> {
    pub(crate) fn new() -> Self {
        let ring = Worker::new_fifo();
        let steal = ring.stealer();
        Queue {
            locked: AtomicBool::new(false),
            producer: UnsafeCell::new(Producer {
                ring,
                sleepers: 0,
                lingering: false,
            }),
            steal,
        }
    }

    /// Run `f` holding the producers' lock.
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Producer<T>) -> R) -> R {
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
        // Release the lock even if `f` panics (it does not: no user code runs here).
        struct Unlock<'a>(&'a AtomicBool);
        impl Drop for Unlock<'_> {
            #[inline]
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _unlock = Unlock(&self.locked);
        // SAFETY: we hold `locked`: no other thread is inside `with`.
        f(unsafe { &mut *self.producer.get() })
    }

    #[cold]
    fn lock_slow(&self) {
        let backoff = Backoff::new();
        loop {
            // Spin on a plain load, then yield: the holder may have been preempted.
            while self.locked.load(Ordering::Relaxed) {
                backoff.snooze();
                if backoff.is_completed() {
                    std::thread::yield_now();
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
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

    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        // Two plain loads first: `steal` pins an epoch (a fence) even to find the ring
        // empty, and idle workers poll an empty ring a lot.
        if self.steal.is_empty() {
            return None;
        }
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
