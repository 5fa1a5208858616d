//! Test harness for process tests: one test at a time per binary, a watchdog that turns a
//! hang into a failure, and a leak check (descriptors and descendant processes) at the end.
//!
//! The test process becomes a *child subreaper*, so a grandchild whose worker died is
//! re-parented to the test (not to init) and stays visible to the descendant walk; orphans
//! that exit are reaped here (only those: workers are session leaders and belong to the
//! pool that spawned them, which reaps them itself).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! let guard = pool_testkit::harness::start("doc example", Duration::from_secs(30));
//! // ... run a pool, check outcomes ...
//! guard.finish();
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use crate::leaks::{self, Snapshot};

static SERIAL: Mutex<()> = Mutex::new(());
static SUBREAPER: Once = Once::new();

/// How long [`Guard::finish`] waits for descriptors and processes to come back.
pub const SETTLE: Duration = Duration::from_secs(5);

/// Held while a test runs; see [`start`].
pub struct Guard {
    name: String,
    snapshot: Snapshot,
    armed: Arc<AtomicBool>,
    _serial: MutexGuard<'static, ()>,
}

/// Make this process a child subreaper (once).
pub fn become_subreaper() {
    SUBREAPER.call_once(|| {
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    });
}

/// Reap zombie children that are orphans adopted as subreaper (not session leaders: pool
/// workers are session leaders and are reaped by their pool). Returns how many.
pub fn reap_orphans() -> usize {
    let me = std::process::id();
    let mut n = 0;
    for p in leaks::all_processes() {
        if p.ppid == me && p.state == 'Z' && p.session != p.pid {
            let pid = rustix::process::Pid::from_raw(p.pid as i32);
            if let Some(pid) = pid
                && let Ok(Some(_)) =
                    rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG)
            {
                n += 1;
            }
        }
    }
    n
}

/// Reap these pids if they are zombie children of this process (orphans adopted as
/// subreaper whose origin is known to the caller, such as the workers of a killed parent).
/// Returns how many were reaped.
pub fn reap(pids: &[u32]) -> usize {
    let mut n = 0;
    for &p in pids {
        if let Some(pid) = rustix::process::Pid::from_raw(p as i32)
            && let Ok(Some(_)) =
                rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG)
        {
            n += 1;
        }
    }
    n
}

/// Start a test: wait for the previous test of this binary to finish, arm a watchdog that
/// aborts the whole test binary after `limit` (printing `name`), and snapshot descriptors and
/// descendants.
pub fn start(name: &str, limit: Duration) -> Guard {
    let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    become_subreaper();
    reap_orphans();
    let armed = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&armed);
    let label = name.to_owned();
    std::thread::Builder::new()
        .name(format!("watchdog {name}"))
        .spawn(move || {
            let until = Instant::now() + limit;
            while Instant::now() < until {
                if !flag.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if flag.load(Ordering::SeqCst) {
                eprintln!("WATCHDOG: test `{label}` exceeded {limit:?}; aborting the test binary");
                for p in leaks::descendants() {
                    eprintln!("  descendant at abort: {p}");
                }
                std::process::abort();
            }
        })
        .expect("spawn the watchdog thread");
    Guard {
        name: name.to_owned(),
        snapshot: Snapshot::take(),
        armed,
        _serial: serial,
    }
}

impl Guard {
    /// The snapshot taken at the start.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Assert that descriptors and descendant processes are back to the snapshot within
    /// [`SETTLE`], then disarm the watchdog.
    ///
    /// # Panics
    ///
    /// Something leaked (the message lists it).
    pub fn finish(self) {
        let until = Instant::now() + SETTLE;
        let result = loop {
            reap_orphans();
            match self.snapshot.check() {
                Ok(()) => break Ok(()),
                Err(l) if Instant::now() >= until => break Err(l),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        self.armed.store(false, Ordering::SeqCst);
        if let Err(l) = result {
            panic!("test `{}` leaked after {SETTLE:?}:\n{l}", self.name);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // A test that panicked before `finish` must not be aborted later by its watchdog.
        self.armed.store(false, Ordering::SeqCst);
    }
}
