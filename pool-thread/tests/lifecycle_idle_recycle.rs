//! Workers exit after `idle_timeout` down to `min_workers`; a worker is recycled after
//! `max_tasks_per_worker` — both read from the stats, polled with a deadline.

mod common;

use std::time::Duration;

use common::{bounded, eventually};
use pool_core::{Executor, collect};
use pool_thread::ThreadPool;

#[test]
fn idle_workers_shrink_to_min_workers() {
    let pool = ThreadPool::builder()
        .max_workers(4)
        .min_workers(1)
        .idle_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    eventually(10, "min_workers started", || pool.stats().workers == 1);
    let futs: Vec<_> = (0..8)
        .map(|_| {
            pool.submit(|| std::thread::sleep(Duration::from_millis(50)))
                .unwrap()
        })
        .collect();
    eventually(10, "grown to max", || pool.stats().workers == 4);
    bounded(10, move || collect(futs).unwrap());
    eventually(10, "shrunk to min_workers", || pool.stats().workers == 1);
    let s = pool.stats();
    assert_eq!(s.idle_exits, 3);
    assert_eq!(s.idle, 1);
    // And it still works, growing again on demand.
    let f = pool.submit(|| 5).unwrap();
    assert_eq!(bounded(10, move || f.result()), Ok(5));
}

#[test]
fn idle_workers_can_all_exit() {
    let pool = ThreadPool::builder()
        .max_workers(2)
        .idle_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let f = pool.submit(|| 1).unwrap();
    bounded(10, move || f.result()).unwrap();
    eventually(10, "no workers left", || pool.stats().workers == 0);
    let f = pool.submit(|| 2).unwrap();
    assert_eq!(bounded(10, move || f.result()), Ok(2));
}

#[test]
fn workers_are_recycled_after_max_tasks() {
    let pool = ThreadPool::builder()
        .max_workers(1)
        .max_tasks_per_worker(10)
        .build()
        .unwrap();
    let futs: Vec<_> = (0..35)
        .map(|_| pool.submit(|| std::thread::current().id()).unwrap())
        .collect();
    let ids = bounded(10, move || collect(futs).unwrap());
    eventually(10, "three recycles", || pool.stats().recycled == 3);
    let s = pool.stats();
    assert_eq!(s.spawned, 4);
    assert_eq!(s.completed, 35);
    assert!(s.workers <= 1);
    // Each recycled worker is a new thread: 10 tasks per thread id.
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 4);
}

#[test]
fn resize_and_spawn_workers() {
    let pool = ThreadPool::builder().max_workers(1).build().unwrap();
    pool.spawn_workers(3);
    eventually(10, "one prestarted", || pool.stats().spawned == 1);
    pool.resize(3);
    pool.spawn_workers(3);
    eventually(10, "three workers", || pool.stats().workers == 3);
    pool.resize(1);
    eventually(10, "back to one", || pool.stats().workers == 1);
}
