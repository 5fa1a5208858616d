//! Profile helper: how long a sleeping pool takes to start a task.
//! `cargo run --release -p pool-thread --example wakeup`

use std::time::{Duration, Instant};

fn main() {
    let pool = pool_thread::ThreadPool::builder()
        .max_workers(2)
        .min_workers(2)
        .build()
        .unwrap();
    let mut lat = Vec::new();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(5));
        let t = Instant::now();
        let f = pool.submit(move || t.elapsed()).unwrap();
        lat.push(f.result().unwrap());
    }
    lat.sort();
    println!(
        "wake-to-start median {:?} p90 {:?} max {:?}",
        lat[25], lat[45], lat[49]
    );
}
