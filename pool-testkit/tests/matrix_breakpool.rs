//! The worker-killing rows of the matrix under `on_worker_death(BreakPool)` (loky/CPython
//! semantics): the faulty task fails with `WorkerDied`; every pending task fails with
//! `Broken` and one shared cause naming the death (a task already running on another worker
//! finishes normally); later submits are refused; and
//! `pool_process::reusable` hands out a fresh executor (new `executor_id`) that works.

use std::time::Duration;

use pool_core::{Executor, OnWorkerDeath, Shutdown, State, TaskError};
use pool_process::ProcessPool;
use pool_testkit::faults::{self, Fault, Faulty, Phase};
use pool_testkit::harness;
use pool_testkit::matrix::{expect_for, resolve_all};

const BOUND: Duration = Duration::from_secs(20);
const LIMIT: Duration = Duration::from_secs(90);

fn builder() -> pool_process::ProcessPoolBuilder {
    ProcessPool::builder()
        .max_workers(2)
        .on_worker_death(OnWorkerDeath::BreakPool)
}

/// Holds its worker until `<dir>/release` exists (60 s at most, or until `dir` is gone),
/// then answers 1.
fn held(dir: String) -> u64 {
    let dir = std::path::Path::new(&dir);
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while !dir.join("release").exists() && dir.is_dir() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
    }
    1
}

/// Where the worker dies.
#[derive(Clone, Copy, Debug)]
enum At {
    Codec(Phase),
    Task,
}

fn row(fault: Fault, at: At) {
    let name = format!("breakpool::{}::{at:?}", fault.name());
    let guard = harness::start(&name, LIMIT);
    let pool = pool_process::reusable(builder()).expect("valid pool");
    let id_before = pool.executor_id();
    // One bystander holds the other worker until the fault has killed its own (however long
    // the fault takes: an allocation until memory runs out is not quick); more are queued
    // behind the fault.
    let gate = std::env::temp_dir().join(format!("pool-breakpool-{}", std::process::id()));
    std::fs::create_dir_all(&gate).expect("gate dir");
    let running = pool
        .submit(held, gate.to_string_lossy().into_owned())
        .expect("submit");
    let deadline = std::time::Instant::now() + BOUND;
    while running.state() != State::Running {
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: bystander never started"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    type Pending = Box<dyn FnOnce() -> Result<Result<u64, TaskError>, State>>;
    let bad: Pending = match at {
        At::Task => {
            let f = pool.submit(faults::run_fault, fault).expect("submit");
            Box::new(move || {
                f.result_timeout(BOUND)
                    .map(|r| r.map(|_| 0))
                    .map_err(|f| f.state())
            })
        }
        At::Codec(phase) => {
            let f = pool
                .submit(faults::pass_through, Faulty::new(fault, phase, 3))
                .expect("submit");
            Box::new(move || {
                f.result_timeout(BOUND)
                    .map(|r| r.map(|v| v.payload))
                    .map_err(|f| f.state())
            })
        }
    };
    let queued: Vec<_> = (10..14u64)
        .map(|x| (x, pool.submit(faults::ok, x)))
        .filter_map(|(x, r)| r.ok().map(|f| (x, f)))
        .collect();
    let bad = bad();
    std::fs::write(gate.join("release"), b"").expect("release the bystander");
    let bad = bad.unwrap_or_else(|s| panic!("{name}: faulty task unresolved: {s:?}"));
    expect_for(
        fault,
        match at {
            At::Codec(p) => Some(p),
            At::Task => None,
        },
    )
    .check(&name, &bad);
    // The pool is broken: the running bystander and anything queued fail with one cause.
    let mut causes = Vec::new();
    for (x, r) in resolve_all(&name, vec![(1, running)], BOUND)
        .into_iter()
        .chain(resolve_all(&name, queued, BOUND))
    {
        match r {
            Err(TaskError::Broken(c)) => causes.push(c.to_string()),
            // The running bystander finishes (BreakPool fails *pending* tasks; a task
            // running on another worker completes), and a queued task may have run before
            // the death was seen.
            Ok(v) if v == x => {}
            other => panic!("{name}: bystander {x} resolved as {other:?}"),
        }
    }
    assert!(
        !causes.is_empty(),
        "{name}: the held bystander was not failed"
    );
    assert!(
        causes.windows(2).all(|w| w[0] == w[1]),
        "{name}: causes differ: {causes:?}"
    );
    assert!(causes[0].contains("died"), "{name}: cause {:?}", causes[0]);
    let refused = pool
        .submit(faults::ok, 99)
        .expect_err("a broken pool refuses");
    assert!(refused.is_broken(), "{name}: {refused}");
    // `reusable` gives a fresh executor now.
    let fresh = pool_process::reusable(builder()).expect("a fresh pool");
    assert_ne!(
        fresh.executor_id(),
        id_before,
        "{name}: reusable returned the broken pool"
    );
    let v = fresh
        .submit(faults::ok, 5)
        .expect("submit")
        .result_timeout(BOUND);
    assert!(matches!(v, Ok(Ok(5))), "{name}: {v:?}");
    fresh.shutdown(Shutdown::Kill);
    pool.shutdown(Shutdown::Kill);
    let _ = std::fs::remove_dir_all(&gate);
    drop((pool, fresh));
    guard.finish();
}

#[test]
fn abort_in_task() {
    row(Fault::Abort, At::Task);
}
#[test]
fn segfault_in_task() {
    row(Fault::Segfault, At::Task);
}
#[test]
fn exit3_in_task() {
    row(Fault::Exit(3), At::Task);
}
#[test]
fn sigkill_in_task() {
    row(Fault::KillSelf, At::Task);
}
#[test]
fn oom_in_task() {
    row(Fault::MemoryBlowUp, At::Task);
}
#[test]
fn abort_in_worker_decode() {
    row(Fault::Abort, At::Codec(Phase::WorkerDecode));
}
#[test]
fn segfault_in_worker_decode() {
    row(Fault::Segfault, At::Codec(Phase::WorkerDecode));
}
#[test]
fn sigkill_in_worker_encode() {
    row(Fault::KillSelf, At::Codec(Phase::WorkerEncode));
}
#[test]
fn exit3_in_worker_encode() {
    row(Fault::Exit(3), At::Codec(Phase::WorkerEncode));
}
