//! Profile helper: the lazy ordered `map` over a range, collected.
//! `cargo run --release -p pool-thread --example lazymap`

use std::time::Instant;

use pool_core::Executor;

fn main() {
    let pool = pool_thread::ThreadPool::builder().build().unwrap();
    let t = Instant::now();
    for _ in 0..300 {
        let v = pool
            .map(|x: u64| x.wrapping_mul(3), 0..1_000_000u64)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(v.len(), 1_000_000);
    }
    println!("{:?} per map", t.elapsed() / 300);
    println!("{:?}", pool.stats());
}
