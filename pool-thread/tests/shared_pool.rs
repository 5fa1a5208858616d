//! `pool_thread::shared()`: one process-wide pool, reused, not shut down by users.

mod common;

use common::bounded;
use pool_core::{Executor, Shutdown};

#[test]
fn shared_is_one_pool_and_survives_shutdown_calls() {
    let a = pool_thread::shared();
    let b = pool_thread::shared();
    assert!(std::ptr::eq(a, b));
    assert_eq!(a.executor_id(), b.executor_id());
    let f = a.submit(|| 40 + 2).unwrap();
    assert_eq!(bounded(10, move || f.result()), Ok(42));
    assert_eq!(a.shutdown(Shutdown::Kill), Default::default());
    let f = b.submit(|| "still alive").unwrap();
    assert_eq!(bounded(10, move || f.result()), Ok("still alive"));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || pool_thread::shared().submit(move || i).unwrap().result())
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(bounded(10, move || h.join().unwrap()), Ok(i));
    }
}
