//! A failing initializer breaks the pool with its cause; the self-test reports initializer
//! and finalizer errors.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::bounded;
use pool_core::{Executor, Shutdown, TaskError};
use pool_thread::{SelfTestError, ThreadPool};

#[test]
fn failing_initializer_breaks_pending_and_later_submits() {
    let pool = ThreadPool::builder()
        .max_workers(2)
        .initializer(|| Err::<(), _>("database unreachable"))
        .build()
        .unwrap();
    // The pool may break while we are still submitting: then the submit itself says so.
    let results: Vec<Result<i32, TaskError>> = (0..5)
        .map(|i| match pool.submit(move || i) {
            Ok(f) => bounded(10, move || f.result()),
            Err(e) => Err(e.to_task_error()),
        })
        .collect();
    for r in results {
        match r {
            Err(TaskError::Broken(r)) => {
                assert!(r.as_str().contains("database unreachable"), "{r}")
            }
            other => panic!("expected Broken, got {other:?}"),
        }
    }
    let err = pool.submit(|| 1).unwrap_err();
    assert!(err.is_broken());
    assert!(
        err.to_string()
            .contains("initializer failed: database unreachable"),
        "{err}"
    );
    assert!(pool.is_broken().is_some());
}

#[test]
fn panicking_initializer_breaks_the_pool_too() {
    let pool = ThreadPool::builder()
        .initializer(|| -> Result<(), String> { panic!("init exploded") })
        .build()
        .unwrap();
    let f = pool.submit(|| 1).unwrap();
    let err = bounded(10, move || f.result()).unwrap_err();
    assert!(err.to_string().contains("init exploded"), "{err}");
}

#[test]
fn initializer_and_finalizer_run_per_worker() {
    let inits = Arc::new(AtomicUsize::new(0));
    let fins = Arc::new(AtomicUsize::new(0));
    let (i2, f2) = (inits.clone(), fins.clone());
    let pool = ThreadPool::builder()
        .max_workers(1)
        .max_tasks_per_worker(2)
        .initializer(move || {
            i2.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(())
        })
        .finalizer(move || {
            f2.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>("flush failed")
        })
        .build()
        .unwrap();
    let futs: Vec<_> = (0..4).map(|i| pool.submit(move || i).unwrap()).collect();
    bounded(10, move || pool_core::collect(futs).unwrap());
    let p = pool.clone();
    let report = bounded(10, move || p.shutdown(Shutdown::Wait));
    assert_eq!(inits.load(Ordering::SeqCst), fins.load(Ordering::SeqCst));
    assert!(inits.load(Ordering::SeqCst) >= 2);
    assert!(
        report
            .finalizer_errors
            .iter()
            .any(|e| e.contains("flush failed")),
        "{report:?}"
    );
}

#[test]
fn self_test_reports_initializer_and_finalizer_errors() {
    let ok = ThreadPool::builder().initializer(|| Ok::<_, String>(()));
    assert_eq!(ThreadPool::test(&ok), Ok(()));
    let bad_init = ThreadPool::builder().initializer(|| Err::<(), _>("no GPU"));
    assert_eq!(
        ThreadPool::test(&bad_init),
        Err(SelfTestError::Initializer("no GPU".into()))
    );
    let bad_fin = ThreadPool::builder().finalizer(|| Err::<(), _>("disk full"));
    assert_eq!(
        ThreadPool::test(&bad_fin),
        Err(SelfTestError::Finalizer("disk full".into()))
    );
    let bad_cfg = ThreadPool::builder().max_workers(0);
    assert!(matches!(
        ThreadPool::test(&bad_cfg),
        Err(SelfTestError::Config(_))
    ));
    // The builder is still usable after the test.
    let pool = ok.build().unwrap();
    assert_eq!(pool.submit(|| 1).unwrap().result(), Ok(1));
}
