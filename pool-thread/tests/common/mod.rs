//! Watchdogs shared by the integration tests: every wait is bounded and fails instead of
//! hanging.

#![allow(dead_code, unreachable_pub)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Run `f` on a thread; fail the test if it takes longer than `secs`.
pub fn bounded<R: Send + 'static>(secs: u64, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("test step hung past its watchdog")
}

/// Poll `f` until it holds, failing after `secs` (never a fixed sleep).
pub fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A gate tasks can wait on (bounded), opened by the test.
#[derive(Clone, Default)]
pub struct Gate(std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    pub fn open(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }
    /// Wait until open (at most 20 s, then panic).
    pub fn wait(&self) {
        let g = self.0.0.lock().unwrap();
        let (g, t) = self
            .0
            .1
            .wait_timeout_while(g, Duration::from_secs(20), |open| !*open)
            .unwrap();
        assert!(*g && !t.timed_out(), "gate never opened");
    }
}
