//! Cancellation of pending tasks, `on_done` callbacks, a panicking callback contained and
//! counted.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Gate, bounded, eventually};
use pool_core::{Executor, State, TaskError};
use pool_thread::ThreadPool;

#[test]
fn pending_tasks_can_be_cancelled_running_ones_cannot() {
    let pool = ThreadPool::builder().max_workers(1).build().unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let running = pool.submit(move || g.wait()).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r2 = ran.clone();
    let pending = pool
        .submit(move || {
            r2.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    eventually(10, "first task running", || running.is_running());
    assert_eq!(pending.state(), State::Pending);
    assert!(pending.cancel());
    assert!(!running.cancel());
    assert!(!running.kill(), "a thread cannot be killed");
    gate.open();
    assert_eq!(bounded(10, move || running.result()), Ok(()));
    assert_eq!(
        bounded(10, move || pending.result()),
        Err(TaskError::Cancelled)
    );
    // The cancelled task never ran and is counted once the pool discards it.
    let f = pool.submit(|| ()).unwrap();
    bounded(10, move || f.result()).unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    eventually(10, "cancel counted", || pool.stats().cancelled == 1);
}

#[test]
fn callbacks_fire_and_a_panicking_one_is_contained() {
    let pool = ThreadPool::builder().max_workers(1).build().unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let f = pool
        .submit(move || {
            g.wait();
            10
        })
        .unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let s1 = seen.clone();
    f.on_done(|_| panic!("a buggy callback"));
    f.on_done(move |r| {
        s1.fetch_add(*r.unwrap(), Ordering::SeqCst);
    });
    gate.open();
    assert_eq!(bounded(10, move || f.result()), Ok(10));
    assert_eq!(seen.load(Ordering::SeqCst), 10);
    // The worker thread survived the callback's panic, and the pool counted it.
    let f = pool.submit(|| 2).unwrap();
    assert_eq!(bounded(10, move || f.result()), Ok(2));
    let s = pool.stats();
    assert_eq!(s.callback_panics, 1);
    assert_eq!(s.spawned, 1);
}

#[test]
fn dropping_a_future_does_not_cancel_its_task() {
    let pool = ThreadPool::builder().max_workers(1).build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r2 = ran.clone();
    drop(
        pool.submit(move || {
            std::thread::sleep(Duration::from_millis(5));
            r2.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap(),
    );
    eventually(10, "task ran", || ran.load(Ordering::SeqCst) == 1);
}
