//! The named suite on `ProcessPool` (workers: this test binary, re-executed), once per
//! transport, each run bounded by the harness's watchdog and followed by its leak check.

use std::time::Duration;

use pool_process::{ProcessPool, TransportKind};
use pool_testkit::conformance::{Options, named};
use pool_testkit::harness;

fn run_over(transport: TransportKind) {
    let guard = harness::start(
        &format!("named suite on ProcessPool over {transport:?}"),
        Duration::from_secs(300),
    );
    let report = named::run_named(
        &format!("ProcessPool over {transport:?} (named tasks)"),
        Options::new().workers(2).bound(Duration::from_secs(10)),
        move |workers| {
            ProcessPool::builder()
                .transport(transport)
                .max_workers(workers)
                .named_tasks(named::TASKS)
                .build()
                .expect("a named process pool")
        },
    );
    println!("{report}");
    report.assert_passed();
    assert_eq!(
        report.results.len(),
        named::check_names().len(),
        "every check ran"
    );
    guard.finish();
}

#[test]
fn named_suite_over_pipes() {
    run_over(TransportKind::Pipe);
}

#[test]
fn named_suite_over_local_sockets() {
    run_over(TransportKind::LocalSocket);
}

#[test]
fn named_suite_over_shared_memory() {
    run_over(TransportKind::Shm);
}
