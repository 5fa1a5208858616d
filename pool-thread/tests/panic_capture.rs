//! Panics become `TaskError::Panicked` with message and location; the worker lives on.

mod common;

use common::bounded;
use pool_core::{Executor, TaskError};
use pool_thread::ThreadPool;

#[test]
fn panic_message_and_location_are_reported() {
    let pool = ThreadPool::builder().max_workers(1).build().unwrap();
    let f = pool
        .submit(|| -> u32 { panic!("exploded on {}", 7) })
        .unwrap();
    let err = bounded(10, move || f.result()).unwrap_err();
    let info = err.panic_info().expect("a panic").clone();
    assert_eq!(info.message, "exploded on 7");
    let loc = info.location.expect("location captured");
    assert!(loc.contains("panic_capture.rs:"), "{loc}");
    assert!(err.to_string().contains("exploded on 7"));
    // The same single worker carries on.
    let f = pool.submit(|| 1).unwrap();
    assert_eq!(bounded(10, move || f.result()), Ok(1));
    let s = pool.stats();
    assert_eq!(s.failed, 1);
    assert_eq!(s.spawned, 1, "the worker survived the panic");
}

#[test]
fn many_panics_are_never_lost() {
    let pool = ThreadPool::builder().max_workers(2).build().unwrap();
    let futs: Vec<_> = (0..200usize)
        .map(|i| {
            pool.submit(move || {
                if i.is_multiple_of(2) {
                    panic!("even {i}");
                }
                i
            })
            .unwrap()
        })
        .collect();
    let results = bounded(20, move || {
        futs.into_iter().map(|f| f.result()).collect::<Vec<_>>()
    });
    for (i, r) in results.into_iter().enumerate() {
        if i.is_multiple_of(2) {
            match r {
                Err(TaskError::Panicked(p)) => assert_eq!(p.message, format!("even {i}")),
                other => panic!("task {i}: {other:?}"),
            }
        } else {
            assert_eq!(r, Ok(i));
        }
    }
}

#[test]
fn non_string_payloads_are_described() {
    let pool = ThreadPool::builder().max_workers(1).build().unwrap();
    let f = pool.submit(|| std::panic::panic_any(42u8)).unwrap();
    let err = bounded(10, move || f.result()).unwrap_err();
    assert_eq!(
        err.panic_info().unwrap().message,
        "<non-string panic payload>"
    );
}
