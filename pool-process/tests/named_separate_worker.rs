//! A separately built worker binary serves named tasks to a pool; unknown names are clear
//! errors at submit or at the handshake.

mod support;

use std::time::Duration;

use pool_core::{Executor, Shutdown, SubmitErrorKind, TaskError};
use pool_process::ProcessPool;

const WORKER: &str = env!("CARGO_BIN_EXE_pool-process-named-worker");

#[test]
fn a_separate_worker_binary_serves_named_tasks() {
    let guard = support::start("named", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(2)
        .worker_program(WORKER)
        .named_tasks(["square", "shout", "stats", "whoami", "pid"])
        .build()
        .unwrap();
    assert_eq!(
        pool.submit_named::<u64, u64>("square", 12)
            .unwrap()
            .result()
            .unwrap(),
        144
    );
    assert_eq!(
        pool.submit_named::<String, String>("shout", "hi".into())
            .unwrap()
            .result()
            .unwrap(),
        "HI!"
    );
    let (n, sum) = pool
        .submit_named::<Vec<i64>, (usize, i64)>("stats", vec![1, 2, 3, -10])
        .unwrap()
        .result()
        .unwrap();
    assert_eq!((n, sum), (4, -4));
    // It really is the other binary.
    let exe = pool
        .submit_named::<(), String>("whoami", ())
        .unwrap()
        .result()
        .unwrap();
    assert!(exe.starts_with("pool-process-named-worker"), "{exe}");

    // An undeclared name is refused at submit, naming the declared ones.
    let err = pool.submit_named::<u64, u64>("cube", 3).unwrap_err();
    assert!(matches!(err.kind(), SubmitErrorKind::Encode(_)));
    let text = err.to_task_error().to_string();
    assert!(
        text.contains("\"cube\"") && text.contains("square"),
        "{text}"
    );
    assert_eq!(err.into_task(), Some(3));

    // Closures cannot go to a different binary: refused at submit.
    let err = pool.submit(|x: u64| x + 1, 1).unwrap_err();
    assert!(
        err.to_task_error().to_string().contains("named tasks only"),
        "{err}"
    );

    let pids: Vec<u32> = (0..4)
        .map(|_| pool.submit_named::<(), u32>("pid", ()).unwrap())
        .collect::<Vec<_>>()
        .into_iter()
        .map(|f| f.result().unwrap())
        .collect();
    assert!(pids.iter().all(|p| *p != std::process::id()));
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&pids);
}

#[test]
fn a_name_the_worker_lacks_is_a_clear_handshake_error() {
    let guard = support::start("named_missing", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(1)
        .worker_program(WORKER)
        .named_tasks(["square", "cube"])
        .max_start_failures(1)
        .build()
        .unwrap();
    let err = match pool.submit_named::<u64, u64>("square", 2) {
        Ok(f) => f.result().unwrap_err(),
        Err(e) => e.to_task_error(),
    };
    assert!(matches!(err, TaskError::Broken(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("\"cube\""), "{text}");
    assert!(
        text.contains("registers") && text.contains("\"square\""),
        "{text}"
    );
    pool.shutdown(Shutdown::Wait);
    drop(pool);

    // A name registered with another codec is refused the same way.
    let pool = ProcessPool::builder()
        .max_workers(1)
        .worker_program(WORKER)
        .named_tasks(["json-square"])
        .max_start_failures(1)
        .build()
        .unwrap();
    let err = match pool.submit_named::<u64, u64>("json-square", 2) {
        Ok(f) => f.result().unwrap_err(),
        Err(e) => e.to_task_error(),
    };
    assert!(err.to_string().contains("codec"), "{err}");
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[]);
}

fn local_double(x: u32) -> u32 {
    x * 2
}
pool_process::named_task!("local-double", local_double);

#[test]
fn named_tasks_also_work_with_this_binary_as_worker() {
    let guard = support::start("named_self", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(1)
        .named_tasks(["local-double"])
        .build()
        .unwrap();
    assert_eq!(
        pool.submit_named::<u32, u32>("local-double", 21)
            .unwrap()
            .result()
            .unwrap(),
        42
    );
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[]);
}

#[path = "fixtures/xor_codec.rs"]
mod xor_codec;

#[test]
fn a_separate_worker_builds_the_pools_codec_from_its_configuration() {
    let guard = support::start("named_codec_config", Duration::from_secs(60));
    // The worker binary registers "xor-shout" with `XorJson`, whose default key is 0; the
    // pool's key reaches it, or nothing it answers would decode.
    let pool = ProcessPool::builder()
        .max_workers(1)
        .worker_program(WORKER)
        .codec(xor_codec::XorJson { key: 0x33 })
        .named_tasks(["xor-shout"])
        .build()
        .unwrap();
    let loud = pool
        .submit_named::<String, String>("xor-shout", "hey".to_string())
        .unwrap()
        .result_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("no answer in 20 s"));
    assert_eq!(loud, Ok("HEY!".to_string()));
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[]);
}
