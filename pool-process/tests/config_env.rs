//! Per-pool environment: set and removed before the worker starts; the worker-mode variable
//! itself never leaks into processes a task starts.

mod support;

use std::time::Duration;

use pool_core::{Executor, Shutdown};
use pool_process::ProcessPool;

fn read_env(name: String) -> Option<String> {
    std::env::var(name).ok()
}

/// What a child process of a task sees: no worker-mode variable.
fn child_env(_: ()) -> String {
    let out = std::process::Command::new("/usr/bin/env").output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn env_and_env_remove_apply_in_workers() {
    let guard = support::start("env", Duration::from_secs(60));
    assert!(
        std::env::var_os("PATH").is_some(),
        "the test expects PATH to be set"
    );
    let pool = ProcessPool::builder()
        .max_workers(1)
        .env("POOL_TEST_THREADS", "1")
        .env_remove("PATH")
        .build()
        .unwrap();
    let got = |k: &str| {
        pool.submit(read_env, k.to_string())
            .unwrap()
            .result()
            .unwrap()
    };
    assert_eq!(got("POOL_TEST_THREADS").as_deref(), Some("1"));
    assert_eq!(got("PATH"), None);
    assert_eq!(got("POOL_PROCESS_WORKER"), None);
    let env = pool.submit(child_env, ()).unwrap().result().unwrap();
    assert!(env.contains("POOL_TEST_THREADS=1"));
    assert!(!env.contains("POOL_PROCESS_WORKER"), "{env}");
    let pid = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[pid]);
}
