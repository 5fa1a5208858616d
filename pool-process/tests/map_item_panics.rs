//! In a worker process too, a panicking item in `map` fails only itself, with its index; the
//! worker lives on.

mod support;

use std::time::Duration;

use pool_core::{Executor, Shutdown, TaskError};
use pool_process::ProcessPool;

fn fragile(x: u64) -> u64 {
    if x == 500 {
        panic!("item {x} is fragile");
    }
    x * 2
}

#[test]
fn one_panicking_item_fails_only_itself() {
    let guard = support::start("map_item_panics", Duration::from_secs(60));
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let got: Vec<Result<u64, TaskError>> = pool.map(fragile, 0..1000u64).collect();
    assert_eq!(got.len(), 1000);
    for (i, r) in got.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v, 2 * i as u64, "item {i}"),
            Err(TaskError::Panicked(p)) => {
                assert_eq!(i, 500, "item {i} failed: {p}");
                assert_eq!(p.item, Some(500));
                assert_eq!(p.message, "item 500 is fragile");
                let at = p.location.as_deref().unwrap_or_default();
                assert!(at.contains("map_item_panics.rs"), "located: {at:?}");
            }
            Err(e) => panic!("item {i}: {e}"),
        }
    }
    assert_eq!(got.iter().filter(|r| r.is_err()).count(), 1);
    let s = pool.stats();
    assert_eq!(s.died, 0, "no worker died for it");
    let pid = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    pool.shutdown(Shutdown::Wait);
    guard.finish(&[pid]);
}
