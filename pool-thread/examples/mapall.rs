//! Profile helper: `map_all` over a borrowed vector's copied items, as the comparison binary
//! drives it. `cargo run --release -p pool-thread --example mapall`

use std::time::{Duration, Instant};

use pool_core::Executor;

fn main() {
    let pool = pool_thread::ThreadPool::builder()
        .max_workers(2)
        .min_workers(2)
        .build()
        .unwrap();
    let items: Vec<u64> = (0..1_000_000).collect();
    let mut ts = Vec::new();
    for _ in 0..40 {
        let t = Instant::now();
        let out = pool
            .map_all(|x: u64| x.wrapping_mul(2), items.iter().copied())
            .unwrap();
        ts.push(t.elapsed());
        assert_eq!(out.len(), items.len());
        std::thread::sleep(Duration::from_millis(2));
    }
    ts.sort();
    println!("map_all median {:?} min {:?}", ts[20], ts[0]);
}
