//! Named tasks through a real server: a client, a worker serving a local process pool,
//! results and errors as a local pool gives them, each task resolved once.

mod support;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use pool_core::{Executor, Shutdown, TaskError};
use pool_nats::{NatsPool, NatsWorker};
use pool_process::ProcessPool;
use pool_testkit::harness;

fn square(x: u64) -> u64 {
    x * x
}

fn fail(x: u64) -> u64 {
    panic!("{x} is not welcome")
}

fn crash(_: u64) -> u64 {
    std::process::abort()
}

pool_process::named_task!("square", square);
pool_process::named_task!("fail", fail);
pool_process::named_task!("crash", crash);

/// Runs a worker on its own thread until the returned flag is set.
fn worker(url: String) -> (Arc<AtomicBool>, std::thread::JoinHandle<Result<(), String>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let local = ProcessPool::builder()
            .max_workers(2)
            .named_tasks(["square", "fail", "crash"])
            .build()
            .map_err(|e| e.to_string())?;
        let served = NatsWorker::new(local.clone())
            .url(url)
            .prefix("t")
            .run_until(&flag);
        local.shutdown(Shutdown::Wait);
        served
    });
    (stop, handle)
}

#[test]
fn named_tasks_run_on_a_remote_worker_with_the_errors_of_a_local_pool() {
    let guard = harness::start("nats_round_trip", Duration::from_secs(120));
    let server = support::NatsServer::start();
    let (stop, served) = worker(server.url());
    let pool = NatsPool::builder()
        .url(server.url())
        .prefix("t")
        .build()
        .unwrap();

    let wait = Duration::from_secs(30);
    let r = pool.submit_named::<u64, u64>("square", 12).unwrap();
    assert_eq!(r.result_timeout(wait).ok().unwrap(), Ok(144));

    let futs: Vec<_> = (0..200u64)
        .map(|i| pool.submit_named::<u64, u64>("square", i).unwrap())
        .collect();
    for (i, f) in futs.into_iter().enumerate() {
        let i = i as u64;
        assert_eq!(f.result_timeout(wait).ok().unwrap(), Ok(i * i));
    }

    match pool
        .submit_named::<u64, u64>("fail", 7)
        .unwrap()
        .result_timeout(wait)
        .ok()
        .unwrap()
    {
        Err(TaskError::Panicked(p)) => assert_eq!(p.message, "7 is not welcome"),
        other => panic!("expected the task's panic, got {other:?}"),
    }
    match pool
        .submit_named::<u64, u64>("crash", 1)
        .unwrap()
        .result_timeout(wait)
        .ok()
        .unwrap()
    {
        Err(TaskError::WorkerDied(d)) => {
            assert!(d.exit.to_string().contains("SIGABRT"), "{d}");
        }
        other => panic!("expected the worker's death, got {other:?}"),
    }
    let unknown = pool
        .submit_named::<u64, u64>("cube", 2)
        .unwrap()
        .result_timeout(wait)
        .ok()
        .unwrap()
        .unwrap_err();
    assert!(
        unknown.to_string().contains("no named task \"cube\""),
        "{unknown}"
    );

    let stats = pool.stats();
    assert_eq!(stats.submitted, 204);
    assert_eq!(stats.completed, 201);
    assert_eq!(stats.failed, 3);
    assert_eq!(pool.shutdown(Shutdown::Wait).cancelled, 0);
    // The client's answers consumer goes with it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let consumers = rt.block_on(async {
        use futures::StreamExt;
        let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
        let stream = js.get_stream("T_RESULTS").await.unwrap();
        stream.consumer_names().count().await
    });
    drop(rt);
    assert_eq!(consumers, 0, "the answers consumer outlived the shutdown");

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    served.join().unwrap().unwrap();
    drop(pool);
    drop(server);
    guard.finish();
}

#[test]
fn a_prefix_that_is_not_a_subject_token_is_refused_on_both_sides() {
    let guard = harness::start("nats_bad_prefix", Duration::from_secs(60));
    let e = NatsPool::builder()
        .prefix("a.b")
        .build()
        .err()
        .expect("refused");
    assert!(e.to_string().contains("\"a.b\" must be letters"), "{e}");
    let local = ProcessPool::builder()
        .named_tasks(["square"])
        .build()
        .unwrap();
    let stop = AtomicBool::new(false);
    let e = NatsWorker::new(local.clone())
        .prefix("")
        .run_until(&stop)
        .unwrap_err();
    assert!(e.contains("must be letters"), "{e}");
    local.shutdown(Shutdown::Wait);
    drop(local);
    guard.finish();
}
