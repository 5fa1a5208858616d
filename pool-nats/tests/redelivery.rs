//! Worker processes: a task of one SIGKILLed while holding tasks is delivered again after
//! `ack_wait`, runs on another, and resolves exactly once at the caller; tasks spread over
//! several workers; a poison task (killing every worker that takes it) is given up after
//! `max_deliver` deliveries without blocking the others.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use pool_core::{Executor, Shutdown, TaskError};
use pool_nats::NatsPool;
use pool_testkit::harness;
use support::worker::{WorkerProcess, is_worker_process, serve_if_asked};

/// Not a test of its own: the body of the worker processes this file's tests start.
#[test]
fn worker_process() {
    serve_if_asked();
}

#[test]
fn tasks_of_a_killed_worker_finish_elsewhere_and_resolve_once() {
    if is_worker_process() {
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
    let doomed = WorkerProcess::spawn(&server.url(), "r");

    // The first worker takes tasks (two at a time) until it is killed.
    let futs: Vec<_> = (0..12u64)
        .map(|i| pool.submit_named::<u64, u64>("slow-square", i).unwrap())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pool.stats().completed < 2 {
        assert!(Instant::now() < deadline, "the first worker never answered");
        std::thread::sleep(Duration::from_millis(10));
    }
    doomed.kill(); // holding up to two tasks
    let survivor = WorkerProcess::spawn(&server.url(), "r");

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
    survivor.kill();
    drop(pool);
    drop(server);
    guard.finish();
}

#[test]
fn tasks_spread_over_several_worker_processes() {
    if is_worker_process() {
        return;
    }
    let guard = harness::start("nats_several_workers", Duration::from_secs(120));
    let server = support::NatsServer::start();
    let pool = NatsPool::builder()
        .url(server.url())
        .prefix("s")
        .build()
        .unwrap();
    let workers: Vec<_> = (0..3)
        .map(|_| WorkerProcess::spawn(&server.url(), "s"))
        .collect();
    let pids: BTreeSet<u32> = workers.iter().map(WorkerProcess::pid).collect();

    // 60 tasks of 50 ms: one worker (two at a time) cannot take them all before the others
    // ask.
    let futs: Vec<_> = (0..60)
        .map(|_| pool.submit_named::<u64, u32>("host-of", 50).unwrap())
        .collect();
    let mut hosts = BTreeSet::new();
    for f in futs {
        let host = f
            .result_timeout(Duration::from_secs(60))
            .ok()
            .unwrap()
            .unwrap();
        assert!(
            pids.contains(&host),
            "answered by {host}, not one of {pids:?}"
        );
        hosts.insert(host);
    }
    assert!(hosts.len() >= 2, "all 60 tasks ran on {hosts:?}");
    assert_eq!(pool.stats().completed, 60);
    pool.shutdown(Shutdown::Wait);
    drop(workers);
    drop(pool);
    drop(server);
    guard.finish();
}

#[test]
fn a_poison_task_is_given_up_after_max_deliver_and_blocks_nothing() {
    if is_worker_process() {
        return;
    }
    let guard = harness::start("nats_poison", Duration::from_secs(120));
    let server = support::NatsServer::start();
    let pool = NatsPool::builder()
        .url(server.url())
        .prefix("p")
        .ack_wait(Duration::from_secs(1))
        .max_deliver(2)
        .build()
        .unwrap();
    let poison = pool.submit_named::<u64, u64>("doom", 0).unwrap();
    let others: Vec<_> = (0..6u64)
        .map(|i| pool.submit_named::<u64, u64>("slow-square", i).unwrap())
        .collect();

    // Each of the first two workers takes the poison task and dies of it. They hold one task
    // at a time: a worker's death is charged to every task it holds (which one killed it
    // cannot be known), and this test is about the poison task alone.
    for _ in 0..2 {
        WorkerProcess::spawn_holding(&server.url(), "p", 1).wait_death(Duration::from_secs(30));
    }
    // The third delivery is answered without running it.
    let last = WorkerProcess::spawn_holding(&server.url(), "p", 1);
    match poison.result_timeout(Duration::from_secs(30)).ok().unwrap() {
        Err(TaskError::Poison { deliveries, task }) => {
            assert_eq!(deliveries, 2, "{task}");
            assert!(task.contains("doom"), "{task}");
        }
        other => panic!("expected the poison task given up, got {other:?}"),
    }
    let message = TaskError::Poison {
        task: "t".into(),
        deliveries: 2,
    }
    .to_string();
    assert!(message.contains("after 2 deliveries"), "{message}");
    for (i, f) in others.into_iter().enumerate() {
        let i = i as u64;
        assert_eq!(
            f.result_timeout(Duration::from_secs(30)).ok(),
            Some(Ok(i * i))
        );
    }
    pool.shutdown(Shutdown::Wait);
    last.kill();
    drop(pool);
    drop(server);
    guard.finish();
}
