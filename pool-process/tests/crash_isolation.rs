//! A crash in one task fails that task only — with the signal or exit code by name — while
//! twenty other tasks on the same pool succeed, and no worker outlives the test.

mod support;

use std::time::{Duration, Instant};

use pool_core::{Executor, ExitReason, Future, Shutdown, TaskError};
use pool_process::{ProcessPool, StartMethod};

fn no_core_dump() {
    let _ = rustix::process::setrlimit(
        rustix::process::Resource::Core,
        rustix::process::Rlimit {
            current: Some(0),
            maximum: None,
        },
    );
}

fn crash(kind: String) -> u32 {
    eprintln!("crash fixture: about to {kind}");
    match kind.as_str() {
        "abort" => std::process::abort(),
        "segv" => {
            no_core_dump();
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::SEGV,
            );
            std::thread::sleep(Duration::from_secs(10));
            0
        }
        "exit3" => std::process::exit(3),
        _ => 0,
    }
}

/// Writes this worker's pid to `path`, then hangs until killed.
fn hang_and_report(path: String) -> u32 {
    std::fs::write(&path, std::process::id().to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(60));
    0
}

fn run_with_neighbours(
    pool: &ProcessPool,
    crasher: impl FnOnce() -> Future<u32>,
    after_submit: impl FnOnce(),
) -> (TaskError, Vec<u32>) {
    let before: Vec<_> = (0..10u64)
        .map(|i| pool.submit(support::slow_double, i).unwrap())
        .collect();
    let bad = crasher();
    let after: Vec<_> = (10..20u64)
        .map(|i| pool.submit(support::slow_double, i).unwrap())
        .collect();
    after_submit();
    let err = bad.result().expect_err("the crashing task must fail");
    for (i, f) in before.into_iter().chain(after).enumerate() {
        assert_eq!(f.result().unwrap(), 2 * i as u64, "neighbour task {i}");
    }
    // The pool still works afterwards.
    let pids: Vec<u32> = (0..4)
        .map(|_| {
            pool.submit(support::worker_pid, ())
                .unwrap()
                .result()
                .unwrap()
        })
        .collect();
    (err, pids)
}

fn expect_died(err: &TaskError, exit: ExitReason, stderr: Option<&str>) -> u32 {
    match err {
        TaskError::WorkerDied(d) => {
            assert_eq!(d.exit, exit, "{err}");
            if let Some(s) = stderr {
                assert!(d.stderr_tail.contains(s), "stderr tail {:?}", d.stderr_tail);
            }
            assert!(!d.task.is_empty());
            let text = err.to_string();
            assert!(text.contains(&exit.to_string()), "{text}");
            d.pid.expect("pid")
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
}

fn signal(number: i32, name: &str) -> ExitReason {
    ExitReason::Signal {
        number,
        name: name.into(),
    }
}

fn check(kind: &str, exit: ExitReason, method: StartMethod) {
    let guard = support::start_for("crash", Duration::from_secs(60), method);
    let pool = ProcessPool::builder()
        .max_workers(2)
        .start_method(method)
        .build()
        .unwrap();
    let kind_owned = kind.to_string();
    let (err, mut pids) =
        run_with_neighbours(&pool, || pool.submit(crash, kind_owned).unwrap(), || {});
    let dead = expect_died(&err, exit, Some(&format!("about to {kind}")));
    // The error names the function that was running.
    assert!(
        err.to_string().contains("crash_isolation::crash (task #"),
        "{err}"
    );
    pids.push(dead);
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&pids);
}

#[test]
fn abort_fails_only_its_task_with_sigabrt() {
    check("abort", signal(6, "SIGABRT"), StartMethod::Spawn);
}

#[test]
fn segfault_fails_only_its_task_with_sigsegv() {
    check("segv", signal(11, "SIGSEGV"), StartMethod::Spawn);
}

#[test]
fn exit_code_fails_only_its_task_with_the_code() {
    check("exit3", ExitReason::Code(3), StartMethod::Spawn);
}

#[test]
fn sigkill_from_outside_fails_only_its_task_with_sigkill() {
    sigkill_from_outside(StartMethod::Spawn);
}

#[test]
fn fork_server_abort_fails_only_its_task_with_sigabrt() {
    check("abort", signal(6, "SIGABRT"), StartMethod::ForkServer);
}

#[test]
fn fork_server_segfault_fails_only_its_task_with_sigsegv() {
    check("segv", signal(11, "SIGSEGV"), StartMethod::ForkServer);
}

#[test]
fn fork_server_exit_code_fails_only_its_task_with_the_code() {
    check("exit3", ExitReason::Code(3), StartMethod::ForkServer);
}

#[test]
fn fork_server_sigkill_from_outside_fails_only_its_task_with_sigkill() {
    sigkill_from_outside(StartMethod::ForkServer);
}

fn sigkill_from_outside(method: StartMethod) {
    let guard = support::start_for("sigkill", Duration::from_secs(60), method);
    let dir = support::TempDir::new("sigkill");
    let file = dir.path().join("pid");
    let pool = ProcessPool::builder()
        .max_workers(2)
        .start_method(method)
        .build()
        .unwrap();
    let path = file.to_string_lossy().into_owned();
    let (err, mut pids) = run_with_neighbours(
        &pool,
        || pool.submit(hang_and_report, path).unwrap(),
        || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let pid: i32 = loop {
                if let Ok(s) = std::fs::read_to_string(&file)
                    && let Ok(p) = s.trim().parse()
                {
                    break p;
                }
                assert!(Instant::now() < deadline, "the hanging task never started");
                std::thread::sleep(Duration::from_millis(5));
            };
            rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid).unwrap(),
                rustix::process::Signal::KILL,
            )
            .unwrap();
        },
    );
    pids.push(expect_died(&err, signal(9, "SIGKILL"), None));
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&pids);
}

#[test]
fn break_pool_policy_fails_everything_after_a_death() {
    let guard = support::start("breakpool", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(1)
        .on_worker_death(pool_core::OnWorkerDeath::BreakPool)
        .build()
        .unwrap();
    let pid = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    let bad = pool.submit(crash, "exit3".to_string()).unwrap();
    let err = bad.result().unwrap_err();
    assert!(
        matches!(err, TaskError::WorkerDied(_) | TaskError::Broken(_)),
        "{err:?}"
    );
    let later = match pool.submit(support::worker_pid, ()) {
        Ok(f) => f.result().unwrap_err(),
        Err(e) => e.to_task_error(),
    };
    assert!(matches!(later, TaskError::Broken(_)), "{later:?}");
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[pid]);
}

fn sometimes_abort(i: u32) -> u32 {
    if i % 5 == 4 {
        std::process::abort();
    }
    i
}

#[test]
fn repeated_crashes_are_each_isolated_and_leak_nothing() {
    let guard = support::start("crash_storm", Duration::from_secs(120));
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let futures: Vec<_> = (0..50u32)
        .map(|i| pool.submit(sometimes_abort, i).unwrap())
        .collect();
    let mut pids = Vec::new();
    for (i, f) in futures.into_iter().enumerate() {
        match f.result() {
            Ok(v) => assert_eq!(v as usize, i),
            Err(TaskError::WorkerDied(d)) => {
                assert_eq!(i % 5, 4, "task {i} died but should not have");
                assert_eq!(d.exit, signal(6, "SIGABRT"));
                pids.extend(d.pid);
            }
            Err(e) => panic!("task {i}: {e}"),
        }
    }
    assert_eq!(pids.len(), 10);
    assert!(
        pool.stats().replaced + pool.stats().died >= 10,
        "{:?}",
        pool.stats()
    );
    pids.extend(
        pool.map(support::worker_pid, vec![(); 4])
            .map(Result::unwrap),
    );
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&pids);
}
