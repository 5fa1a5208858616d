//! Cold start by start method: a pool of 2 (both workers started at once, as
//! `process.cold_start` does) to the first result. Prints the first pool of the process (for
//! the fork server: the server's own exec included) and the median of `N` later pools.
//!
//! ```sh
//! cargo run --release -p pool-process --example fork_server_cold_start -- fork 50
//! cargo run --release -p pool-process --example fork_server_cold_start -- spawn 50
//! ```

use std::time::{Duration, Instant};

use pool_core::{Executor, Shutdown};
use pool_process::{ProcessPool, StartMethod};

fn noop(x: u64) -> u64 {
    x
}

fn cold_start(method: StartMethod) -> Result<Duration, Box<dyn std::error::Error>> {
    let t = Instant::now();
    let pool = ProcessPool::builder()
        .min_workers(2)
        .max_workers(2)
        .start_method(method)
        .build()?;
    let got = pool.submit(noop, 7)?.result()?;
    let d = t.elapsed();
    assert_eq!(got, 7);
    pool.shutdown(Shutdown::Kill);
    Ok(d)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let method = match args.next().as_deref() {
        Some("spawn") => StartMethod::Spawn,
        _ => StartMethod::ForkServer,
    };
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(50)
        .max(1);
    let first = cold_start(method)?;
    let mut later: Vec<Duration> = (0..n)
        .map(|_| cold_start(method))
        .collect::<Result<_, _>>()?;
    later.sort();
    println!(
        "{method:?}: first pool {first:?}; later pools ({n}): median {:?}, min {:?}, p90 {:?}",
        later[n / 2],
        later[0],
        later[n * 9 / 10]
    );
    Ok(())
}
