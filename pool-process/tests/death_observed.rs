//! A worker's death is observed from the process itself, on every transport and start
//! method: a task that forks a grandchild (which inherits the worker's pipes and holds them
//! open) and then dies resolves `WorkerDied` within a second, with the grandchild killed too.
//! A kill resolves only once the worker and its tree are dead: right after `TimedOut`,
//! `kill()` or `shutdown(Kill)` resolve, neither the worker nor its grandchild still runs.
//! A death report quotes only the dying task's stderr, not an earlier task's.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pool_core::{Executor, ExitReason, Shutdown, TaskError};
use pool_process::{ProcessPool, StartMethod, TransportKind};

const METHODS: [StartMethod; 2] = [StartMethod::Spawn, StartMethod::ForkServer];

/// Forks a grandchild (no exec: it keeps the worker's descriptors) that sleeps `secs`, writes
/// "worker grandchild" pids to `path`, and returns the grandchild's pid.
fn fork_grandchild(path: &str, secs: u32) -> u32 {
    // SAFETY: the child only calls async-signal-safe functions (sleep, _exit).
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: async-signal-safe calls in the forked child.
        unsafe {
            libc::sleep(secs);
            libc::_exit(0);
        }
    }
    assert!(child > 0, "fork failed");
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, format!("{} {child}", std::process::id())).unwrap();
    std::fs::rename(&tmp, path).unwrap();
    child as u32
}

/// Forks a long-lived grandchild, then dies by SIGKILL.
fn fork_then_die(path: String) -> u32 {
    fork_grandchild(&path, 30);
    // SAFETY: raising a signal has no memory-safety preconditions.
    unsafe { libc::raise(libc::SIGKILL) };
    0
}

/// Forks a long-lived grandchild, then hangs.
fn fork_then_hang(path: String) -> u32 {
    fork_grandchild(&path, 30);
    std::thread::sleep(Duration::from_secs(30));
    0
}

/// The (worker, grandchild) pids a task wrote to `path`, waiting up to 20 s for them.
fn pids_from(path: &Path) -> (u32, u32) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            let mut it = text.split_whitespace().map(|p| p.parse::<u32>().unwrap());
            return (it.next().unwrap(), it.next().unwrap());
        }
        assert!(Instant::now() < until, "the task never started");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn pool(kind: TransportKind, method: StartMethod) -> pool_process::ProcessPoolBuilder {
    ProcessPool::builder()
        .max_workers(1)
        .transport(kind)
        .start_method(method)
}

fn cases() -> impl Iterator<Item = (TransportKind, StartMethod)> {
    support::TRANSPORTS
        .into_iter()
        .flat_map(|k| METHODS.map(move |m| (k, m)))
}

#[test]
fn a_death_is_seen_while_a_grandchild_holds_the_channel() {
    let guard = support::start("death_with_grandchild", Duration::from_secs(120));
    let dir = support::TempDir::new("death");
    let mut gone = Vec::new();
    for (i, (kind, method)) in cases().enumerate() {
        let what = format!("{kind:?} {method:?}");
        let p = pool(kind, method).build().unwrap();
        let path: PathBuf = dir.path().join(format!("pids-{i}"));
        let fut = p
            .submit(fork_then_die, path.to_string_lossy().into_owned())
            .unwrap();
        let (worker, grandchild) = pids_from(&path);
        // The pids are written just before the worker kills itself.
        assert!(
            fut.wait_timeout(Duration::from_secs(1)),
            "{what}: the death of worker {worker} was not seen within 1 s (its grandchild \
             {grandchild} holds its descriptors)"
        );
        match fut.result() {
            Err(TaskError::WorkerDied(d)) => {
                assert_eq!(d.pid, Some(worker), "{what}");
                assert!(
                    matches!(&d.exit, ExitReason::Signal { name, .. } if name == "SIGKILL"),
                    "{what}: {d}"
                );
            }
            other => panic!("{what}: expected WorkerDied, got {other:?}"),
        }
        assert!(
            !support::alive(grandchild),
            "{what}: the grandchild {grandchild} outlived its dead worker's report"
        );
        // The pool goes on with a new worker.
        let next = p.submit(support::worker_pid, ()).unwrap().result().unwrap();
        assert_ne!(next, worker, "{what}");
        p.shutdown(Shutdown::Wait);
        gone.extend([worker, grandchild, next]);
    }
    guard.finish(&gone);
}

#[test]
fn a_timeout_resolves_after_the_worker_and_its_tree_are_dead() {
    let guard = support::start("timeout_after_death", Duration::from_secs(120));
    let dir = support::TempDir::new("timeout");
    let mut gone = Vec::new();
    for (i, (kind, method)) in cases().enumerate() {
        let what = format!("{kind:?} {method:?}");
        let p = pool(kind, method)
            .task_timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        for round in 0..3 {
            let path = dir.path().join(format!("pids-{i}-{round}"));
            let fut = p
                .submit(fork_then_hang, path.to_string_lossy().into_owned())
                .unwrap();
            let err = fut.result().expect_err("the task hangs");
            // Checked at once: the error may only come once both are dead.
            let (worker, grandchild) = pids_from(&path);
            assert!(err.is_timed_out(), "{what}: {err}");
            assert!(
                !support::alive(worker),
                "{what}: worker {worker} still runs after `{err}`"
            );
            assert!(
                !support::alive(grandchild),
                "{what}: grandchild {grandchild} still runs after `{err}`"
            );
            gone.extend([worker, grandchild]);
        }
        p.shutdown(Shutdown::Wait);
    }
    guard.finish(&gone);
}

#[test]
fn kill_and_shutdown_kill_resolve_after_the_worker_and_its_tree_are_dead() {
    let guard = support::start("kill_after_death", Duration::from_secs(120));
    let dir = support::TempDir::new("kill");
    let mut gone = Vec::new();
    for (i, (kind, method)) in cases().enumerate() {
        let what = format!("{kind:?} {method:?}");
        let p = pool(kind, method).build().unwrap();

        // Future::kill on the running task.
        let path = dir.path().join(format!("kill-{i}"));
        let fut = p
            .submit(fork_then_hang, path.to_string_lossy().into_owned())
            .unwrap();
        let (worker, grandchild) = pids_from(&path);
        assert!(fut.kill(), "{what}: the running task could not be killed");
        assert!(
            !support::alive(worker),
            "{what}: worker {worker} still runs"
        );
        assert!(
            !support::alive(grandchild),
            "{what}: grandchild {grandchild} still runs"
        );
        assert!(fut.result().unwrap_err().is_cancelled(), "{what}");
        gone.extend([worker, grandchild]);

        // shutdown(Kill) with the task running.
        let path = dir.path().join(format!("shutdown-{i}"));
        let fut = p
            .submit(fork_then_hang, path.to_string_lossy().into_owned())
            .unwrap();
        let (worker, grandchild) = pids_from(&path);
        p.shutdown(Shutdown::Kill);
        let err = fut.result().expect_err("killed");
        assert!(err.is_cancelled(), "{what}: {err}");
        assert!(
            !support::alive(worker),
            "{what}: worker {worker} still runs"
        );
        assert!(
            !support::alive(grandchild),
            "{what}: grandchild {grandchild} still runs"
        );
        gone.extend([worker, grandchild]);
    }
    guard.finish(&gone);
}

fn say(line: String) -> u32 {
    eprintln!("{line}");
    std::process::id()
}

fn say_and_abort(line: String) -> u32 {
    eprintln!("{line}");
    std::process::abort()
}

#[test]
fn a_death_report_quotes_only_the_dying_task() {
    let guard = support::start("stderr_of_the_dying_task", Duration::from_secs(60));
    let mut gone = Vec::new();
    for (kind, method) in cases() {
        let what = format!("{kind:?} {method:?}");
        let p = pool(kind, method).build().unwrap();
        let mut pid = 0;
        for n in 0..3 {
            pid = p
                .submit(say, format!("earlier task {n} says hello"))
                .unwrap()
                .result()
                .unwrap();
        }
        let err = p
            .submit(say_and_abort, "the dying task says goodbye".to_owned())
            .unwrap()
            .result()
            .expect_err("aborts");
        let TaskError::WorkerDied(d) = err else {
            panic!("{what}: expected WorkerDied, got {err:?}");
        };
        assert_eq!(d.pid, Some(pid), "{what}");
        assert_eq!(d.stderr_tail, "the dying task says goodbye", "{what}");
        p.shutdown(Shutdown::Wait);
        gone.push(pid);
    }
    guard.finish(&gone);
}
