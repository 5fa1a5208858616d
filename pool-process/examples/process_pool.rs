//! A process pool with no setup call: workers are this very program, re-executed, and a hook
//! that runs before `main` turns them into workers.
//!
//! Run with `cargo run -p pool-process --example process_pool`.

use pool_core::{Executor, Shutdown, TaskError};
use pool_process::ProcessPool;

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

fn crash(_: ()) -> u32 {
    std::process::abort()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool = ProcessPool::builder().max_workers(2).build()?;

    let big = [
        112_272_535_095_293u64,
        112_582_705_942_171,
        115_280_095_190_773,
    ];
    for (n, fut) in big.map(|n| (n, pool.submit(is_prime, n))) {
        println!("{n} is prime: {}", fut?.result()?);
    }

    let squares: Vec<u64> = pool.map(|x: u64| x * x, 1..=10).collect::<Result<_, _>>()?;
    println!("squares: {squares:?}");

    match pool.submit(crash, ())?.result() {
        Err(TaskError::WorkerDied(d)) => println!("a worker died as expected: {}", d.exit),
        other => println!("unexpected: {other:?}"),
    }
    println!(
        "the pool still serves: 6 * 7 = {}",
        pool.submit(|x: u32| x * 7, 6)?.result()?
    );

    pool.shutdown(Shutdown::Wait);
    Ok(())
}
