//! Shutdown modes, bounded; dropping the pool never hangs.

mod common;

use std::time::{Duration, Instant};

use common::{Gate, bounded, eventually};
use pool_core::{Executor, Shutdown, TaskError};
use pool_thread::ThreadPool;

#[test]
fn wait_runs_everything_queued() {
    let pool = ThreadPool::builder().max_workers(2).build().unwrap();
    let futs: Vec<_> = (0..100).map(|i| pool.submit(move || i).unwrap()).collect();
    let p = pool.clone();
    let report = bounded(10, move || p.shutdown(Shutdown::Wait));
    assert_eq!(report.cancelled, 0);
    assert_eq!(report.unfinished_workers, 0);
    assert_eq!(pool_core::collect(futs).unwrap().len(), 100);
    assert!(pool.submit(|| 1).unwrap_err().is_shutdown());
    assert_eq!(pool.stats().workers, 0);
}

#[test]
fn cancel_pending_cancels_the_queue_and_waits_for_running() {
    let pool = ThreadPool::builder().max_workers(1).build().unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let running = pool.submit(move || g.wait()).unwrap();
    eventually(10, "running", || running.is_running());
    let queued: Vec<_> = (0..5).map(|i| pool.submit(move || i).unwrap()).collect();
    let p = pool.clone();
    let sd = std::thread::spawn(move || p.shutdown(Shutdown::CancelPending));
    for f in queued {
        assert_eq!(bounded(10, move || f.result()), Err(TaskError::Cancelled));
    }
    gate.open();
    let report = bounded(10, move || sd.join().unwrap());
    assert_eq!(report.cancelled, 5);
    assert_eq!(bounded(10, move || running.result()), Ok(()));
}

#[test]
fn shutdown_with_a_deadline_is_bounded() {
    let pool = ThreadPool::builder().max_workers(1).build().unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let running = pool.submit(move || g.wait()).unwrap();
    eventually(10, "running", || running.is_running());
    let t = Instant::now();
    let p = pool.clone();
    let report = bounded(10, move || {
        p.shutdown_timeout(Shutdown::Kill, Duration::from_millis(50))
    });
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(report.unfinished_workers, 1, "a thread cannot be killed");
    assert_eq!(report.killed, 0);
    gate.open();
    assert_eq!(bounded(10, move || running.result()), Ok(()));
    eventually(10, "worker gone", || pool.stats().workers == 0);
}

#[test]
fn dropping_the_pool_does_not_hang() {
    let pool = ThreadPool::builder().max_workers(1).build().unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let running = pool.submit(move || g.wait()).unwrap();
    eventually(10, "running", || running.is_running());
    let queued = pool.submit(|| 1).unwrap();
    bounded(10, move || drop(pool));
    assert_eq!(
        bounded(10, move || queued.result()),
        Err(TaskError::Cancelled)
    );
    gate.open();
    assert_eq!(bounded(10, move || running.result()), Ok(()));
}

#[test]
fn a_task_can_shut_down_its_own_pool() {
    let pool = ThreadPool::builder().max_workers(2).build().unwrap();
    let p = pool.clone();
    let f = pool
        .submit(move || p.shutdown(Shutdown::Wait).unfinished_workers)
        .unwrap();
    // The shutdown inside the task does not wait for the task's own worker.
    assert_eq!(bounded(10, move || f.result()), Ok(1));
    assert!(pool.submit(|| 1).unwrap_err().is_shutdown());
}
