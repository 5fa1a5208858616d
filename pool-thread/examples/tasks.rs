//! Profile helper: 1 M tiny tasks, each with its own future, submitted then collected.
//! `cargo run --release -p pool-thread --example tasks [workers]`

use std::time::Instant;

fn main() {
    let w: usize = std::env::args().nth(1).map_or(2, |a| a.parse().unwrap());
    let pool = pool_thread::ThreadPool::builder()
        .max_workers(w)
        .build()
        .unwrap();
    for _ in 0..5 {
        let t = Instant::now();
        let futs: Vec<_> = (0..1_000_000u64)
            .map(|i| pool.submit(move || i ^ 1).unwrap())
            .collect();
        let t1 = t.elapsed();
        let s: u64 = futs.into_iter().map(|f| f.result().unwrap()).sum();
        println!("submit {t1:?} total {:?} {s}", t.elapsed());
    }
}
