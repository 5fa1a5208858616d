//! Initializers and finalizers run once per worker; a failing initializer breaks the pool
//! with its cause; a failing finalizer is reported and never hangs shutdown.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use pool_core::{Executor, Shutdown, TaskError};
use pool_process::{ProcessPool, TransportKind};

static GREETING: OnceLock<String> = OnceLock::new();

fn init_greeting(text: String) {
    GREETING
        .set(format!("{text} from {}", std::process::id()))
        .unwrap();
}

fn read_greeting(_: ()) -> Option<String> {
    GREETING.get().cloned()
}

fn init_fails(reason: String) -> Result<(), String> {
    Err(reason)
}

fn init_panics(_: ()) {
    panic!("initializer exploded");
}

fn fin_writes_pid(dir: String) -> Result<(), std::io::Error> {
    std::fs::write(format!("{dir}/{}", std::process::id()), b"finalized")
}

fn fin_fails(_: ()) -> Result<(), String> {
    Err("could not flush the cache".into())
}

#[test]
fn initializer_runs_once_in_each_worker_and_finalizer_at_clean_exit() {
    let guard = support::start("hooks_ok", Duration::from_secs(60));
    let dir = support::TempDir::new("fin");
    let pool = ProcessPool::builder()
        .max_workers(2)
        .transport(TransportKind::LocalSocket)
        .initializer(init_greeting, "hello".to_string())
        .finalizer(fin_writes_pid, dir.path().to_string_lossy().into_owned())
        .build()
        .unwrap();
    let futures: Vec<_> = (0..10)
        .map(|_| pool.submit(read_greeting, ()).unwrap())
        .collect();
    let mut pids = Vec::new();
    for f in futures {
        let g = f.result().unwrap().expect("initializer ran");
        let pid: u32 = g.strip_prefix("hello from ").unwrap().parse().unwrap();
        pids.push(pid);
    }
    pids.sort_unstable();
    pids.dedup();
    let report = pool.shutdown(Shutdown::Wait);
    assert!(report.finalizer_errors.is_empty(), "{report:?}");
    for pid in &pids {
        let written = std::fs::read_to_string(dir.path().join(pid.to_string())).unwrap();
        assert_eq!(written, "finalized");
    }
    drop(pool);
    guard.finish(&pids);
}

fn expect_broken(pool: &ProcessPool, needle: &str) {
    let err = match pool.submit(read_greeting, ()) {
        Ok(f) => f.result().unwrap_err(),
        Err(e) => e.to_task_error(),
    };
    assert!(matches!(err, TaskError::Broken(_)), "{err:?}");
    assert!(err.to_string().contains(needle), "{err}");
    // Later submits fail with the same cause.
    let later = match pool.submit(read_greeting, ()) {
        Ok(f) => f.result().unwrap_err(),
        Err(e) => e.to_task_error(),
    };
    assert!(later.to_string().contains(needle), "{later}");
}

#[test]
fn failing_initializer_breaks_the_pool_with_its_cause() {
    let guard = support::start("hooks_fail", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(2)
        .initializer(init_fails, "no GPU found".to_string())
        .build()
        .unwrap();
    expect_broken(&pool, "no GPU found");
    pool.shutdown(Shutdown::Wait);
    drop(pool);

    let pool = ProcessPool::builder()
        .max_workers(1)
        .initializer(init_panics, ())
        .build()
        .unwrap();
    expect_broken(&pool, "initializer exploded");
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[]);
}

#[test]
fn failing_finalizer_is_reported_not_fatal() {
    let guard = support::start("fin_fail", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(1)
        .finalizer(fin_fails, ())
        .build()
        .unwrap();
    let pid = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    let report = pool.shutdown(Shutdown::Wait);
    assert_eq!(report.finalizer_errors.len(), 1, "{report:?}");
    assert!(
        report.finalizer_errors[0].contains("could not flush the cache"),
        "{report:?}"
    );
    drop(pool);
    guard.finish(&[pid]);
}
