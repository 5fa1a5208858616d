//! The conformance suite on `ThreadPool`.

use pool_testkit::conformance::{self, Options};
use pool_thread::ThreadPool;
use std::time::Duration;

#[test]
fn thread_pool_passes_conformance() {
    let report = conformance::run(
        "ThreadPool",
        Options::new().workers(2).bound(Duration::from_secs(10)),
        |workers| {
            ThreadPool::builder()
                .max_workers(workers)
                .build()
                .expect("valid thread pool")
        },
    );
    println!("{report}");
    report.assert_passed();
}
