//! The server SIGKILLed and restarted in the middle of a run: every task resolves exactly
//! once, with its right result. A task running longer than `ack_wait` is kept by its
//! worker's heartbeats and runs once.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use pool_core::{Executor, Shutdown};
use pool_nats::NatsPool;
use pool_testkit::harness;
use support::{NatsServer, ThreadWorker};

/// `x * x` after 5 ms.
fn square_5ms(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(5));
    x * x
}

/// Records a run in `dir`, then takes `ms` milliseconds.
fn long(arg: (String, u64)) -> u64 {
    let (dir, ms) = arg;
    let run = format!("run-{}-{:?}", std::process::id(), std::time::Instant::now());
    std::fs::write(Path::new(&dir).join(run), b"").unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

pool_process::named_task!("square-5ms", square_5ms);
pool_process::named_task!("long", long);

const TASKS: [&str; 2] = ["square-5ms", "long"];

#[test]
fn a_server_killed_and_restarted_mid_run_loses_no_task_and_repeats_none() {
    let guard = harness::start("nats_server_restart", Duration::from_secs(240));
    let mut server = NatsServer::start();
    let worker = ThreadWorker::start(&server.url(), "o", &TASKS, 2);
    let pool = NatsPool::builder()
        .url(server.url())
        .prefix("o")
        .ack_wait(Duration::from_secs(2))
        .build()
        .unwrap();
    const N: u64 = 400;
    let futs: Vec<_> = (0..N)
        .map(|i| pool.submit_named::<u64, u64>("square-5ms", i).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while pool.stats().completed < 50 {
        assert!(Instant::now() < deadline, "no progress before the outage");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    std::thread::sleep(Duration::from_secs(1));
    server.restart();

    for (i, f) in futs.into_iter().enumerate() {
        let i = i as u64;
        let got = f.result_timeout(Duration::from_secs(120)).ok();
        assert_eq!(got, Some(Ok(i * i)), "task {i}");
    }
    let stats = pool.stats();
    assert_eq!(
        (
            stats.submitted,
            stats.completed,
            stats.failed,
            stats.pending
        ),
        (N, N, 0, 0)
    );
    pool.shutdown(Shutdown::Wait);
    worker.stop();
    drop(pool);
    drop(server);
    guard.finish();
}

#[test]
fn heartbeats_keep_a_task_longer_than_ack_wait_from_running_twice() {
    let guard = harness::start("nats_heartbeats", Duration::from_secs(120));
    let dir = std::env::temp_dir().join(format!("pool-nats-long-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let server = NatsServer::start();
    // Two slots: a redelivery would find a free one on this very worker.
    let worker = ThreadWorker::start(&server.url(), "h", &TASKS, 2);
    let pool = NatsPool::builder()
        .url(server.url())
        .prefix("h")
        .ack_wait(Duration::from_millis(600))
        .build()
        .unwrap();
    let arg = (dir.to_string_lossy().into_owned(), 3_000);
    let f = pool
        .submit_named::<(String, u64), u64>("long", arg)
        .unwrap();
    assert_eq!(
        f.result_timeout(Duration::from_secs(60)).ok(),
        Some(Ok(3_000))
    );
    pool.shutdown(Shutdown::Wait);
    worker.stop();
    let runs = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        runs, 1,
        "the task ran {runs} times in 3 s with ack_wait 600 ms"
    );
    drop(pool);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    guard.finish();
}
