//! The named conformance suite (`pool_testkit::conformance::named`) on `NatsPool`: each check
//! gets a fresh pool with a prefix of its own (its own streams, so checks do not see each
//! other's tasks) and a `NatsWorker` of that prefix on a thread of this test (support's
//! `ThreadWorker`), whose local `ProcessPool` (workers: this test binary) serves the test kit's
//! named tasks. One server for the whole run; the harness bounds the test and checks that no
//! process outlives it.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pool_core::{Executor, Future, Shutdown, ShutdownReport, Stats, SubmitError};
use pool_nats::NatsPool;
use pool_testkit::conformance::{Options, named};
use pool_testkit::{NamedTarget, Value, harness};
use support::{NatsServer, ThreadWorker};

/// A `NatsPool` and the worker that serves its prefix, stopped when this is dropped.
struct Remote {
    pool: NatsPool,
    worker: Option<ThreadWorker>,
}

/// A fresh prefix for every pool.
fn prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("conf{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// What a `ThreadWorker`'s local pool runs at once.
const LOCAL_WORKERS: usize = 2;

impl Remote {
    /// A worker holding at most `workers` tasks at once, and a pool, both on a new prefix.
    fn start(url: &str, workers: usize) -> Self {
        assert!(
            workers <= LOCAL_WORKERS,
            "a ThreadWorker runs {LOCAL_WORKERS} tasks at once, not {workers}"
        );
        let prefix = prefix();
        let worker = ThreadWorker::start(url, &prefix, &named::TASKS, workers);
        let pool = NatsPool::builder()
            .url(url)
            .prefix(prefix)
            .shutdown_timeout(Duration::from_secs(15))
            .build()
            .expect("a NatsPool on the test's server");
        Remote {
            pool,
            worker: Some(worker),
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            if std::thread::panicking() {
                drop(worker); // stops it without judging how it ended
            } else {
                worker.stop(); // and panics if it failed
            }
        }
    }
}

impl Executor for Remote {
    fn shutdown(&self, mode: Shutdown) -> ShutdownReport {
        self.pool.shutdown(mode)
    }

    fn stats(&self) -> Stats {
        self.pool.stats()
    }
}

impl NamedTarget for Remote {
    fn submit_named<A: Value, R: Value>(
        &self,
        name: &str,
        arg: A,
    ) -> Result<Future<R>, SubmitError<A>> {
        self.pool.submit_named(name, arg)
    }
}

#[test]
fn nats_pool_passes_the_named_suite() {
    let guard = harness::start("named suite on NatsPool", Duration::from_secs(300));
    let server = NatsServer::start();
    let url = server.url();
    let opts = Options::new()
        .workers(LOCAL_WORKERS)
        .bound(Duration::from_secs(10));
    let report = named::run_named("NatsPool", opts, move |workers| {
        Remote::start(&url, workers)
    });
    println!("{report}");
    assert_eq!(
        report.results.len(),
        named::check_names().len(),
        "every check ran"
    );
    report.assert_passed();
    drop(server);
    guard.finish();
}
