//! A tour of pool: `cargo run --release --example tour`.
//!
//! Threads and processes behind one `Executor` trait; a panic and a segfault that the
//! pools survive; a runaway task killed by its timeout; a leaky task recycled by a memory
//! limit. There is no setup call in `main`: process workers are this very binary,
//! re-executed, and a hook that runs before `main` turns them into workers.

use std::error::Error;
use std::time::{Duration, Instant};

use pool::prelude::*;

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

/// Generic code, written once against `Parallel`, run on threads and on processes: the
/// function it submits is its own.
fn count_primes<P: Parallel>(pool: &P, below: u64) -> Result<usize, TaskError> {
    let flags = pool.map_all_fn(is_prime, 0..below)?;
    Ok(flags.into_iter().filter(|&p| p).count())
}

fn crash_like_a_bad_c_library(x: u32) -> u32 {
    if x == 3 {
        // SAFETY: raising a signal is always allowed; this is the demonstration of a crash.
        unsafe { libc::raise(libc::SIGSEGV) };
    }
    x * 10
}

fn panics_on_seven(x: u32) -> u32 {
    assert!(x != 7, "seven is not allowed");
    x
}

fn runaway(_: ()) -> u64 {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn leaky(mib: usize) -> usize {
    // Each call leaks `mib` MiB, touched so that it counts in the worker's RSS.
    let block = vec![1u8; mib << 20];
    let len = block.len();
    std::mem::forget(block);
    len
}

fn main() -> Result<(), Box<dyn Error>> {
    println!("== pool tour ==\n");

    // 1. Threads. A task's panic comes back as a value (below), so the default report on
    //    stderr is kept for the tour's own panics, not for those on the pool's threads.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let on_pool = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("tour-"));
        if !on_pool {
            default_hook(info);
        }
    }));
    let threads = ThreadPool::builder().max_workers(2).name("tour").build()?;
    let t0 = Instant::now();
    let primes = count_primes(&threads, 200_000)?;
    println!(
        "threads:   {primes} primes below 200 000 in {:?}",
        t0.elapsed()
    );
    let bad = threads.submit(|| -> u32 { panic!("a task panicked on a thread") })?;
    println!(
        "threads:   a panic is data -> {}",
        bad.result().unwrap_err()
    );
    println!(
        "threads:   the pool lives on -> {}",
        threads.submit(|| 1 + 1)?.result()?
    );

    // 2. Processes: the same generic function, plain fns, no registration, no init().
    let procs = ProcessPool::builder().max_workers(2).build()?;
    let t0 = Instant::now();
    let primes = count_primes(&procs, 200_000)?;
    println!(
        "processes: {primes} primes below 200 000 in {:?}",
        t0.elapsed()
    );

    // One call at a time: `apply` borrows an idle worker and talks to it directly.
    let t0 = Instant::now();
    let calls = 10_000u64;
    let mut sum = 0;
    for x in 0..calls {
        sum += procs.apply(is_prime, x)? as u64;
    }
    println!(
        "processes: {calls} calls of apply, one after the other, {:.1} µs each ({sum} primes)",
        t0.elapsed().as_secs_f64() * 1e6 / calls as f64
    );

    // A long map with a progress bar (drawn on stderr when it is a terminal).
    let (progress, bar) = pool::progress_bar(None);
    let opts = MapOptions::default().progress(progress);
    let big = procs
        .map_with(is_prime, 0..2_000_000u64, opts)
        .filter(|r| matches!(r, Ok(true)))
        .count();
    bar.finish_and_clear();
    println!(
        "processes: {big} primes below 2 000 000, {} items reported by the progress callback",
        bar.position()
    );

    // 3. A crash fails only its own task; the others carry on.
    let futures: Vec<_> = (0..6)
        .map(|x| procs.submit(crash_like_a_bad_c_library, x))
        .collect::<Result<_, _>>()?;
    for (x, f) in futures.into_iter().enumerate() {
        match f.result() {
            Ok(v) => println!("processes: task {x} -> {v}"),
            Err(e) => println!("processes: task {x} -> {e}"),
        }
    }
    match procs.submit(panics_on_seven, 7)?.result() {
        Ok(_) => println!("processes: no panic?"),
        Err(e) => println!("processes: a panic in a worker -> {e}"),
    }

    // 4. A runaway task is killed by its timeout; the pool replaces the worker.
    let t0 = Instant::now();
    let f = procs.submit_with(
        runaway,
        (),
        SubmitOptions::new()
            .timeout(Duration::from_millis(300))
            .label("runaway"),
    )?;
    println!(
        "processes: {} (after {:?})",
        f.result().unwrap_err(),
        t0.elapsed()
    );
    println!(
        "processes: the pool lives on -> {}",
        procs.submit(panics_on_seven, 1)?.result()?
    );

    // 5. A leaky task: the worker is recycled once its RSS passes the limit.
    let leaky_pool = ProcessPool::builder()
        .max_workers(1)
        .max_memory_per_worker(64 << 20)
        .build()?;
    for _ in 0..8 {
        leaky_pool.submit(leaky, 16)?.result()?;
    }
    let s = leaky_pool.stats();
    println!(
        "processes: 8 calls leaking 16 MiB each under a 64 MiB limit -> {} workers started, {} recycled",
        s.spawned, s.recycled
    );

    let s = procs.stats();
    println!(
        "\nprocess pool stats: {} submitted, {} completed, {} failed, {} timed out, {} replaced",
        s.submitted, s.completed, s.failed, s.timed_out, s.replaced
    );

    // 6. Shutdown is bounded and explicit: wait for running tasks, then every worker process
    //    has exited and been reaped before `main` returns (dropping a pool never blocks).
    for (name, pool) in [("process pool", &procs), ("leaky pool", &leaky_pool)] {
        let r = pool.shutdown(Shutdown::Wait);
        println!(
            "shutdown:  {name}: workers exited and reaped ({} cancelled, {} killed, \
             {} finalizer errors, {} still running)",
            r.cancelled,
            r.killed,
            r.finalizer_errors.len(),
            r.unfinished_workers
        );
    }
    threads.shutdown(Shutdown::Wait);
    Ok(())
}
