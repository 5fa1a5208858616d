//! Cross-process futexes: sleeping on a 32-bit word in shared memory until another process
//! changes it.
//!
//! Mechanism: `futex(2)` with `FUTEX_WAIT` / `FUTEX_WAKE` *without* `FUTEX_PRIVATE_FLAG`. A
//! private futex is keyed by (address space, virtual address) and never wakes another process;
//! a shared one is keyed by the underlying page (here a page of a memory file), so two
//! processes mapping the same file at different addresses meet on the same futex. (std,
//! parking_lot and crossbeam all use private futexes, which is why this is hand-rolled.)
//! `FUTEX_WAIT` takes a relative timeout and returns early on a wake, a signal, or when the
//! word no longer holds the expected value — callers always re-check their condition.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

/// Sleeps while `*word == expected`, for at most `timeout`. Returns on a wake-up, a timeout, a
/// signal, or at once if the word already differs; the caller re-checks its condition.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = futex::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    // EAGAIN (value changed), ETIMEDOUT and EINTR all mean "go and look again".
    let _ = futex::wait(word, futex::Flags::empty(), expected, Some(&ts));
}

/// Wakes at most one process or thread sleeping on `word`.
pub(crate) fn wake_one(word: &AtomicU32) {
    let _ = futex::wake(word, futex::Flags::empty(), 1);
}
