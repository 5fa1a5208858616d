//! Errors that say what happened: a server that cannot be reached, a task larger than the
//! server accepts, a task stream deleted under a running pool, a task no worker registers.

mod support;

use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use pool_core::{Executor, Shutdown, SubmitErrorKind, TaskError};
use pool_nats::{NatsPool, NatsWorker};
use pool_process::ProcessPool;
use pool_testkit::harness;
use support::{NatsServer, ThreadWorker};

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_server_is_named_on_both_sides() {
    let guard = harness::start("nats_unreachable", Duration::from_secs(60));
    let url = format!("nats://127.0.0.1:{}", closed_port());
    let started = Instant::now();
    let e = NatsPool::builder()
        .url(&url)
        .connect_timeout(Duration::from_secs(1))
        .build()
        .err()
        .expect("no server there");
    let text = e.to_string();
    assert!(text.contains("cannot reach the NATS server at"), "{text}");
    assert!(text.contains(&url), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded by connect_timeout"
    );

    let local = ProcessPool::builder()
        .max_workers(1)
        .named_tasks(["slow-square"])
        .build()
        .unwrap();
    let stop = AtomicBool::new(false);
    let e = NatsWorker::new(local.clone())
        .url(&url)
        .connect_timeout(Duration::from_secs(1))
        .run_until(&stop)
        .unwrap_err();
    assert!(
        e.contains("cannot reach the NATS server at") && e.contains(&url),
        "{e}"
    );
    local.shutdown(Shutdown::Wait);
    drop(local);
    guard.finish();
}

#[test]
fn a_task_over_max_payload_is_refused_at_submit_and_handed_back() {
    let guard = harness::start("nats_too_large", Duration::from_secs(60));
    let server = NatsServer::start();
    let pool = NatsPool::builder()
        .url(server.url())
        .prefix("big")
        .build()
        .unwrap();
    let arg = vec![7u8; 2 << 20]; // the server's default max_payload is 1 MiB
    let e = pool
        .submit_named::<Vec<u8>, u64>("slow-square", arg)
        .expect_err("refused");
    match e.kind() {
        SubmitErrorKind::Encode(c) => assert!(c.message.contains("max_payload"), "{c}"),
        other => panic!("expected a size refusal, got {other}"),
    }
    assert_eq!(e.into_task().map(|a| a.len()), Some(2 << 20));
    assert_eq!(pool.stats().submitted, 0);
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    drop(server);
    guard.finish();
}

#[test]
fn a_deleted_task_stream_and_an_unregistered_task_are_named() {
    let guard = harness::start("nats_missing", Duration::from_secs(120));
    let server = NatsServer::start();
    let worker = ThreadWorker::start(&server.url(), "m", &["slow-square"], 2);
    let pool = NatsPool::builder()
        .url(server.url())
        .prefix("m")
        .build()
        .unwrap();

    // A name the worker does not serve: the error says which worker and what it serves.
    let e = pool
        .submit_named::<u64, u64>("cube", 2)
        .unwrap()
        .result_timeout(Duration::from_secs(30))
        .ok()
        .unwrap()
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("no named task \"cube\""), "{text}");
    assert!(
        text.contains("on worker") && text.contains("slow-square"),
        "{text}"
    );

    // Someone deletes the task stream under the running pool.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        js.delete_stream("M_TASKS").await.unwrap();
    });
    drop(rt);
    let e = pool
        .submit_named::<u64, u64>("slow-square", 3)
        .unwrap()
        .result_timeout(Duration::from_secs(30))
        .ok()
        .unwrap()
        .unwrap_err();
    match &e {
        TaskError::Broken(why) => {
            let why = why.to_string();
            assert!(
                why.contains("M_TASKS") && why.contains("does not exist"),
                "{why}"
            );
        }
        other => panic!("expected the missing stream named, got {other:?}"),
    }
    pool.shutdown(Shutdown::Wait);
    drop(worker);
    drop(pool);
    drop(server);
    guard.finish();
}
