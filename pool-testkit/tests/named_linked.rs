//! The test kit's named tasks are served by a binary that refers to no item of the test kit:
//! it names two of its tasks through `const`s, which are inlined (no symbol of the test kit is
//! referred to), and yet `named_task!`'s registrations in the library are linked in (see
//! `pool_testkit::conformance::named`, on linking).

use std::time::Duration;

use pool_core::{Executor, Shutdown};
use pool_process::ProcessPool;
use pool_testkit::conformance::named::{ECHO_STRING, SQUARE};

#[test]
fn a_binary_naming_only_the_list_serves_every_task() {
    let names = [SQUARE, ECHO_STRING];
    let pool = ProcessPool::builder()
        .max_workers(1)
        .named_tasks(names)
        .build()
        .expect("a named pool");
    // The handshake refuses a worker that lacks a declared name: a task that runs is proof
    // that this binary (the worker) registers all of them.
    let got = pool
        .submit_named::<u64, u64>(names[0], 6)
        .expect("submitted")
        .result_timeout(Duration::from_secs(60))
        .expect("resolved within a minute");
    assert_eq!(got, Ok(36));
    let echoed = pool
        .submit_named::<String, String>(names[1], "linked".to_owned())
        .expect("submitted")
        .result_timeout(Duration::from_secs(60))
        .expect("resolved within a minute");
    assert_eq!(echoed.as_deref(), Ok("linked"));
    assert_eq!(pool.shutdown(Shutdown::Wait).cancelled, 0);
}
