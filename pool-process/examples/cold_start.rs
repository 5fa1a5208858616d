//! Cold start, alone (for profilers and `strace`): build a pool of 2 (both workers started at
//! once, as `process.cold_start` does) and wait for the first result; `N` times (argument,
//! default 50), then the median.
//!
//! ```sh
//! cargo run --release -p pool-process --example cold_start -- 50
//! strace -f -ttt --seccomp-bpf -e trace=execve,clone3,vfork,exit_group,read,write,writev \
//!     target/release/examples/cold_start 1
//! ```

use std::time::{Duration, Instant};

use pool_core::{Executor, Shutdown};
use pool_process::{ProcessPool, TransportKind};

fn noop(x: u64) -> u64 {
    x
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let transport = match std::env::var("POOL_TRANSPORT").as_deref() {
        Ok("shm") => TransportKind::Shm,
        Ok("socket") => TransportKind::LocalSocket,
        _ => TransportKind::Pipe,
    };
    let mut times: Vec<Duration> = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let pool = ProcessPool::builder()
            .min_workers(2)
            .max_workers(2)
            .transport(transport)
            .build()?;
        let got = pool.submit(noop, 7)?.result()?;
        times.push(t.elapsed());
        assert_eq!(got, 7);
        pool.shutdown(Shutdown::Kill);
    }
    times.sort();
    println!(
        "cold start ({transport:?}, pool of 2 to first result), {n} runs: median {:?}, min {:?}",
        times[n / 2],
        times[0]
    );
    Ok(())
}
