//! Submitting functions and closures, map, and panics — with no setup call anywhere.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use pool_core::{Executor, Shutdown, TaskError};
use pool_process::ProcessPool;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Point {
    x: i64,
    y: i64,
    label: String,
}

fn mirror(p: Point) -> Point {
    Point {
        x: -p.x,
        y: -p.y,
        label: p.label.chars().rev().collect(),
    }
}

#[test]
fn fn_items_and_closures_round_trip() {
    let guard = support::start("round_trip", Duration::from_secs(60));
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let p = Point {
        x: 3,
        y: -4,
        label: "abc".into(),
    };
    assert_eq!(
        pool.submit(mirror, p).unwrap().result().unwrap(),
        Point {
            x: -3,
            y: 4,
            label: "cba".into()
        }
    );
    let len = pool
        .submit(|s: String| s.len() as u64, "hello".to_string())
        .unwrap();
    assert_eq!(len.result().unwrap(), 5);
    // The worker is another process.
    let pid = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    assert_ne!(pid, std::process::id());
    let futures: Vec<_> = (0..200u64)
        .map(|i| pool.submit(support::slow_double, i).unwrap())
        .collect();
    for (i, f) in futures.into_iter().enumerate() {
        assert_eq!(f.result().unwrap(), 2 * i as u64);
    }
    let pids: BTreeSet<u32> = (0..20)
        .map(|_| pool.submit(support::worker_pid, ()).unwrap())
        .collect::<Vec<_>>()
        .into_iter()
        .map(|f| f.result().unwrap())
        .collect();
    assert!(!pids.is_empty() && pids.len() <= 2, "{pids:?}");
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    let mut all = pids.into_iter().collect::<Vec<_>>();
    all.push(pid);
    guard.finish(&all);
}

#[test]
fn map_keeps_order_over_many_items() {
    let guard = support::start("map", Duration::from_secs(60));
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let out: Vec<u64> = pool
        .map(|x: u64| x * 3 + 1, 0..10_000u64)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(out, (0..10_000u64).map(|x| x * 3 + 1).collect::<Vec<_>>());
    // The provided trait method works the same.
    let all = pool
        .map_all(|s: String| s.to_uppercase(), ["a", "b"].map(String::from))
        .unwrap();
    assert_eq!(all, ["A", "B"]);
    let pids: Vec<u32> = pool
        .map(support::worker_pid, vec![(); 8])
        .map(Result::unwrap)
        .collect();
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&pids);
}

fn explode(n: u32) -> u32 {
    if n == 13 {
        panic!("unlucky number {n}");
    }
    n
}

#[test]
fn panics_come_back_with_message_and_location_every_time() {
    let guard = support::start("panics", Duration::from_secs(60));
    let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    let futures: Vec<_> = (0..20).map(|_| pool.submit(explode, 13).unwrap()).collect();
    let ok = pool.submit(explode, 12).unwrap();
    for f in futures {
        match f.result() {
            Err(TaskError::Panicked(p)) => {
                assert_eq!(p.message, "unlucky number 13");
                let loc = p.location.expect("location");
                assert!(loc.contains("submit_round_trip.rs"), "{loc}");
            }
            other => panic!("expected a panic, got {other:?}"),
        }
    }
    assert_eq!(ok.result().unwrap(), 12);
    let pid = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[pid]);
}

fn parse_port(text: String) -> Result<u16, pool_core::RemoteError> {
    let n: u16 = text.trim().parse()?;
    if n == 0 {
        return Err("port 0 is not a port".into());
    }
    Ok(n)
}

#[test]
fn question_mark_in_a_task_returning_remote_error() {
    let guard = support::start("question_mark", Duration::from_secs(60));
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let ok = pool.submit(parse_port, " 8080 ".to_string()).unwrap();
    assert_eq!(ok.result().unwrap(), Ok(8080));
    let bad = pool.submit(parse_port, "http".to_string()).unwrap();
    let e = bad.result().unwrap().unwrap_err();
    assert_eq!(e.type_name(), "core::num::error::ParseIntError");
    assert_eq!(e.message(), "invalid digit found in string");
    let zero = pool.submit(parse_port, "0".to_string()).unwrap();
    assert_eq!(
        zero.result().unwrap().unwrap_err().message(),
        "port 0 is not a port"
    );
    let pid = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    pool.shutdown(Shutdown::Wait);
    guard.finish(&[pid]);
}
