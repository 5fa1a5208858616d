//! User code that panics where the pool runs it on its own threads — a task's `Drop`, a
//! discarded result's `Drop`, a late result's `Drop`, a callback — is contained: the worker
//! thread survives (or is replaced), later tasks run, and shutdown returns.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Gate, bounded, eventually};
use pool_core::{ChunkSize, Executor, MapOptions, Shutdown, State, SubmitOptions, TaskError};
use pool_thread::ThreadPool;

/// A value whose `Drop` panics.
struct Bomb(&'static str);

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("{} panicked in Drop", self.0);
    }
}

/// Drop `v` and swallow a panic of its `Drop` (when the test thread itself must drop one).
fn defuse<T>(v: T) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(v)));
}

/// The pool still runs tasks, and shuts down with `Wait` without hanging.
fn still_serves_and_stops(pool: ThreadPool) {
    let f = pool.submit(|| 7).unwrap();
    assert_eq!(bounded(10, move || f.result()), Ok(7));
    let report = bounded(10, move || pool.shutdown(Shutdown::Wait));
    assert_eq!(report.unfinished_workers, 0);
}

/// A one-worker pool whose worker is busy until the returned gate opens.
fn busy_pool() -> (ThreadPool, Gate, pool_core::Future<()>) {
    let pool = ThreadPool::builder().max_workers(1).build().unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let running = pool.submit(move || g.wait()).unwrap();
    eventually(10, "first task running", || running.is_running());
    (pool, gate, running)
}

#[test]
fn a_cancelled_task_whose_closure_panics_in_drop_does_not_kill_the_worker() {
    let (pool, gate, running) = busy_pool();
    let bomb = Bomb("cancelled closure");
    let queued = pool
        .submit(move || {
            let _keep = &bomb;
        })
        .unwrap();
    assert_eq!(queued.state(), State::Pending);
    assert!(queued.cancel());
    gate.open();
    assert_eq!(bounded(10, move || running.result()), Ok(()));
    assert_eq!(
        bounded(10, move || queued.result()),
        Err(TaskError::Cancelled)
    );
    // The worker dropped the cancelled closure (its Drop panicked) and went on.
    let p = pool.clone();
    eventually(10, "cancel counted", move || p.stats().cancelled == 1);
    still_serves_and_stops(pool);
}

#[test]
fn a_discarded_result_that_panics_in_drop_does_not_kill_the_worker() {
    let (pool, gate, running) = busy_pool();
    let g = gate.clone();
    let discarded = pool
        .submit(move || {
            g.wait();
            Bomb("discarded result")
        })
        .unwrap();
    // Nobody will take the result: the pool's thread drops it after resolving.
    drop(discarded);
    gate.open();
    assert_eq!(bounded(10, move || running.result()), Ok(()));
    let p = pool.clone();
    eventually(10, "the discarded task completed", move || {
        p.stats().completed == 2
    });
    still_serves_and_stops(pool);
    // The worker thread survived: it was never replaced.
}

#[test]
fn a_late_result_of_a_timed_out_task_that_panics_in_drop_does_not_kill_the_worker() {
    let pool = ThreadPool::builder().max_workers(1).build().unwrap();
    let gate = Gate::default();
    let g = gate.clone();
    let late = pool
        .submit_with(
            move || {
                g.wait();
                Bomb("late result")
            },
            SubmitOptions::new().timeout(Duration::from_millis(50)),
        )
        .unwrap();
    let r = bounded(10, move || late.result().map(defuse));
    assert!(matches!(r, Err(TaskError::TimedOut { .. })), "{r:?}");
    // The task returns after its future was resolved: the pool drops the late result.
    gate.open();
    still_serves_and_stops(pool);
}

#[test]
fn a_timed_task_whose_discarded_result_panics_in_drop_does_not_kill_the_watchdog() {
    let pool = ThreadPool::builder().max_workers(1).build().unwrap();
    // Finishes at once; its future is dropped, so the last reference to its result is the
    // watchdog's, released when the (long) deadline passes.
    let first = pool
        .submit_with(
            || Bomb("result watched past its deadline"),
            SubmitOptions::new().timeout(Duration::from_millis(300)),
        )
        .unwrap();
    defuse(first);
    // A later task that overruns its limit must still be timed out by the watchdog.
    let gate = Gate::default();
    let g = gate.clone();
    let slow = pool
        .submit_with(
            move || g.wait(),
            SubmitOptions::new().timeout(Duration::from_millis(600)),
        )
        .unwrap();
    let r = bounded(15, move || slow.result());
    assert!(matches!(r, Err(TaskError::TimedOut { .. })), "{r:?}");
    gate.open();
    still_serves_and_stops(pool);
}

#[test]
fn shutdown_cancel_drains_tasks_whose_closures_panic_in_drop() {
    let (pool, gate, running) = busy_pool();
    let ran = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..3)
        .map(|i| {
            let bomb = (i == 1).then(|| Bomb("drained closure"));
            let ran = ran.clone();
            pool.submit(move || {
                let _keep = &bomb;
                ran.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap()
        })
        .collect();
    let p = pool.clone();
    let stopper = std::thread::spawn(move || p.shutdown(Shutdown::CancelPending));
    // Every queued task is cancelled, the panicking one's neighbours included.
    for f in queued {
        assert_eq!(bounded(10, move || f.result()), Err(TaskError::Cancelled));
    }
    gate.open();
    assert_eq!(bounded(10, move || running.result()), Ok(()));
    let report = bounded(10, move || stopper.join())
        .expect("shutdown returned instead of unwinding the caller");
    assert_eq!(report.cancelled, 3);
    assert_eq!(report.unfinished_workers, 0);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn a_task_dropped_by_a_closing_pool_panicking_in_drop_does_not_hang_shutdown_wait() {
    // Cancelled while queued, then the pool is shut down with `Wait`: the worker drops the
    // cancelled closure while finishing the queue.
    let (pool, gate, running) = busy_pool();
    let bomb = Bomb("cancelled before shutdown");
    let queued = pool
        .submit(move || {
            let _keep = &bomb;
        })
        .unwrap();
    let after = pool.submit(|| 5).unwrap();
    assert!(queued.cancel());
    let p = pool.clone();
    let stopper = std::thread::spawn(move || p.shutdown(Shutdown::Wait));
    gate.open();
    assert_eq!(bounded(10, move || running.result()), Ok(()));
    assert_eq!(bounded(10, move || after.result()), Ok(5));
    let report = bounded(10, move || stopper.join()).expect("shutdown returned");
    assert_eq!(report.unfinished_workers, 0);
}

#[test]
fn a_callback_that_panics_in_drop_or_in_its_body_is_contained() {
    let (pool, gate, running) = busy_pool();
    let bomb = Bomb("callback capture");
    running.on_done(move |_| {
        let _keep = &bomb;
    });
    running.on_done(|_| panic!("a buggy callback"));
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    running.on_done(move |_| {
        s.fetch_add(1, Ordering::SeqCst);
    });
    gate.open();
    assert_eq!(bounded(10, move || running.result()), Ok(()));
    assert_eq!(seen.load(Ordering::SeqCst), 1, "later callbacks still ran");
    let p = pool.clone();
    eventually(10, "both callback panics counted", move || {
        p.stats().callback_panics == 2
    });
    assert_eq!(pool.stats().spawned, 1, "the worker thread survived");
    still_serves_and_stops(pool);
}

#[test]
fn map_chunks_cancelled_by_dropping_the_iterator_may_panic_in_drop() {
    let pool = ThreadPool::builder().max_workers(1).build().unwrap();
    let gate = Gate::default();
    let (p, g, opened) = (pool.clone(), gate.clone(), gate.clone());
    let first = bounded(10, move || {
        // One item per chunk; the second chunk holds the worker until the gate opens, so
        // the third (with the bomb) is still queued when the iterator is dropped.
        let mut it = p.map_with(
            move |(i, b): (u32, Option<Bomb>)| {
                if i == 1 {
                    g.wait();
                }
                let _keep = &b;
                i
            },
            (0..4u32).map(|i| (i, (i == 2).then(|| Bomb("cancelled map item")))),
            MapOptions::default()
                .chunk_size(ChunkSize::Fixed(1))
                .lookahead(4),
        );
        let first = it.next().map(|r| r.map_err(|e| e.to_string()));
        drop(it);
        opened.open();
        first
    });
    assert_eq!(first, Some(Ok(0)));
    still_serves_and_stops(pool);
}
