//! Profile helper: 1 M tiny tasks, each with its own future, submitted then collected.
//! `cargo run --release -p pool-thread --example tasks`

use std::time::Instant;

fn main() {
    let pool = pool_thread::ThreadPool::builder().build().unwrap();
    for _ in 0..5 {
        let t = Instant::now();
        let futs: Vec<_> = (0..1_000_000u64)
            .map(|i| pool.submit(move || i ^ 1).unwrap())
            .collect();
        let s: u64 = futs.into_iter().map(|f| f.result().unwrap()).sum();
        println!("{:?} {s}", t.elapsed());
    }
}
