//! A panicking item in `map` fails only itself, with its index in the error; the other items
//! of its chunk keep their values.

mod common;

use common::bounded;
use pool_core::{ChunkSize, Executor, MapOptions, TaskError};
use pool_thread::ThreadPool;

fn fragile(x: u64) -> u64 {
    if x % 500 == 499 {
        panic!("item {x} is fragile");
    }
    x + 1
}

#[test]
fn one_panicking_item_fails_only_itself() {
    let pool = ThreadPool::builder().max_workers(2).build().unwrap();
    let got: Vec<Result<u64, TaskError>> =
        bounded(30, move || pool.map(fragile, 0..1000u64).collect());
    assert_eq!(got.len(), 1000);
    for (i, r) in got.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v, i as u64 + 1),
            Err(TaskError::Panicked(p)) => {
                assert!(i % 500 == 499, "item {i} failed: {p}");
                assert_eq!(p.item, Some(i));
                assert_eq!(p.message, format!("item {i} is fragile"));
                assert!(p.to_string().contains(&format!("on item {i}")), "{p}");
            }
            Err(e) => panic!("item {i}: {e}"),
        }
    }
    assert_eq!(got.iter().filter(|r| r.is_err()).count(), 2);
}

#[test]
fn unordered_and_fixed_chunks_name_the_same_items() {
    let pool = ThreadPool::builder().max_workers(2).build().unwrap();
    let opts = MapOptions::default()
        .ordered(false)
        .chunk_size(ChunkSize::Fixed(64));
    let mut failed: Vec<usize> = bounded(30, move || {
        pool.map_with(fragile, 0..1000u64, opts)
            .filter_map(|r| match r {
                Err(TaskError::Panicked(p)) => p.item,
                _ => None,
            })
            .collect()
    });
    failed.sort_unstable();
    assert_eq!(failed, [499, 999]);
}

#[test]
fn several_panicking_items_in_one_chunk_each_fail_alone() {
    // Adjacent and scattered panics in one chunk: each names its own item, and every other
    // item keeps its value.
    let bad = |x: u32| [3, 4, 5, 9, 17].contains(&x);
    let pool = ThreadPool::builder().max_workers(2).build().unwrap();
    let got: Vec<Result<u32, TaskError>> = bounded(30, move || {
        pool.map_with(
            move |x: u32| {
                assert!(!bad(x), "item {x} is bad");
                x * 2
            },
            0..20u32,
            MapOptions::default().chunk_size(ChunkSize::Fixed(20)),
        )
        .collect()
    });
    assert_eq!(got.len(), 20);
    for (i, r) in got.iter().enumerate() {
        match r {
            Ok(v) => assert!(!bad(i as u32) && *v == 2 * i as u32, "item {i}: {v}"),
            Err(TaskError::Panicked(p)) => {
                assert!(bad(i as u32), "item {i} failed: {p}");
                assert_eq!(p.item, Some(i));
                assert_eq!(p.message, format!("item {i} is bad"));
            }
            Err(e) => panic!("item {i}: {e}"),
        }
    }
}
