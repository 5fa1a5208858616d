//! `map` keeps order and is lazy with bounded look-ahead; `map_unordered` is complete;
//! `map_all` and `map_with` options.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::bounded;
use pool_core::{ChunkSize, Executor, MapOptions, Progress, TaskError};
use pool_thread::ThreadPool;

fn pool() -> ThreadPool {
    ThreadPool::builder().max_workers(2).build().unwrap()
}

#[test]
fn map_keeps_input_order() {
    let got = bounded(20, || {
        let pool = pool();
        pool.map(
            |x: u64| {
                // Uneven work so chunks finish out of order.
                if x.is_multiple_of(7) {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
                x * 2
            },
            0..5000u64,
        )
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
    });
    assert_eq!(got, (0..5000u64).map(|x| x * 2).collect::<Vec<_>>());
}

#[test]
fn map_is_lazy_and_bounded_on_an_endless_iterator() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let p2 = pulled.clone();
    let got = bounded(20, move || {
        let pool = pool();
        let items = (0u64..).inspect(move |_| {
            p2.fetch_add(1, Ordering::SeqCst);
        });
        let it = pool.map_with(
            |x: u64| x + 1,
            items,
            MapOptions::default()
                .chunk_size(ChunkSize::Fixed(10))
                .lookahead(4),
        );
        it.take(25).map(Result::unwrap).collect::<Vec<_>>()
    });
    assert_eq!(got, (1..=25u64).collect::<Vec<_>>());
    // 25 items taken: 3 chunks consumed, at most `lookahead` chunks in flight beyond them.
    let n = pulled.load(Ordering::SeqCst);
    assert!(n <= 10 * (3 + 4), "pulled {n} items for 25");
}

#[test]
fn map_does_nothing_before_iteration() {
    let pulled = Arc::new(AtomicUsize::new(0));
    let p2 = pulled.clone();
    let pool = pool();
    let it = pool.map(
        |x: u64| x,
        (0u64..10).inspect(move |_| {
            p2.fetch_add(1, Ordering::SeqCst);
        }),
    );
    assert_eq!(pulled.load(Ordering::SeqCst), 0);
    drop(it);
    assert_eq!(pool.stats().submitted, 0);
}

#[test]
fn auto_chunking_grows_chunks() {
    let pool = pool();
    let n = 200_000u64;
    let pool2 = pool.clone();
    let sum = bounded(30, move || {
        pool2
            .map(|x: u64| x & 1, 0..n)
            .map(Result::unwrap)
            .sum::<u64>()
    });
    assert_eq!(sum, n / 2);
    // Far fewer tasks than items: chunks grew from the measured times.
    let s = pool.stats();
    assert!(s.submitted < 2_000, "submitted {} chunks", s.submitted);
}

#[test]
fn map_unordered_yields_everything_once() {
    let got: HashSet<u64> = bounded(20, || {
        pool()
            .map_unordered(|x: u64| x * 3, 0..3000u64)
            .map(Result::unwrap)
            .collect()
    });
    assert_eq!(got, (0..3000u64).map(|x| x * 3).collect::<HashSet<_>>());
}

#[test]
fn map_all_collects_and_reports_the_first_error() {
    let pool = pool();
    let v: Vec<u32> = (0..100_000).collect();
    let p = pool.clone();
    let out = bounded(20, move || p.map_all(|x: u32| x + 1, v).unwrap());
    assert_eq!(out.len(), 100_000);
    assert!(out.iter().enumerate().all(|(i, &x)| x == i as u32 + 1));
    let p = pool.clone();
    let err = bounded(20, move || {
        p.map_all(
            |x: u32| {
                assert!(x != 777, "item {x} is bad");
                x
            },
            0..10_000u32,
        )
    })
    .unwrap_err();
    assert!(
        matches!(&err, TaskError::Panicked(p) if p.message == "item 777 is bad"),
        "{err}"
    );
    let empty: Vec<u8> = pool.map_all(|x: u8| x, Vec::new()).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn a_failed_chunk_yields_its_error_per_item_and_the_map_goes_on() {
    let got = bounded(20, || {
        pool()
            .map_with(
                |x: u32| {
                    assert!(x / 10 != 1, "chunk 1");
                    x
                },
                0..30u32,
                MapOptions::default().chunk_size(ChunkSize::Fixed(10)),
            )
            .collect::<Vec<_>>()
    });
    assert_eq!(got.len(), 30);
    assert!(got[..10].iter().all(Result::is_ok));
    assert!(
        got[10..20]
            .iter()
            .all(|r| r.as_ref().unwrap_err().is_panic())
    );
    assert!(got[20..].iter().all(Result::is_ok));
}

#[test]
fn progress_reports_done_total_and_failures() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    let n = bounded(20, move || {
        pool()
            .map_with(
                |x: u32| x,
                0..100u32,
                MapOptions::default()
                    .chunk_size(ChunkSize::Fixed(25))
                    .progress(Progress::new(move |done, total, failed| {
                        l2.lock().unwrap().push((done, total, failed));
                    })),
            )
            .count()
    });
    assert_eq!(n, 100);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 4);
    assert_eq!(*log.last().unwrap(), (100, Some(100), 0));
}

#[test]
fn per_chunk_timeout_applies() {
    let got = bounded(20, || {
        pool()
            .map_with(
                |x: u64| {
                    if x == 0 {
                        std::thread::sleep(std::time::Duration::from_millis(300));
                    }
                    x
                },
                0..4u64,
                MapOptions::default()
                    .chunk_size(ChunkSize::Fixed(1))
                    .timeout(std::time::Duration::from_millis(30)),
            )
            .collect::<Vec<_>>()
    });
    assert!(got[0].as_ref().unwrap_err().is_timed_out());
    assert_eq!(
        got[1..].iter().cloned().collect::<Result<Vec<_>, _>>(),
        Ok(vec![1, 2, 3])
    );
}

#[test]
fn size_hint_is_exact_for_a_known_length_even_when_refused() {
    let pool = pool();
    let it = pool.map(|x: u32| x, 0..1000u32);
    assert_eq!(it.size_hint(), (1000, Some(1000)));
    let mut it = it;
    it.next().unwrap().unwrap();
    assert_eq!(it.size_hint(), (999, Some(999)));
    drop(it);
    pool.shutdown(pool_core::Shutdown::Wait);
    let all: Vec<_> = pool.map(|x: u32| x, 0..1000u32).collect();
    assert_eq!(all.len(), 1000);
    assert!(all.iter().all(|r| r.as_ref().unwrap_err().is_shutdown()));
}
