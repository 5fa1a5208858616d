//! Dropping a pool never waits for a running task (only, briefly, for idle workers to stop:
//! `lifecycle_drop_reaps.rs`): queued tasks are cancelled, the running one finishes in the
//! background and its worker then exits — none is left behind.

mod support;

use std::time::{Duration, Instant};

use pool_core::TaskError;
use pool_process::ProcessPool;

/// Reports its pid through a file, then works for a while.
fn slow(path: String) -> u32 {
    std::fs::write(&path, std::process::id().to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    7
}

#[test]
fn dropping_a_busy_pool_does_not_wait_and_leaves_no_worker() {
    let guard = support::start("drop", Duration::from_secs(60));
    let dir = support::TempDir::new("drop");
    let file = dir.path().join("pid");
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let running = pool
        .submit(slow, file.to_string_lossy().into_owned())
        .unwrap();
    let queued = pool.submit(support::worker_pid, ()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid: u32 = loop {
        if let Ok(s) = std::fs::read_to_string(&file)
            && let Ok(p) = s.trim().parse()
        {
            break p;
        }
        assert!(Instant::now() < deadline, "the task never started");
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(pool);
    // Drop did not wait for the running task.
    assert!(!running.is_done(), "drop waited for the running task");
    match queued.result_timeout(Duration::from_secs(20)) {
        Ok(Err(TaskError::Cancelled | TaskError::Shutdown)) => {}
        Ok(other) => panic!("the queued task should not run after drop: {other:?}"),
        Err(_) => panic!("the queued future hangs"),
    }
    match running.result_timeout(Duration::from_secs(20)) {
        Ok(r) => assert!(matches!(r, Ok(7) | Err(_))),
        Err(_) => panic!("the running future hangs"),
    }
    support::assert_gone(&[pid], Duration::from_secs(10));
    guard.finish(&[pid]);
}
