//! The process pool end to end over the shared-memory transport: round trips, map, large
//! payloads both ways, a crashing task, a timeout and a kill — and no worker outlives a test.

mod support;

use std::time::{Duration, Instant};

use pool_core::{Call, Executor, ExitReason, Shutdown, Submit, SubmitOptions, TaskError};
use pool_process::{ProcessPool, TransportKind};

fn shm_pool(workers: usize) -> ProcessPool {
    ProcessPool::builder()
        .max_workers(workers)
        .transport(TransportKind::Shm)
        .build()
        .unwrap()
}

fn worker_pids(pool: &ProcessPool, n: usize) -> Vec<u32> {
    (0..n)
        .map(|_| {
            pool.submit(support::worker_pid, ())
                .unwrap()
                .result()
                .unwrap()
        })
        .collect()
}

/// Returns the bytes reversed, so both directions carry the payload.
fn reverse(mut v: Vec<u8>) -> Vec<u8> {
    v.reverse();
    v
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn abort(_: ()) -> u32 {
    eprintln!("shm pool fixture: aborting");
    std::process::abort()
}

#[test]
fn round_trips_map_and_large_payloads() {
    let guard = support::start("shm_pool_round_trip", Duration::from_secs(120));
    let pool = shm_pool(2);
    assert_eq!(
        pool.submit(|x: u64| x + 1, 41).unwrap().result().unwrap(),
        42
    );
    let squares: Vec<u64> = pool
        .map(|x: u64| x * x, 0..10_000u64)
        .map(Result::unwrap)
        .collect();
    assert_eq!(squares, (0..10_000u64).map(|x| x * x).collect::<Vec<_>>());
    for len in [0usize, 1, 255 << 10, 257 << 10, 1 << 20, 9 << 20] {
        let v: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut want = v.clone();
        want.reverse();
        assert_eq!(
            pool.submit(reverse, v).unwrap().result().unwrap(),
            want,
            "{len} bytes"
        );
    }
    let pids = worker_pids(&pool, 4);
    assert!(pids.iter().all(|&p| p != std::process::id()));
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&pids);
}

#[test]
fn crash_fails_one_task_and_the_pool_goes_on() {
    let guard = support::start("shm_pool_crash", Duration::from_secs(120));
    let pool = shm_pool(2);
    let neighbours: Vec<_> = (0..10u64)
        .map(|i| pool.submit(support::slow_double, i).unwrap())
        .collect();
    let t0 = Instant::now();
    let err = pool.submit(abort, ()).unwrap().result().unwrap_err();
    match &err {
        TaskError::WorkerDied(d) => {
            assert!(
                matches!(d.exit, ExitReason::Signal { number: 6, .. }),
                "{err}"
            );
            assert!(d.stderr_tail.contains("aborting"), "{err}");
        }
        other => panic!("expected WorkerDied, got {other}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(10));
    for (i, f) in neighbours.into_iter().enumerate() {
        assert_eq!(f.result().unwrap(), 2 * i as u64);
    }
    let pids = worker_pids(&pool, 4);
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&pids);
}

#[test]
fn timeout_and_kill_end_a_running_task() {
    let guard = support::start("shm_pool_timeout", Duration::from_secs(120));
    let pool = shm_pool(1);
    let first = worker_pids(&pool, 1);
    let slow = Submit::submit_with(
        &pool,
        Call {
            f: sleep_ms,
            arg: 30_000,
        },
        SubmitOptions::default().timeout(Duration::from_millis(200)),
    )
    .unwrap();
    assert!(matches!(slow.result(), Err(TaskError::TimedOut { .. })));
    let slow = pool.submit(sleep_ms, 30_000).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(slow.kill());
    assert!(matches!(slow.result(), Err(TaskError::Cancelled)));
    // A fresh worker answers.
    let after = worker_pids(&pool, 1);
    assert_ne!(first, after);
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    let mut all = first;
    all.extend(after);
    guard.finish(&all);
}
