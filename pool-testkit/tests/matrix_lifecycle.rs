//! The lifecycle rows of the matrix on `ProcessPool`: initializer and finalizer faults,
//! grandchildren, an idle worker killed from outside, faults during shutdown, `Kill` under
//! fire. Every test ends with the leak check (no descendant, no descriptor left).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use pool_core::{
    Executor, Shutdown, ShutdownReport, State, SubmitErrorKind, SubmitOptions, TaskError,
};
use pool_process::ProcessPool;
use pool_testkit::faults::{self, Fault};
use pool_testkit::harness;
use pool_testkit::leaks;
use pool_testkit::matrix::{expect_for, settle_bystanders, submit_bystanders};

const BOUND: Duration = Duration::from_secs(20);
const LIMIT: Duration = Duration::from_secs(90);

/// One `#[test]` per fault, each running the given row with it (the names are the ones the
/// README's matrix table lists).
macro_rules! fault_rows {
    ($row:ident; $($name:ident: $fault:expr,)*) => {
        $(
            #[test]
            fn $name() {
                $row($fault);
            }
        )*
    };
}

fn poll(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + bound;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Starts `pool.shutdown(mode)` on its own thread; the caller waits for the report with a
/// bound, so a shutdown that never returns fails the test instead of hanging it.
fn shutdown_on_a_thread(pool: &ProcessPool, mode: Shutdown) -> mpsc::Receiver<ShutdownReport> {
    let p = pool.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(p.shutdown(mode));
    });
    rx
}

fn initializer_row(fault: Fault) {
    let guard = harness::start(&format!("initializer::{}", fault.name()), LIMIT);
    let pool = ProcessPool::builder()
        .max_workers(2)
        .start_timeout(Duration::from_secs(2))
        .initializer(faults::hook_fault, fault)
        .build()
        .expect("valid pool");
    // Workers start on the first submit, so a fast-failing initializer (exit(3), a crash) may
    // break the pool before the last of these submits: a refusal must carry the same cause.
    let mut reasons = Vec::new();
    let mut futs = Vec::new();
    for i in 0..4u64 {
        match pool.submit(faults::ok, i) {
            Ok(f) => futs.push(f),
            Err(e) => match e.kind() {
                SubmitErrorKind::Broken(r) => reasons.push(r.to_string()),
                other => panic!(
                    "initializer {}: submit {i} refused: {other:?}",
                    fault.name()
                ),
            },
        }
    }
    assert!(
        !futs.is_empty(),
        "the first submit starts the workers, so it is accepted"
    );
    for (i, f) in futs.into_iter().enumerate() {
        match f.result_timeout(BOUND) {
            Ok(Err(TaskError::Broken(r))) => reasons.push(r.to_string()),
            Ok(other) => panic!(
                "initializer {}: task {i} resolved as {other:?}",
                fault.name()
            ),
            Err(f) => panic!(
                "initializer {}: task {i} unresolved: {:?}",
                fault.name(),
                f.state()
            ),
        }
    }
    // Every pending future fails with the same cause, which says what happened.
    assert!(reasons.windows(2).all(|w| w[0] == w[1]), "{reasons:?}");
    let reason = &reasons[0];
    assert!(reason.contains("initializer"), "{reason}");
    match fault {
        Fault::Error | Fault::Panic => assert!(reason.contains("injected"), "{reason}"),
        _ => {}
    }
    let e = pool
        .submit(faults::ok, 9)
        .expect_err("a broken pool refuses");
    assert!(e.is_broken(), "{e}");
    pool.shutdown(Shutdown::Kill);
    drop(pool);
    guard.finish();
}

fault_rows! {
    initializer_row;
    initializer_error: Fault::Error,
    initializer_panic: Fault::Panic,
    initializer_abort: Fault::Abort,
    initializer_segfault: Fault::Segfault,
    initializer_exit3: Fault::Exit(3),
    initializer_sigkill: Fault::KillSelf,
    initializer_hang: Fault::Hang,
    initializer_oom: Fault::MemoryBlowUp,
}

fn finalizer_row(fault: Fault) {
    let guard = harness::start(&format!("finalizer::{}", fault.name()), LIMIT);
    let pool = ProcessPool::builder()
        .max_workers(2)
        .finalizer(faults::hook_fault, fault)
        .build()
        .expect("valid pool");
    let futs = submit_bystanders(&pool, 0);
    settle_bystanders("before a faulty finalizer", futs, BOUND);
    let before = pool.stats();
    let rx = shutdown_on_a_thread(&pool, Shutdown::Wait);
    // The engine's stop deadline (5 s by default) bounds a hanging finalizer.
    let report = rx.recv_timeout(BOUND).unwrap_or_else(|_| {
        panic!(
            "finalizer {}: shutdown did not return within {BOUND:?}",
            fault.name()
        )
    });
    assert!(
        !report.finalizer_errors.is_empty(),
        "finalizer {}: not reported: {report:?} (stats before shutdown: {before:?})",
        fault.name()
    );
    if matches!(fault, Fault::Error | Fault::Panic) {
        assert!(
            report
                .finalizer_errors
                .iter()
                .all(|e| e.contains("injected")),
            "{report:?}"
        );
    }
    assert_eq!(report.unfinished_workers, 0, "{report:?}");
    drop(pool);
    guard.finish();
}

fault_rows! {
    finalizer_row;
    finalizer_error: Fault::Error,
    finalizer_panic: Fault::Panic,
    finalizer_abort: Fault::Abort,
    finalizer_segfault: Fault::Segfault,
    finalizer_exit3: Fault::Exit(3),
    finalizer_sigkill: Fault::KillSelf,
    finalizer_hang: Fault::Hang,
    finalizer_oom: Fault::MemoryBlowUp,
}

fn grandchild_row(fault: Fault) {
    let guard = harness::start(&format!("grandchild::{}", fault.name()), LIMIT);
    let pool = ProcessPool::builder()
        .max_workers(2)
        .build()
        .expect("valid pool");
    let opts = if fault == Fault::Hang {
        SubmitOptions::new().timeout(Duration::from_millis(400))
    } else {
        SubmitOptions::new()
    };
    let fut = pool_core::Submit::submit_with(
        &pool,
        pool_core::Call {
            f: faults::grandchild_then,
            arg: (60u64, fault),
        },
        opts,
    )
    .expect("submit");
    let got = fut.result_timeout(BOUND).expect("resolves");
    match fault {
        Fault::Error => assert!(matches!(got, Ok(Err(_))), "{got:?}"),
        _ => expect_for(fault, None).check("grandchild", &got.map(|_| 0)),
    }
    let v = pool
        .submit(faults::ok, 5)
        .expect("submit")
        .result_timeout(BOUND);
    assert!(matches!(v, Ok(Ok(5))), "{v:?}");
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    // The grandchild (`sleep 60`) must be gone with its worker's process tree.
    guard.finish();
}

#[test]
fn grandchild_of_a_surviving_worker_is_gone_after_shutdown() {
    grandchild_row(Fault::Error);
}
#[test]
fn grandchild_of_an_aborted_worker() {
    grandchild_row(Fault::Abort);
}
#[test]
fn grandchild_of_a_sigkilled_worker() {
    grandchild_row(Fault::KillSelf);
}
#[test]
fn grandchild_of_a_timed_out_worker() {
    grandchild_row(Fault::Hang);
}

#[test]
fn idle_worker_killed_from_outside() {
    let guard = harness::start("idle_worker_killed_from_outside", LIMIT);
    let pool = ProcessPool::builder()
        .max_workers(1)
        .build()
        .expect("valid pool");
    let pid = pool
        .submit(faults::worker_pid, ())
        .expect("submit")
        .result()
        .expect("pid");
    assert!(poll(BOUND, || pool.stats().idle == 1), "{:?}", pool.stats());
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill the idle worker");
    leaks::wait_gone(&[pid], BOUND).expect("the killed worker is reaped");
    // The next tasks run, on a new worker.
    let futs = submit_bystanders(&pool, 0);
    settle_bystanders("after an idle worker was killed", futs, BOUND);
    let new_pid = pool
        .submit(faults::worker_pid, ())
        .expect("submit")
        .result_timeout(BOUND)
        .expect("resolves")
        .expect("runs");
    assert_ne!(new_pid, pid, "a dead worker served a task");
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish();
}

fn faults_during_shutdown_wait(fault: Fault) {
    let guard = harness::start(
        &format!("faults_during_shutdown_wait::{}", fault.name()),
        LIMIT,
    );
    let pool = ProcessPool::builder()
        .max_workers(2)
        .build()
        .expect("valid pool");
    let opts = if fault == Fault::Hang {
        SubmitOptions::new().timeout(Duration::from_millis(300))
    } else {
        SubmitOptions::new()
    };
    let mut faulty = Vec::new();
    let mut fine = Vec::new();
    for i in 0..6u64 {
        fine.push((i, pool.submit(faults::slow_ok, (i, 20)).expect("submit")));
        faulty.push(
            pool_core::Submit::submit_with(
                &pool,
                pool_core::Call {
                    f: faults::run_fault,
                    arg: fault,
                },
                opts.clone(),
            )
            .expect("submit"),
        );
    }
    let rx = shutdown_on_a_thread(&pool, Shutdown::Wait);
    let report = rx
        .recv_timeout(BOUND)
        .expect("shutdown(Wait) returns while tasks fail");
    assert_eq!(report.unfinished_workers, 0, "{report:?}");
    for f in faulty {
        let r = f.result_timeout(BOUND).expect("resolves");
        match (fault, &r) {
            (Fault::Error, Ok(Err(_))) => {}
            _ => expect_for(fault, None).check("fault during shutdown", &r.map(|_| 0)),
        }
    }
    settle_bystanders("during shutdown", fine, BOUND);
    drop(pool);
    guard.finish();
}

fault_rows! {
    faults_during_shutdown_wait;
    error_during_shutdown_wait: Fault::Error,
    panic_during_shutdown_wait: Fault::Panic,
    abort_during_shutdown_wait: Fault::Abort,
    segfault_during_shutdown_wait: Fault::Segfault,
    exit3_during_shutdown_wait: Fault::Exit(3),
    sigkill_during_shutdown_wait: Fault::KillSelf,
    hang_during_shutdown_wait: Fault::Hang,
    oom_during_shutdown_wait: Fault::MemoryBlowUp,
}

#[test]
fn kill_under_fire_leaves_no_descendant() {
    let guard = harness::start("kill_under_fire_leaves_no_descendant", LIMIT);
    let pool = ProcessPool::builder()
        .max_workers(2)
        .build()
        .expect("valid pool");
    let hang = pool
        .submit(faults::grandchild_then, (60, Fault::Hang))
        .expect("submit");
    let crash = pool
        .submit(faults::run_fault, Fault::Segfault)
        .expect("submit");
    let queued: Vec<_> = (0..5u64)
        .map(|i| pool.submit(faults::slow_ok, (i, 50)).expect("submit"))
        .collect();
    assert!(
        poll(BOUND, || hang.state() == State::Running),
        "{:?}",
        hang.state()
    );
    let rx = shutdown_on_a_thread(&pool, Shutdown::Kill);
    let report = rx.recv_timeout(BOUND).expect("shutdown(Kill) returns");
    assert_eq!(report.unfinished_workers, 0, "{report:?}");
    let r = hang.result_timeout(BOUND).expect("the hung task resolves");
    assert!(r.is_err(), "{r:?}");
    let _ = crash
        .result_timeout(BOUND)
        .expect("the crashing task resolves");
    for f in queued {
        let _ = f.result_timeout(BOUND).expect("queued tasks resolve");
    }
    // Kill: zero descendants, right away (the leak check polls only to let reaping finish).
    drop(pool);
    guard.finish();
}

#[test]
fn shutdown_while_workers_idle_out() {
    let guard = harness::start("shutdown_while_workers_idle_out", LIMIT);
    let pool = ProcessPool::builder()
        .max_workers(2)
        .idle_timeout(Some(Duration::from_millis(30)))
        .build()
        .expect("valid pool");
    for round in 0..5u64 {
        let futs = submit_bystanders(&pool, round * 10);
        settle_bystanders("idle round", futs, BOUND);
        // Let some workers reach their idle timeout, some not.
        std::thread::sleep(Duration::from_millis(round * 10));
    }
    let report = pool.shutdown(Shutdown::Wait);
    assert_eq!(report.unfinished_workers, 0, "{report:?}");
    drop(pool);
    guard.finish();
}

#[test]
fn shutdown_during_resize() {
    let guard = harness::start("shutdown_during_resize", LIMIT);
    let pool = ProcessPool::builder()
        .max_workers(3)
        .build()
        .expect("valid pool");
    let p = pool.clone();
    let resizer = std::thread::spawn(move || {
        for i in 0..200usize {
            p.resize(1 + i % 4);
        }
    });
    let futs: Vec<_> = (0..40u64)
        .map(|i| pool.submit(faults::slow_ok, (i, 2)).expect("submit"))
        .collect();
    let rx = shutdown_on_a_thread(&pool, Shutdown::Wait);
    let report = rx
        .recv_timeout(BOUND)
        .expect("shutdown returns during a resize storm");
    resizer.join().expect("resizer");
    assert_eq!(report.unfinished_workers, 0, "{report:?}");
    for (i, f) in futs.into_iter().enumerate() {
        let r = f.result_timeout(BOUND).expect("resolves");
        assert_eq!(r, Ok(i as u64), "task {i} under Wait");
    }
    drop(pool);
    guard.finish();
}

#[test]
fn nested_pools_inside_workers() {
    let guard = harness::start("nested_pools_inside_workers", LIMIT);
    let pool = ProcessPool::builder()
        .max_workers(2)
        .build()
        .expect("valid pool");
    // A nested pool that works and shuts down by itself.
    let sum = pool
        .submit(faults::nested_pool_sum, 50)
        .expect("submit")
        .result_timeout(BOUND)
        .expect("resolves");
    assert_eq!(sum, Ok((0..50).sum()), "nested map");
    // A nested pool whose workers hang, inside a worker that hangs: Kill takes all three levels.
    let hung = pool.submit(faults::nested_pool_hang, ()).expect("submit");
    assert!(
        poll(BOUND, || hung.state() == State::Running),
        "{:?}",
        hung.state()
    );
    let me = std::process::id();
    let nested_running = || {
        leaks::descendants()
            .iter()
            .filter(|p| p.ppid != me && p.comm.starts_with("pool-w"))
            .count()
    };
    assert!(
        poll(BOUND, || nested_running() >= 2),
        "the nested pool's two workers did not start: {:?}",
        leaks::descendants()
    );
    // The nested workers are grandchildren; when their parent dies they are adopted by this
    // process (a subreaper), which must reap them.
    let nested: Vec<u32> = leaks::descendants()
        .iter()
        .filter(|p| p.ppid != me)
        .map(|p| p.pid)
        .collect();
    let rx = shutdown_on_a_thread(&pool, Shutdown::Kill);
    let report = rx.recv_timeout(BOUND).expect("shutdown(Kill) returns");
    assert_eq!(report.unfinished_workers, 0, "{report:?}");
    let r = hung.result_timeout(BOUND).expect("resolves");
    assert!(r.is_err(), "{r:?}");
    drop(pool);
    leaks::wait_gone(&nested, BOUND)
        .unwrap_or_else(|left| panic!("nested workers alive: {left:?}"));
    assert!(
        poll(BOUND, || {
            harness::reap(&nested);
            nested
                .iter()
                .all(|&p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        }),
        "nested workers not reaped"
    );
    guard.finish();
}

#[test]
fn leaky_tasks_recycle_workers_past_the_memory_limit() {
    let guard = harness::start("leaky_tasks_recycle_workers", LIMIT);
    // Learn a fresh worker's RSS, then allow 16 MiB more.
    let probe = ProcessPool::builder()
        .max_workers(1)
        .build()
        .expect("valid pool");
    let base = probe
        .submit(faults::leak_kib, 0)
        .expect("submit")
        .result_timeout(BOUND)
        .expect("resolves")
        .expect("runs");
    probe.shutdown(Shutdown::Wait);
    drop(probe);
    let limit = base + (16 << 20);
    let pool = ProcessPool::builder()
        .max_workers(1)
        .max_memory_per_worker(limit)
        .build()
        .expect("valid pool");
    let mut pids = std::collections::BTreeSet::new();
    for i in 0..40 {
        // 2 MiB leaked per call: a worker crosses the limit after about 8 calls.
        let rss = pool
            .submit(faults::leak_kib, 2048)
            .expect("submit")
            .result_timeout(BOUND)
            .unwrap_or_else(|f| panic!("call {i} unresolved: {:?}", f.state()))
            .unwrap_or_else(|e| panic!("call {i} failed: {e}"));
        assert!(
            rss < limit + (8 << 20),
            "call {i}: a worker reached {rss} bytes (limit {limit})"
        );
        pids.insert(
            pool.submit(faults::worker_pid, ())
                .expect("submit")
                .result_timeout(BOUND)
                .expect("resolves")
                .expect("runs"),
        );
    }
    let s = pool.stats();
    assert!(s.recycled >= 3, "leaking workers were not recycled: {s:?}");
    assert!(pids.len() >= 3, "one worker served everything: {pids:?}");
    assert_eq!(s.failed, 0, "{s:?}");
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish();
}
