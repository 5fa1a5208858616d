//! Waiting for the peer: a short `sched_yield` phase, then a cross-process futex sleep with a
//! "sleeping" flag, woken periodically to check that the peer process still lives.
//!
//! # The handshake (see README.md, "Wake-ups")
//!
//! Waiter (one per event):
//!
//! ```text
//! W1 sleeping.store(1, Relaxed)
//! W2 fence(SeqCst)
//! W3 s = seq.load(Acquire)
//! W4 if ready() { sleeping = 0; return }        // reads head / tail / closed with Acquire
//! W5 futex_wait(&seq, s, timeout)
//! W6 sleeping.store(0, Relaxed); loop
//! ```
//!
//! Notifier, after it published the state change (a `Release` store of head, tail, a
//! large-region release count or a closed flag):
//!
//! ```text
//! N1 fence(SeqCst)
//! N2 if sleeping.load(Relaxed) != 0 { seq.fetch_add(1, Release); futex_wake(&seq) }
//! ```
//!
//! No lost wake-up: the two `SeqCst` fences W2 and N1 are totally ordered. If W2 comes first,
//! N2 sees `sleeping == 1` (the store W1 precedes W2) and bumps `seq`; then either W3 already
//! read the bumped value — it synchronizes with the `Release` bump, which follows the
//! notifier's publication, so W4 sees the change and does not sleep — or W3 read the old value
//! and the kernel's compare in W5 either sees the bump (returns at once) or queues the waiter
//! before the wake, which then wakes it. If N1 comes first, W4 (after W2) sees the published
//! change and does not sleep. The notifier's fast path (nobody sleeping) is one fence and one
//! load: no system call.

use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use super::layout::Event;
use crate::sys::futex;
use crate::sys::pidfd::ProcessWatch;

/// How long a waiter yields the CPU in a loop before it goes to sleep on the futex.
const SPIN: Duration = Duration::from_micros(20);
/// A sleeping waiter wakes up at least this often to check that the peer process lives.
pub(super) const LIVENESS_PERIOD: Duration = Duration::from_millis(50);

/// Why a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Woke {
    /// `ready()` returned true.
    Ready,
    /// The deadline passed first.
    TimedOut,
    /// The watched peer process exited (and `ready()` is still false).
    PeerGone,
}

/// Waits until `ready()` holds, the deadline passes, or `peer` exits.
pub(super) fn wait(
    event: &Event,
    deadline: Option<Instant>,
    peer: Option<&ProcessWatch>,
    mut ready: impl FnMut() -> bool,
) -> Woke {
    if ready() {
        return Woke::Ready;
    }
    let start = Instant::now();
    loop {
        rustix::thread::sched_yield();
        if ready() {
            return Woke::Ready;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Woke::TimedOut;
        }
        if now.duration_since(start) >= SPIN {
            break;
        }
    }
    let mut last_check = Instant::now();
    loop {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return if ready() { Woke::Ready } else { Woke::TimedOut };
        }
        if now.duration_since(last_check) >= LIVENESS_PERIOD {
            last_check = now;
            if peer.is_some_and(ProcessWatch::exited) {
                // Data written just before the peer died is still delivered.
                return if ready() { Woke::Ready } else { Woke::PeerGone };
            }
        }
        event.sleeping.store(1, Ordering::Relaxed); // W1
        fence(Ordering::SeqCst); // W2
        let seq = event.seq.load(Ordering::Acquire); // W3
        if ready() {
            // W4
            event.sleeping.store(0, Ordering::Relaxed);
            return Woke::Ready;
        }
        let mut timeout = LIVENESS_PERIOD;
        if let Some(d) = deadline {
            timeout = timeout.min(d.saturating_duration_since(now));
        }
        futex::wait(&event.seq, seq, timeout); // W5
        event.sleeping.store(0, Ordering::Relaxed); // W6
        if ready() {
            return Woke::Ready;
        }
    }
}

/// Wakes the waiter of `event` if it sleeps; call after publishing the change it waits for.
pub(super) fn notify(event: &Event) {
    fence(Ordering::SeqCst); // N1
    if event.sleeping.load(Ordering::Relaxed) != 0 {
        // N2
        event.seq.fetch_add(1, Ordering::Release);
        futex::wake_one(&event.seq);
    }
}
