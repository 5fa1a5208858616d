//! The bounded queue: `Block` waits for room, `Reject` hands the task back, `CallerRuns`
//! runs it on the submitting thread.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Gate, bounded, eventually};
use pool_core::{Executor, Rejection};
use pool_thread::ThreadPool;

fn busy_pool(r: Rejection) -> (ThreadPool, Gate, pool_core::Future<()>) {
    let pool = ThreadPool::builder()
        .max_workers(1)
        .queue_capacity(2)
        .rejection(r)
        .build()
        .unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let running = pool.submit(move || g.wait()).unwrap();
    eventually(10, "worker busy", || running.is_running());
    (pool, gate, running)
}

#[test]
fn reject_hands_the_task_back() {
    let (pool, gate, running) = busy_pool(Rejection::Reject);
    let a = pool.submit(|| 1).unwrap();
    let b = pool.submit(|| 2).unwrap();
    let err = pool.submit(|| 3).unwrap_err();
    assert!(err.is_queue_full());
    let task = err.into_task().expect("task handed back");
    assert_eq!(task(), 3);
    assert_eq!(pool.stats().pending, 2);
    gate.open();
    bounded(10, move || running.result()).unwrap();
    assert_eq!(bounded(10, move || a.result()), Ok(1));
    assert_eq!(bounded(10, move || b.result()), Ok(2));
}

#[test]
fn block_waits_for_room() {
    let (pool, gate, running) = busy_pool(Rejection::Block);
    pool.submit(|| 1).unwrap();
    pool.submit(|| 2).unwrap();
    let submitted = Arc::new(AtomicBool::new(false));
    let s2 = submitted.clone();
    let p2 = pool.clone();
    let t = std::thread::spawn(move || {
        let f = p2.submit(|| 3).unwrap();
        s2.store(true, Ordering::SeqCst);
        f.result_timeout(Duration::from_secs(10)).unwrap()
    });
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !submitted.load(Ordering::SeqCst),
        "submit must block while the queue is full"
    );
    gate.open();
    eventually(10, "blocked submit got in", || {
        submitted.load(Ordering::SeqCst)
    });
    assert_eq!(bounded(10, move || t.join().unwrap()), Ok(3));
    bounded(10, move || running.result()).unwrap();
}

#[test]
fn block_is_released_by_shutdown() {
    let (pool, gate, _running) = busy_pool(Rejection::Block);
    pool.submit(|| 1).unwrap();
    pool.submit(|| 2).unwrap();
    let p2 = pool.clone();
    let t = std::thread::spawn(move || p2.submit(|| 3).map(|_| ()).map_err(|e| e.is_shutdown()));
    std::thread::sleep(Duration::from_millis(30));
    let p3 = pool.clone();
    let sd = std::thread::spawn(move || p3.shutdown(pool_core::Shutdown::CancelPending));
    assert_eq!(bounded(10, move || t.join().unwrap()), Err(true));
    gate.open();
    let report = bounded(10, move || sd.join().unwrap());
    assert_eq!(report.cancelled, 2);
}

#[test]
fn caller_runs_on_the_submitting_thread() {
    let (pool, gate, running) = busy_pool(Rejection::CallerRuns);
    pool.submit(|| std::thread::current().id()).unwrap();
    pool.submit(|| std::thread::current().id()).unwrap();
    let f = pool.submit(|| std::thread::current().id()).unwrap();
    assert!(f.is_done(), "ran inline");
    assert_eq!(f.result(), Ok(std::thread::current().id()));
    let f = pool.submit(|| -> u8 { panic!("inline panic") }).unwrap();
    assert!(f.result().unwrap_err().is_panic());
    gate.open();
    bounded(10, move || running.result()).unwrap();
    let s = pool.stats();
    assert_eq!(s.submitted, 5);
}
