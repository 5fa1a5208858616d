//! Submitting closures and calls, getting results back, generic code over `Executor`.

mod common;

use common::bounded;
use pool_core::{Call, ChunkFn, Executor, Submit, SubmitOptions, collect};
use pool_thread::ThreadPool;

#[test]
fn closures_return_their_values() {
    let pool = ThreadPool::builder().max_workers(3).build().unwrap();
    let futs: Vec<_> = (0..1000u64)
        .map(|i| pool.submit(move || i * i).unwrap())
        .collect();
    let got = bounded(20, move || collect(futs).unwrap());
    assert_eq!(got, (0..1000u64).map(|i| i * i).collect::<Vec<_>>());
    let s = pool.stats();
    assert_eq!(s.submitted, 1000);
    assert_eq!(s.completed, 1000);
    assert_eq!(s.failed, 0);
    assert!(s.workers <= 3);
}

#[test]
fn calls_and_trait_submit_work() {
    let pool = ThreadPool::builder().max_workers(2).build().unwrap();
    let f = Submit::submit(
        &pool,
        Call {
            f: |x: u32| x + 1,
            arg: 41,
        },
    )
    .unwrap();
    assert_eq!(bounded(10, move || f.result()), Ok(42));
    let f = Submit::submit(&pool, || "closure via the trait").unwrap();
    assert_eq!(bounded(10, move || f.result()), Ok("closure via the trait"));
    let f = pool
        .submit_with(|| 5, SubmitOptions::new().label("five").timing(true))
        .unwrap();
    assert_eq!(bounded(10, move || f.result()), Ok(5));
}

/// Generic code written once against `Executor` + `Submit`.
fn sum_of_squares<E>(pool: &E, n: u64) -> u64
where
    E: Executor + Submit<Call<ChunkFn<fn(u64) -> u64>, Vec<u64>>>,
{
    let sq: fn(u64) -> u64 = |x| x * x;
    pool.map_all(sq, 0..n).unwrap().into_iter().sum()
}

#[test]
fn generic_executor_code_runs() {
    let pool = ThreadPool::builder().max_workers(2).build().unwrap();
    let got = bounded(20, move || sum_of_squares(&pool, 100));
    assert_eq!(got, (0..100u64).map(|i| i * i).sum::<u64>());
}

#[test]
fn timing_is_recorded_when_asked() {
    let pool = ThreadPool::builder().record_timing(true).build().unwrap();
    let f = pool
        .submit(|| std::thread::sleep(std::time::Duration::from_millis(5)))
        .unwrap();
    f.wait_timeout(std::time::Duration::from_secs(10));
    let t = f.timing();
    assert!(t.queued_at.is_some() && t.started_at.is_some() && t.finished_at.is_some());
    assert!(t.running().unwrap() >= std::time::Duration::from_millis(5));
    let quiet = ThreadPool::builder().build().unwrap();
    let f = quiet.submit(|| ()).unwrap();
    f.wait_timeout(std::time::Duration::from_secs(10));
    assert_eq!(
        f.timing().started_at,
        None,
        "off by default on thread pools"
    );
}

#[test]
fn builder_validates() {
    assert!(ThreadPool::builder().max_workers(0).build().is_err());
    assert!(
        ThreadPool::builder()
            .max_workers(2)
            .min_workers(3)
            .build()
            .is_err()
    );
    assert!(ThreadPool::builder().queue_capacity(0).build().is_err());
    assert!(
        ThreadPool::builder()
            .max_tasks_per_worker(0)
            .build()
            .is_err()
    );
    let e = ThreadPool::builder()
        .name("x")
        .max_workers(0)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("\"x\""), "{e}");
}
