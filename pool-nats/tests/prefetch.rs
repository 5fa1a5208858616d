//! Tasks asked for ahead: a worker whose tasks are short holds the next one while its slot
//! is busy, keeps it alive past `ack_wait` and hands it back when it stops; a worker whose
//! tasks are long leaves the next one in the server for others.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pool_core::{Executor, Shutdown};
use pool_nats::NatsPool;
use pool_testkit::harness;
use support::{NatsServer, ThreadWorker, wait_for_file};

/// Writes `<dir>/started`, waits for `<dir>/open` (60 s at most), then answers 1.
fn gate(dir: String) -> u32 {
    let dir = Path::new(&dir);
    std::fs::write(dir.join("started"), b"").unwrap();
    for _ in 0..12_000 {
        if dir.join("open").exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    1
}

/// Records that it ran (a file in `dir`), answers 2.
fn mark(dir: String) -> u32 {
    let name = format!("ran-{}-{:?}", std::process::id(), Instant::now());
    std::fs::write(Path::new(&dir).join(name), b"").unwrap();
    2
}

pool_process::named_task!("gate", gate);
pool_process::named_task!("mark", mark);

const TASKS: [&str; 3] = ["gate", "mark", "slow-square"];
const BOUND: Duration = Duration::from_secs(30);

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("pool-nats-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn dir(root: &Path, name: &str) -> String {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d.to_string_lossy().into_owned()
}

/// The workers' consumer of `prefix`: (tasks delivered and not acknowledged, tasks waiting
/// in the stream).
fn consumer_counts(url: &str, prefix: &str) -> (usize, u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let work = async {
            let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
            let stream = js
                .get_stream(format!("{}_TASKS", prefix.to_uppercase()))
                .await
                .unwrap();
            let mut consumer: async_nats::jetstream::consumer::PullConsumer =
                stream.get_consumer("workers").await.unwrap();
            let info = consumer.info().await.unwrap();
            (info.num_ack_pending, info.num_pending)
        };
        tokio::time::timeout(BOUND, work)
            .await
            .expect("the server answers")
    })
}

#[test]
fn a_task_held_ahead_outlives_ack_wait_and_is_handed_back_when_its_worker_stops() {
    let guard = harness::start("nats_prefetch_hand_back", Duration::from_secs(120));
    let root = scratch("prefetch");
    let server = NatsServer::start();
    let url = server.url();
    // One task at a time, one asked for ahead (the default) while tasks are short.
    let first = ThreadWorker::start(&url, "h", &TASKS, 1);
    let pool = NatsPool::builder()
        .url(&url)
        .prefix("h")
        .ack_wait(Duration::from_millis(600))
        .build()
        .unwrap();

    let held = dir(&root, "held");
    let g = pool
        .submit_named::<String, u32>("gate", held.clone())
        .unwrap();
    wait_for_file(&Path::new(&held).join("started"), BOUND);
    let marks = dir(&root, "marks");
    let m = pool
        .submit_named::<String, u32>("mark", marks.clone())
        .unwrap();
    // Past ack_wait twice over, the worker still holds both: the one running and the one
    // it asked for ahead, kept alive by heartbeats.
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(
        consumer_counts(&url, "h"),
        (2, 0),
        "the worker holds the running task and the one asked for ahead"
    );
    assert!(!m.is_done());

    // Stopping, the worker hands the task it holds ahead back at once (it finishes the one
    // it runs, still held at its gate): another worker runs it.
    let stopping = std::thread::spawn(move || first.stop());
    let second = ThreadWorker::start(&url, "h", &TASKS, 1);
    assert_eq!(
        m.result_timeout(BOUND).ok(),
        Some(Ok(2)),
        "the task held ahead was not handed back to the other worker"
    );
    assert!(!g.is_done(), "the gate is still closed");
    std::fs::write(Path::new(&held).join("open"), b"").unwrap();
    assert_eq!(g.result_timeout(BOUND).ok(), Some(Ok(1)));
    stopping.join().unwrap();
    let runs = std::fs::read_dir(&marks).unwrap().count();
    assert_eq!(runs, 1, "the task held ahead ran {runs} times");
    let stats = pool.stats();
    assert_eq!((stats.completed, stats.failed), (2, 0), "{stats:?}");

    pool.shutdown(Shutdown::Wait);
    second.stop();
    drop(pool);
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
    guard.finish();
}

#[test]
fn a_worker_running_long_tasks_leaves_the_next_one_in_the_server() {
    let guard = harness::start("nats_prefetch_long", Duration::from_secs(120));
    let root = scratch("no-prefetch");
    let server = NatsServer::start();
    let url = server.url();
    let worker = ThreadWorker::start(&url, "l", &TASKS, 1);
    let pool = NatsPool::builder().url(&url).prefix("l").build().unwrap();

    // Two tasks of 300 ms: the worker's recent runs are long now.
    for x in [2u64, 3] {
        let f = pool.submit_named::<u64, u64>("slow-square", x).unwrap();
        assert_eq!(f.result_timeout(BOUND).ok(), Some(Ok(x * x)));
    }
    // The requests it sent while its runs were short have expired.
    std::thread::sleep(Duration::from_millis(1_500));
    let held = dir(&root, "held");
    let g = pool
        .submit_named::<String, u32>("gate", held.clone())
        .unwrap();
    wait_for_file(&Path::new(&held).join("started"), BOUND);
    let marks = dir(&root, "marks");
    let m = pool
        .submit_named::<String, u32>("mark", marks.clone())
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        consumer_counts(&url, "l"),
        (1, 1),
        "a worker whose tasks are long asked for a task ahead"
    );

    std::fs::write(Path::new(&held).join("open"), b"").unwrap();
    assert_eq!(g.result_timeout(BOUND).ok(), Some(Ok(1)));
    assert_eq!(m.result_timeout(BOUND).ok(), Some(Ok(2)));

    pool.shutdown(Shutdown::Wait);
    worker.stop();
    drop(pool);
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
    guard.finish();
}
