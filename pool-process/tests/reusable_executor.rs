//! `reusable`: the same executor while healthy and configured the same, resized when only
//! `max_workers` changes, a new `executor_id` after breakage, shutdown or a new config; safe
//! from many threads at once.

mod support;

use std::time::{Duration, Instant};

use pool_core::{Executor, OnWorkerDeath, Shutdown};
use pool_process::{ProcessPool, ProcessPoolBuilder, reusable};

fn config(workers: usize) -> ProcessPoolBuilder {
    ProcessPool::builder()
        .name("reusable-test")
        .max_workers(workers)
        .on_worker_death(OnWorkerDeath::BreakPool)
}

fn die(_: ()) -> u32 {
    std::process::exit(5)
}

/// Polls `done` every 5 ms; fails with `what` if it does not hold within `within`.
fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < until, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn same_resized_and_new_executors() {
    let guard = support::start("reusable", Duration::from_secs(60));
    // No other pool's workers around: `worker_pids` below sees this pool's alone.
    support::assert_gone(&support::worker_pids(), Duration::from_secs(10));
    let a = reusable(config(2)).unwrap();
    let b = reusable(config(2)).unwrap();
    assert_eq!(a.executor_id(), b.executor_id());
    assert_eq!(a.submit(|x: u32| x + 1, 1).unwrap().result().unwrap(), 2);
    // Both workers up and idle, so that the resize below has one to let go.
    a.spawn_workers(2);
    wait_for("two idle workers", Duration::from_secs(10), || {
        let s = a.stats();
        s.workers == 2 && s.idle == 2
    });
    let before = support::worker_pids();
    assert_eq!(before.len(), 2, "the pool's worker processes: {before:?}");
    let spawned = a.stats().spawned;
    let pid = a.submit(support::worker_pid, ()).unwrap().result().unwrap();
    assert!(before.contains(&pid), "{pid} is not one of {before:?}");

    // Only max_workers changed: same pool, resized. Shrinking starts and restarts nothing:
    // one idle worker leaves (which one is not promised), the other keeps its process.
    let c = reusable(config(1)).unwrap();
    assert_eq!(c.executor_id(), a.executor_id());
    assert_eq!(a.max_workers(), 1);
    wait_for("the extra worker leaves", Duration::from_secs(5), || {
        c.stats().workers == 1
    });
    let kept = c.submit(support::worker_pid, ()).unwrap().result().unwrap();
    assert!(before.contains(&kept), "{kept} is not one of {before:?}");
    assert_eq!(c.stats().spawned, spawned, "a resize down started a worker");
    let left: Vec<u32> = before.iter().copied().filter(|p| *p != kept).collect();
    support::assert_gone(&left, Duration::from_secs(5));
    assert_eq!(support::worker_pids(), [kept]);

    // Broken: the next call makes a new one.
    let _ = c.submit(die, ()).unwrap().result();
    // The engine marks the pool broken as it handles the death (bounded wait).
    wait_for("the pool breaks", Duration::from_secs(5), || {
        c.is_broken().is_some()
    });
    let d = reusable(config(1)).unwrap();
    assert!(d.executor_id() > c.executor_id());
    assert_eq!(d.stats().executor_id, d.executor_id());
    let pid_d = d.submit(support::worker_pid, ()).unwrap().result().unwrap();

    // Configured differently: a new one.
    let e = reusable(config(1).env("POOL_TEST_REUSABLE", "1")).unwrap();
    assert!(e.executor_id() > d.executor_id());
    let pid_e = e.submit(support::worker_pid, ()).unwrap().result().unwrap();

    // Shut down: a new one.
    e.shutdown(Shutdown::Wait);
    let f = reusable(config(1).env("POOL_TEST_REUSABLE", "1")).unwrap();
    assert!(f.executor_id() > e.executor_id());

    for p in [&a, &b, &c, &d, &e, &f] {
        p.shutdown(Shutdown::Wait);
    }
    drop((a, b, c, d, e, f));
    guard.finish(&[&before[..], &[pid_d, pid_e]].concat());
}

#[test]
fn ten_threads_at_once_share_one_executor() {
    let guard = support::start("reusable_threads", Duration::from_secs(60));
    let cfg = || {
        ProcessPool::builder()
            .name("reusable-threads")
            .max_workers(2)
    };
    let results: Vec<(u64, Vec<u64>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10u64)
            .map(|t| {
                s.spawn(move || {
                    let pool = reusable(cfg()).unwrap();
                    let futs: Vec<_> = (0..20u64)
                        .map(|i| pool.submit(support::slow_double, t * 100 + i).unwrap())
                        .collect();
                    let out = futs.into_iter().map(|f| f.result().unwrap()).collect();
                    (pool.executor_id(), out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let id = results[0].0;
    for (t, (eid, out)) in results.iter().enumerate() {
        assert_eq!(*eid, id);
        let want: Vec<u64> = (0..20u64).map(|i| 2 * (t as u64 * 100 + i)).collect();
        assert_eq!(out, &want);
    }
    let pool = reusable(cfg()).unwrap();
    let pids: Vec<u32> = pool
        .map(support::worker_pid, vec![(); 4])
        .map(Result::unwrap)
        .collect();
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&pids);
}
