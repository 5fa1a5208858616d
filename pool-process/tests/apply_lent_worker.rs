//! `ProcessPool::apply`: the caller borrows an idle worker and talks to it directly. The
//! results, failures, timeouts, death handling and statistics must be those of a queued task,
//! under concurrency and mixed with `submit`; no worker outlives a test.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_core::{Call, Executor, ExitReason, OnWorkerDeath, Shutdown, Submit, TaskError};
use pool_process::{ProcessPool, TransportKind};

fn square(x: u64) -> u64 {
    x * x
}

fn boom(x: u64) -> u64 {
    panic!("boom {x}")
}

fn abort_now(_: ()) -> u64 {
    std::process::abort()
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Calls `apply` until one call borrowed an idle worker, and returns `Stats::lent` then. A
/// call finds no worker to borrow until the pool started one and its engine thread parked
/// it (a moment after the first result, longer on a loaded machine); from then on, with no
/// task queued, the worker stays parked between calls and every call borrows it.
fn warm_lent(pool: &ProcessPool) -> u64 {
    let before = pool.stats().lent;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(pool.apply(square, 3).unwrap(), 9);
        let now = pool.stats().lent;
        if now > before {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "no call borrowed a worker: {:?}",
            pool.stats()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every worker pid the pool has now (one task per worker, run at once).
fn pids(pool: &ProcessPool, workers: usize) -> Vec<u32> {
    let futs: Vec<_> = (0..workers)
        .map(|_| pool.submit(support::worker_pid, ()).unwrap())
        .collect();
    futs.into_iter().map(|f| f.result().unwrap()).collect()
}

#[test]
fn apply_returns_values_and_failures_over_every_transport() {
    let guard = support::start("apply values", Duration::from_secs(60));
    let mut seen = Vec::new();
    for kind in support::TRANSPORTS {
        let pool = support::pool_over(kind, 2);
        let lent = warm_lent(&pool);
        let warm = pool.stats().submitted;
        for x in 0..200u64 {
            assert_eq!(pool.apply(square, x).unwrap(), x * x, "{kind:?}");
        }
        match pool.apply(boom, 7) {
            Err(TaskError::Panicked(p)) => assert!(p.message.contains("boom 7"), "{p:?}"),
            other => panic!("{kind:?}: expected a panic, got {other:?}"),
        }
        // The worker survives a panic and serves the next call — through the `Submit`
        // trait too, which generic code sees (same borrowed-worker path).
        assert_eq!(
            Submit::apply(&pool, Call { f: square, arg: 9 }).unwrap(),
            81
        );
        let s = pool.stats();
        assert_eq!(s.submitted, warm + 202, "{kind:?}: {s:?}");
        assert_eq!(s.completed, warm + 201, "{kind:?}: {s:?}");
        assert_eq!(s.failed, 1, "{kind:?}: {s:?}");
        assert_eq!(s.pending, 0, "{kind:?}: {s:?}");
        // Once a worker was parked, every call borrowed it.
        assert_eq!(s.lent, lent + 202, "{kind:?}: {s:?}");
        seen.extend(pids(&pool, 2));
        pool.shutdown(Shutdown::Wait);
    }
    guard.finish(&seen);
}

#[test]
fn a_crash_during_apply_names_the_signal_and_the_worker_is_replaced() {
    let guard = support::start("apply crash", Duration::from_secs(60));
    let pool = support::pool_over(TransportKind::Pipe, 1);
    let before = pids(&pool, 1);
    let lent = warm_lent(&pool);
    match pool.apply(abort_now, ()) {
        Err(TaskError::WorkerDied(d)) => {
            assert_eq!(d.pid, Some(before[0]), "{d:?}");
            assert!(
                matches!(&d.exit, ExitReason::Signal { name, .. } if name == "SIGABRT"),
                "{d:?}"
            );
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    assert_eq!(
        pool.stats().lent,
        lent + 1,
        "the call did not borrow the idle worker"
    );
    // The death is handled by the worker's slot at once: counted and replaced.
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.stats().died < 1 || pool.stats().replaced < 1 {
        assert!(
            Instant::now() < deadline,
            "death not handled: {:?}",
            pool.stats()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(pool.apply(square, 12).unwrap(), 144);
    let after = pids(&pool, 1);
    assert_ne!(after, before);
    pool.shutdown(Shutdown::Wait);
    let mut all = before;
    all.extend(after);
    guard.finish(&all);
}

#[test]
fn a_crash_during_apply_breaks_a_break_pool_pool() {
    let guard = support::start("apply break", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(1)
        .on_worker_death(OnWorkerDeath::BreakPool)
        .build()
        .unwrap();
    let before = pids(&pool, 1);
    let lent = warm_lent(&pool);
    assert!(matches!(
        pool.apply(abort_now, ()),
        Err(TaskError::WorkerDied(_))
    ));
    assert_eq!(
        pool.stats().lent,
        lent + 1,
        "the call did not borrow the idle worker"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.is_broken().is_none() {
        assert!(Instant::now() < deadline, "not broken: {:?}", pool.stats());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(matches!(pool.apply(square, 2), Err(TaskError::Broken(_))));
    pool.shutdown(Shutdown::Wait);
    guard.finish(&before);
}

#[test]
fn a_timeout_during_apply_kills_and_reports_the_limit() {
    let guard = support::start("apply timeout", Duration::from_secs(60));
    let limit = Duration::from_millis(200);
    let pool = ProcessPool::builder()
        .max_workers(1)
        .task_timeout(limit)
        .build()
        .unwrap();
    let before = pids(&pool, 1);
    let lent = warm_lent(&pool);
    let started = Instant::now();
    match pool.apply(sleep_ms, 30_000) {
        Err(TaskError::TimedOut { after, pid, .. }) => {
            assert_eq!(after, limit);
            assert_eq!(pid, Some(before[0]));
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        pool.stats().lent,
        lent + 1,
        "the call did not borrow the idle worker"
    );
    assert_eq!(pool.apply(square, 3).unwrap(), 9);
    assert_eq!(pool.stats().timed_out, 1);
    let after = pids(&pool, 1);
    pool.shutdown(Shutdown::Wait);
    let mut all = before;
    all.extend(after);
    guard.finish(&all);
}

#[test]
fn many_threads_apply_and_submit_at_once() {
    let guard = support::start("apply concurrent", Duration::from_secs(120));
    for kind in support::TRANSPORTS {
        let pool = Arc::new(support::pool_over(kind, 2));
        let threads: Vec<_> = (0..6u64)
            .map(|t| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    for i in 0..150u64 {
                        let x = t * 1000 + i;
                        if i % 3 == 0 {
                            let f = pool.submit(square, x).unwrap();
                            assert_eq!(f.result().unwrap(), x * x);
                        } else {
                            assert_eq!(pool.apply(square, x).unwrap(), x * x);
                        }
                    }
                })
            })
            .collect();
        // Slow queued tasks alongside: apply must not take a worker from under them.
        let slow: Vec<_> = (0..20u64)
            .map(|i| pool.submit(support::slow_double, i).unwrap())
            .collect();
        for t in threads {
            t.join().expect("a thread failed");
        }
        for (i, f) in slow.into_iter().enumerate() {
            assert_eq!(f.result().unwrap(), 2 * i as u64);
        }
        let s = pool.stats();
        assert_eq!(s.submitted, 6 * 150 + 20, "{kind:?}: {s:?}");
        assert_eq!(s.completed, 6 * 150 + 20, "{kind:?}: {s:?}");
        assert_eq!(s.pending, 0, "{kind:?}: {s:?}");
        assert!(s.lent > 0, "{kind:?}: no call borrowed a worker: {s:?}");
        let seen = pids(&pool, 2);
        pool.shutdown(Shutdown::Wait);
        drop(pool);
        support::assert_gone(&seen, Duration::from_secs(5));
    }
    guard.finish(&[]);
}

#[test]
fn apply_falls_back_to_the_queue_with_recycling_and_after_shutdown_refuses() {
    let guard = support::start("apply fallback", Duration::from_secs(60));
    // A recycling limit disables lending: calls go through the queue and count against it.
    let pool = ProcessPool::builder()
        .max_workers(1)
        .max_tasks_per_worker(5)
        .build()
        .unwrap();
    let mut seen = Vec::new();
    for x in 0..12u64 {
        assert_eq!(pool.apply(square, x).unwrap(), x * x);
        seen.push(pool.apply(support::worker_pid, ()).unwrap());
    }
    seen.sort_unstable();
    seen.dedup();
    assert!(
        seen.len() >= 4,
        "24 tasks at 5 per worker need 5 workers: {seen:?}"
    );
    assert!(pool.stats().recycled >= 4, "{:?}", pool.stats());
    assert_eq!(pool.stats().lent, 0, "{:?}", pool.stats());
    pool.shutdown(Shutdown::Wait);
    assert!(matches!(pool.apply(square, 1), Err(TaskError::Shutdown)));
    guard.finish(&seen);
}

/// What `mixed` does with its argument: 0 a value, 1 a panic, 2 an abort (the worker dies).
fn mixed(x: u64) -> u64 {
    match x % 10 {
        7 => panic!("seven"),
        9 => std::process::abort(),
        _ => x * 3,
    }
}

#[test]
fn concurrent_calls_with_panics_and_crashes_each_get_their_own_outcome() {
    let guard = support::start("apply faults", Duration::from_secs(120));
    for kind in support::TRANSPORTS {
        let pool = Arc::new(support::pool_over(kind, 2));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let pool = Arc::clone(&pool);
                std::thread::spawn(move || {
                    for i in 0..40u64 {
                        let x = t * 100 + i;
                        // Every fourth call goes through the queue instead.
                        let got = if i % 4 == 0 {
                            pool.submit(mixed, x).unwrap().result()
                        } else {
                            pool.apply(mixed, x)
                        };
                        match (x % 10, got) {
                            (7, Err(TaskError::Panicked(p))) => {
                                assert!(p.message.contains("seven"), "{p:?}")
                            }
                            (9, Err(TaskError::WorkerDied(d))) => assert!(
                                matches!(&d.exit, ExitReason::Signal { name, .. } if name == "SIGABRT"),
                                "{d:?}"
                            ),
                            (r, Ok(v)) if r != 7 && r != 9 => assert_eq!(v, x * 3),
                            (_, other) => panic!("{kind:?}: mixed({x}) gave {other:?}"),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("a caller saw a wrong outcome");
        }
        // 4 × 40 calls, 16 of them crashes: every death counted and replaced.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = pool.stats();
            if s.died == 16 && s.replaced == 16 && s.completed + s.failed == 160 {
                assert_eq!(s.failed, 32, "{kind:?}: {s:?}");
                assert!(s.lent > 0, "{kind:?}: {s:?}");
                break;
            }
            assert!(Instant::now() < deadline, "{kind:?}: {s:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(pool.apply(square, 4).unwrap(), 16);
        let seen = pids(&pool, 2);
        pool.shutdown(Shutdown::Wait);
        drop(pool);
        support::assert_gone(&seen, Duration::from_secs(5));
    }
    guard.finish(&[]);
}
