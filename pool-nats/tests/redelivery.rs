//! A worker process SIGKILLed while it holds tasks: the server delivers them again after
//! `ack_wait`, another worker runs them, and the caller resolves each task exactly once.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use pool_core::{Executor, Shutdown};
use pool_nats::{NatsPool, NatsWorker};
use pool_process::ProcessPool;
use pool_testkit::{harness, leaks};

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(300));
    x * x
}

pool_process::named_task!("slow-square", slow_square);

const WORKER_ENV: &str = "POOL_NATS_TEST_WORKER_URL";

/// Not a test of its own: the body of a worker process this file's test starts (the test
/// binary again, with the server's URL in its environment).
#[test]
fn worker_process() {
    let Ok(url) = std::env::var(WORKER_ENV) else {
        return;
    };
    let local = ProcessPool::builder()
        .max_workers(2)
        .named_tasks(["slow-square"])
        .build()
        .unwrap();
    let never = AtomicBool::new(false);
    NatsWorker::new(local)
        .url(url)
        .prefix("r")
        .run_until(&never)
        .unwrap();
}

fn spawn_worker(url: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "worker_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WORKER_ENV, url)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGKILLs a worker process; its own workers (its process pool, its fork server) must die
/// with it. They were adopted by this test (a subreaper): reaped here.
fn kill_worker(mut worker: Child) {
    let family: Vec<u32> = leaks::descendants_of(worker.id())
        .iter()
        .map(|p| p.pid)
        .collect();
    worker.kill().unwrap();
    worker.wait().unwrap();
    if let Err(left) = leaks::wait_gone(&family, Duration::from_secs(5)) {
        panic!("the killed worker's own processes outlived it: {left:?}");
    }
    harness::reap(&family);
}

#[test]
fn tasks_of_a_killed_worker_finish_elsewhere_and_resolve_once() {
    if std::env::var(WORKER_ENV).is_ok() {
        return;
    }
    let guard = harness::start("nats_redelivery", Duration::from_secs(120));
    let server = support::NatsServer::start();
    let pool = NatsPool::builder()
        .url(server.url())
        .prefix("r")
        .ack_wait(Duration::from_secs(2))
        .build()
        .unwrap();
    let doomed = spawn_worker(&server.url());

    // The first worker takes tasks (two at a time) until it is killed.
    let futs: Vec<_> = (0..12u64)
        .map(|i| pool.submit_named::<u64, u64>("slow-square", i).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pool.stats().completed < 2 {
        assert!(Instant::now() < deadline, "the first worker never answered");
        std::thread::sleep(Duration::from_millis(10));
    }
    kill_worker(doomed); // holding up to two tasks
    let survivor = spawn_worker(&server.url());

    for (i, f) in futs.into_iter().enumerate() {
        let i = i as u64;
        let got = f.result_timeout(Duration::from_secs(60)).ok();
        assert_eq!(got, Some(Ok(i * i)), "task {i}");
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.completed, stats.failed),
        (12, 12, 0)
    );
    pool.shutdown(Shutdown::Wait);
    kill_worker(survivor);
    drop(pool);
    drop(server);
    guard.finish();
}
