//! Cancelling: a pending task never runs, a running one is stopped on its worker, and a
//! shutdown that cancels removes what is queued from the server.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use pool_core::{Executor, Shutdown, TaskError};
use pool_nats::NatsPool;
use pool_testkit::{harness, leaks};
use support::{NatsServer, ThreadWorker, wait_for_file};

/// Writes `<dir>/started` (holding its pid), waits for `<dir>/open` (60 s at most), then
/// writes `<dir>/finished`.
fn gate(dir: String) -> u32 {
    let dir = Path::new(&dir);
    std::fs::write(dir.join("started"), std::process::id().to_string()).unwrap();
    for _ in 0..12_000 {
        if dir.join("open").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::write(dir.join("finished"), b"").unwrap();
    1
}

/// Records that it ran: a file in `dir`.
fn mark(dir: String) -> u32 {
    let name = format!("ran-{}", std::process::id());
    std::fs::write(Path::new(&dir).join(name), b"").unwrap();
    2
}

pool_process::named_task!("gate", gate);
pool_process::named_task!("mark", mark);

const TASKS: [&str; 3] = ["gate", "mark", "slow-square"];
const BOUND: Duration = Duration::from_secs(30);

fn dir(root: &Path, name: &str) -> String {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d.to_string_lossy().into_owned()
}

fn ran(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pool-nats-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_cancelled_pending_task_never_runs_and_a_killed_running_one_stops() {
    let guard = harness::start("nats_cancel", Duration::from_secs(120));
    let root = scratch("cancel");
    let server = NatsServer::start();
    let worker = ThreadWorker::start(&server.url(), "k", &TASKS, 1);
    let pool = NatsPool::builder()
        .url(server.url())
        .prefix("k")
        .build()
        .unwrap();

    // The worker holds one task at a time: the gate. The next task waits in the server.
    let first = dir(&root, "first");
    let g = pool
        .submit_named::<String, u32>("gate", first.clone())
        .unwrap();
    wait_for_file(&Path::new(&first).join("started"), BOUND);
    let victim = dir(&root, "victim");
    let v = pool
        .submit_named::<String, u32>("mark", victim.clone())
        .unwrap();
    assert!(v.cancel(), "a pending task can be cancelled");
    assert_eq!(
        v.result_timeout(BOUND).ok(),
        Some(Err(TaskError::Cancelled))
    );
    std::fs::write(Path::new(&first).join("open"), b"").unwrap();
    assert_eq!(g.result_timeout(BOUND).ok(), Some(Ok(1)));
    // A task submitted after the victim has run: the victim would have run before it.
    let after = pool.submit_named::<u64, u64>("slow-square", 3).unwrap();
    assert_eq!(after.result_timeout(BOUND).ok(), Some(Ok(9)));
    assert_eq!(ran(&victim), 0, "the cancelled task ran");

    // A running task killed from the caller: its worker process is stopped.
    let second = dir(&root, "second");
    let k = pool
        .submit_named::<String, u32>("gate", second.clone())
        .unwrap();
    let started = Path::new(&second).join("started");
    wait_for_file(&started, BOUND);
    let pid: u32 = std::fs::read_to_string(&started).unwrap().parse().unwrap();
    assert!(k.kill());
    assert_eq!(
        k.result_timeout(BOUND).ok(),
        Some(Err(TaskError::Cancelled))
    );
    if let Err(left) = leaks::wait_gone(&[pid], BOUND) {
        panic!("the process running the killed task lives on: {left:?}");
    }
    assert!(!Path::new(&second).join("finished").exists());
    let after = pool.submit_named::<u64, u64>("slow-square", 4).unwrap();
    assert_eq!(after.result_timeout(BOUND).ok(), Some(Ok(16)));
    let stats = pool.stats();
    assert_eq!((stats.cancelled, stats.completed), (2, 3), "{stats:?}");

    pool.shutdown(Shutdown::Wait);
    worker.stop();
    drop(pool);
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
    guard.finish();
}

#[test]
fn shutdown_cancel_pending_removes_queued_tasks_and_waits_for_running_ones() {
    let guard = harness::start("nats_shutdown_cancel", Duration::from_secs(120));
    let root = scratch("shutdown");
    let server = NatsServer::start();
    let worker = ThreadWorker::start(&server.url(), "q", &TASKS, 1);
    let pool = NatsPool::builder()
        .url(server.url())
        .prefix("q")
        .build()
        .unwrap();
    let held = dir(&root, "held");
    let g = pool
        .submit_named::<String, u32>("gate", held.clone())
        .unwrap();
    wait_for_file(&Path::new(&held).join("started"), BOUND);
    let queued = dir(&root, "queued");
    let marks: Vec<_> = (0..3)
        .map(|_| {
            pool.submit_named::<String, u32>("mark", queued.clone())
                .unwrap()
        })
        .collect();
    // The shutdown cancels the queued tasks and waits for the running one.
    let shutdown = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.shutdown(Shutdown::CancelPending))
    };
    for m in marks {
        assert_eq!(
            m.result_timeout(BOUND).ok(),
            Some(Err(TaskError::Cancelled))
        );
    }
    assert!(pool.submit_named::<u64, u64>("slow-square", 1).is_err());
    std::fs::write(Path::new(&held).join("open"), b"").unwrap();
    assert_eq!(g.result_timeout(BOUND).ok(), Some(Ok(1)));
    assert_eq!(shutdown.join().unwrap().cancelled, 3);

    // A task from another caller runs after the queued ones would have.
    let other = NatsPool::builder()
        .url(server.url())
        .prefix("q")
        .build()
        .unwrap();
    let f = other.submit_named::<u64, u64>("slow-square", 5).unwrap();
    assert_eq!(f.result_timeout(BOUND).ok(), Some(Ok(25)));
    assert_eq!(ran(&queued), 0, "a task cancelled by the shutdown ran");

    other.shutdown(Shutdown::Wait);
    worker.stop();
    drop((pool, other));
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
    guard.finish();
}
