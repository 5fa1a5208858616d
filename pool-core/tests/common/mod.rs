//! What the engine tests share: the watchdogs, the fake worker's death and kill-aware sleep,
//! and the submit and config shorthands. Each fake backend stays in its own file: they model
//! different workers (one in-process, one fed through a pipe).

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pool_core::*;

/// Run `f` on a thread; fail the test instead of hanging if it takes longer than `secs`.
pub(crate) fn bounded<R: Send + 'static>(secs: u64, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("test step hung past its watchdog")
}

/// Poll `f` until it is true, failing after `secs`.
pub(crate) fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Sleep `d` in 1 ms steps unless `killed` is set meanwhile; false if it was.
pub(crate) fn sleep_unless_killed(d: Duration, killed: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if killed.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// The error of a fake worker (process `pid`) that died of SIGKILL while running `ctx`'s task.
pub(crate) fn sigkilled(worker: WorkerId, pid: u32, ctx: &RunContext) -> TaskError {
    TaskError::WorkerDied(WorkerDied {
        worker,
        pid: Some(pid),
        exit: ExitReason::Signal {
            number: 9,
            name: "SIGKILL".into(),
        },
        task: ctx.task_name(),
        stderr_tail: String::new(),
    })
}

/// An engine config with `max` workers and defaults otherwise.
pub(crate) fn cfg(max: usize) -> EngineConfig {
    EngineConfig {
        max_workers: max,
        ..EngineConfig::default()
    }
}

/// Submit with default options; the engine must accept.
pub(crate) fn submit<B: Backend>(e: &Engine<B>, input: B::Input) -> Future<B::Output>
where
    B::Input: Debug,
{
    e.submit(input, SubmitOptions::default(), Ok).unwrap()
}
