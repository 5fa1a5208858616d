//! Quick numbers for the process pool on this machine (release build recommended):
//! `cargo run --release -p pool-process --example throughput`.
//! The side-by-side comparison against procspawn and the pipe floor lives in `benches/`.

use std::time::{Duration, Instant};

use pool_core::{Executor, Shutdown};
use pool_process::{ProcessPool, TransportKind};
use serde_bytes::ByteBuf;

fn add_one(x: u64) -> u64 {
    x + 1
}

fn byte_len(b: ByteBuf) -> u64 {
    b.len() as u64
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `POOL_TRANSPORT=shm|socket|pipe` (default pipe).
    let transport = match std::env::var("POOL_TRANSPORT").as_deref() {
        Ok("shm") => TransportKind::Shm,
        Ok("socket") => TransportKind::LocalSocket,
        _ => TransportKind::Pipe,
    };
    println!("transport: {transport:?}");
    // Cold start: pool of 2 to first result.
    let cold: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let pool = ProcessPool::builder()
                .max_workers(2)
                .transport(transport)
                .build()
                .unwrap();
            pool.submit(add_one, 1).unwrap().result().unwrap();
            let e = t.elapsed();
            pool.shutdown(Shutdown::Kill);
            e
        })
        .collect();
    println!(
        "cold_start (pool of 2 to first result): median {:?}",
        median(cold)
    );

    let pool = ProcessPool::builder()
        .max_workers(2)
        .transport(transport)
        .build()?;
    pool.spawn_workers(2);
    for i in 0..2000 {
        pool.submit(add_one, i)?.result()?;
    }
    let rt: Vec<Duration> = (0..5000)
        .map(|i| {
            let t = Instant::now();
            pool.submit(add_one, i).unwrap().result().unwrap();
            t.elapsed()
        })
        .collect();
    println!("roundtrip: median {:?}", median(rt));

    let only_tasks = std::env::var_os("POOL_ONLY_TASKS").is_some();
    let t = Instant::now();
    let futs: Vec<_> = (0..100_000u64)
        .map(|i| pool.submit(add_one, i).unwrap())
        .collect();
    let mut sum = 0;
    for f in futs {
        sum += f.result()?;
    }
    println!(
        "tasks_100k (submitted one by one): {:?} (checksum {sum})",
        t.elapsed()
    );

    if only_tasks {
        return Ok(());
    }
    for _ in 0..3 {
        let t = Instant::now();
        let out: Vec<u64> = pool.map(add_one, 0..100_000u64).collect::<Result<_, _>>()?;
        println!("map_100k: {:?} ({} results)", t.elapsed(), out.len());
    }

    let payload = ByteBuf::from(vec![7u8; 64 << 20]);
    let mut times = Vec::new();
    for _ in 0..10 {
        let arg = payload.clone();
        let t = Instant::now();
        let n = pool.submit(byte_len, arg)?.result()?;
        times.push(t.elapsed());
        assert_eq!(n, 64 << 20);
    }
    let m = median(times.clone());
    println!(
        "bytes_64m: median {m:?} = {:.2} GB/s, best {:?}",
        (64u64 << 20) as f64 / m.as_secs_f64() / 1e9,
        times.iter().min().unwrap()
    );
    pool.shutdown(Shutdown::Wait);
    Ok(())
}
