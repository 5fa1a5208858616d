//! Both pool builders offer the engine policy setters of `pool_core::engine_setters!` with
//! the same parameter types, start from the same defaults and fail `build` with the same
//! error type. Nothing is submitted: no worker starts.

use std::time::Duration;

use pool_core::{BuildError, EngineConfig, OnWorkerDeath, Rejection};
use pool_process::ProcessPool;
use pool_thread::ThreadPool;

/// Every engine policy setter, applied to either builder.
macro_rules! every_setter {
    ($builder:expr) => {
        $builder
            .name("same")
            .max_workers(3)
            .min_workers(1)
            .idle_timeout(Duration::from_secs(2))
            .idle_timeout(Some(Duration::from_secs(3)))
            .max_tasks_per_worker(7)
            .max_memory_per_worker(1 << 30)
            .task_timeout(Duration::from_secs(9))
            .on_worker_death(OnWorkerDeath::BreakPool)
            .max_start_failures(5)
            .queue_capacity(11)
            .rejection(Rejection::Reject)
            .stack_size(1 << 20)
            .record_timing(true)
    };
}

fn assert_every_setter(c: &EngineConfig) {
    assert_eq!(c.name, "same");
    assert_eq!(c.max_workers, 3);
    assert_eq!(c.min_workers, 1);
    assert_eq!(c.idle_timeout, Some(Duration::from_secs(3)));
    assert_eq!(c.max_tasks_per_worker, Some(7));
    assert_eq!(c.max_memory_per_worker, Some(1 << 30));
    assert_eq!(c.task_timeout, Some(Duration::from_secs(9)));
    assert_eq!(c.on_worker_death, OnWorkerDeath::BreakPool);
    assert_eq!(c.max_start_failures, 5);
    assert_eq!(c.queue_capacity, Some(11));
    assert_eq!(c.rejection, Rejection::Reject);
    assert_eq!(c.stack_size, Some(1 << 20));
    assert!(c.record_timing);
}

#[test]
fn both_builders_take_the_same_setters() {
    let thread = every_setter!(ThreadPool::builder());
    let process = every_setter!(ProcessPool::builder());
    assert_every_setter(thread.engine_config());
    assert_every_setter(process.engine_config());
    assert_eq!(
        format!("{:?}", thread.engine_config()),
        format!("{:?}", process.engine_config())
    );
}

#[test]
fn both_builders_start_from_the_same_defaults() {
    let thread = ThreadPool::builder();
    let process = ProcessPool::builder();
    assert_eq!(thread.engine_config().name, "pool");
    assert_eq!(process.engine_config().name, "pool-process");
    assert!(!thread.engine_config().record_timing);
    assert_eq!(
        format!("{:?}", thread.name("same").engine_config()),
        format!("{:?}", process.name("same").engine_config())
    );
    let keep = ThreadPool::builder().idle_timeout(None);
    assert_eq!(keep.engine_config().idle_timeout, None);
    let keep = ProcessPool::builder().idle_timeout(None);
    assert_eq!(keep.engine_config().idle_timeout, None);
}

#[test]
fn both_builders_fail_with_the_same_error() {
    let thread: BuildError = ThreadPool::builder()
        .name("t")
        .max_workers(0)
        .build()
        .unwrap_err();
    let process: BuildError = ProcessPool::builder()
        .name("p")
        .max_workers(0)
        .build()
        .unwrap_err();
    assert_eq!(
        thread.to_string(),
        "cannot build thread pool \"t\": invalid pool configuration: \
         max_workers must be at least 1"
    );
    assert_eq!(
        process.to_string(),
        "cannot build process pool \"p\": invalid pool configuration: \
         max_workers must be at least 1"
    );
    assert_eq!(thread.config_error(), process.config_error());
    assert_eq!((thread.name(), process.name()), ("t", "p"));
}
