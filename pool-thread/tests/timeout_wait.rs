//! Task timeouts on threads, `wait` / `as_completed` over pool futures, `.await` in tokio.

mod common;

use std::time::{Duration, Instant};

use common::{Gate, bounded};
use pool_core::{Executor, ReturnWhen, SubmitOptions, as_completed, wait};
use pool_thread::ThreadPool;

#[test]
fn a_task_past_its_timeout_resolves_timed_out_and_the_late_result_is_dropped() {
    let pool = ThreadPool::builder()
        .max_workers(2)
        .task_timeout(Duration::from_millis(40))
        .build()
        .unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let slow = pool
        .submit(move || {
            g.wait();
            1
        })
        .unwrap();
    let err = bounded(10, move || slow.result()).unwrap_err();
    assert!(err.is_timed_out(), "{err}");
    gate.open();
    let f = pool
        .submit_with(|| 2, SubmitOptions::new().timeout(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(bounded(10, move || f.result()), Ok(2));
    let s = pool.stats();
    assert_eq!(s.timed_out, 1);
    assert!(s.failed >= 1);
}

#[test]
fn wait_and_as_completed_over_pool_futures() {
    let pool = ThreadPool::builder().max_workers(3).build().unwrap();
    let futs: Vec<_> = [60u64, 0, 30]
        .into_iter()
        .map(|ms| {
            pool.submit(move || {
                std::thread::sleep(Duration::from_millis(ms));
                ms
            })
            .unwrap()
        })
        .collect();
    let r = wait(
        &futs,
        ReturnWhen::FirstCompleted,
        Some(Duration::from_secs(10)),
    );
    assert!(r.done.contains(&1));
    let order: Vec<u64> = as_completed(futs)
        .with_deadline(Instant::now() + Duration::from_secs(10))
        .map(|(_, r)| r.unwrap())
        .collect();
    assert_eq!(order, vec![0, 30, 60]);
}

#[test]
fn futures_await_in_tokio() {
    let pool = ThreadPool::builder().max_workers(2).build().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let a = pool.submit(|| 20).unwrap();
    let b = pool
        .submit(|| {
            std::thread::sleep(Duration::from_millis(10));
            22
        })
        .unwrap();
    let sum = rt.block_on(async move {
        tokio::time::timeout(Duration::from_secs(10), async move {
            a.await.unwrap() + b.await.unwrap()
        })
        .await
        .expect("await hung")
    });
    assert_eq!(sum, 42);
}
