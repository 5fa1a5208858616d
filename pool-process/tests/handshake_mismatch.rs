//! A worker that is not the identical build is refused at the handshake, with a clear error,
//! before any task is sent to it.

mod support;

use std::time::Duration;

use pool_core::{Executor, Shutdown, TaskError};
use pool_process::ProcessPool;

fn never(_: ()) -> u32 {
    7
}

/// The error the first task gets from a pool whose workers cannot start: the submit is
/// refused, or the task fails pending; either way it must not succeed.
fn first_task_error(pool: &ProcessPool) -> TaskError {
    match pool.submit(never, ()) {
        Ok(f) => f.result().unwrap_err(),
        Err(e) => e.to_task_error(),
    }
}

/// Shut the pool down, then check that no descriptor is left.
fn close(pool: ProcessPool, guard: support::Guard) {
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[]);
}

#[test]
fn a_different_executable_is_a_clear_start_error() {
    let guard = support::start("handshake", Duration::from_secs(60));
    let dir = support::TempDir::new("handshake");
    // A byte-for-byte copy is a different file: a different build identity.
    let copy = dir.path().join("copy-of-test-binary");
    std::fs::copy(std::env::current_exe().unwrap(), &copy).unwrap();
    let pool = ProcessPool::builder()
        .max_workers(1)
        .worker_program(&copy)
        .max_start_failures(1)
        .build()
        .unwrap();
    let err = first_task_error(&pool);
    let text = err.to_string();
    assert!(matches!(err, TaskError::Broken(_)), "{err:?}");
    assert!(text.contains("different executable"), "{text}");
    assert!(text.contains("identical build"), "{text}");
    // Later submits are refused with the same cause.
    let later = pool.submit(never, ()).map(|f| f.result());
    assert!(matches!(later, Err(_) | Ok(Err(TaskError::Broken(_)))));
    close(pool, guard);
}

#[test]
fn a_worker_that_dies_at_start_again_and_again_breaks_the_pool() {
    let guard = support::start("start_failures", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(2)
        .worker_program("/bin/false")
        .max_start_failures(3)
        .build()
        .unwrap();
    let err = first_task_error(&pool);
    assert!(matches!(err, TaskError::Broken(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("exit code 1"), "{text}");
    assert!(pool.stats().start_failures >= 3, "{:?}", pool.stats());
    close(pool, guard);
}

#[test]
fn a_worker_too_slow_to_answer_the_handshake_is_a_start_failure() {
    let guard = support::start("start_timeout", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(1)
        .start_timeout(Duration::from_micros(1))
        .max_start_failures(2)
        .build()
        .unwrap();
    let err = first_task_error(&pool);
    assert!(matches!(err, TaskError::Broken(_)), "{err:?}");
    assert!(err.to_string().contains("in time"), "{err}");
    close(pool, guard);
}
