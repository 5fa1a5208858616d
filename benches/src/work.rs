//! The task bodies every subject runs: plain `fn` items, so the process pools (ours needs a
//! zero-sized function, procspawn a `fn` pointer) and the thread pools run the same code.

use serde_bytes::ByteBuf;

/// The no-op task of the round-trip scenarios: hands its argument back.
pub fn noop(x: u64) -> u64 {
    x
}

/// The tiny task of the many-tasks and map scenarios.
pub fn double(x: u64) -> u64 {
    x.wrapping_mul(2)
}

/// [`double`] over a chunk: what procspawn runs per spawn in `process.map_100k`.
pub fn double_chunk(xs: Vec<u64>) -> Vec<u64> {
    xs.into_iter().map(double).collect()
}

/// The task of `process.bytes_64m`: receives the payload and returns its length.
pub fn byte_len(bytes: ByteBuf) -> u64 {
    bytes.len() as u64
}

/// Checks that `out` is [`double`] applied to `0..n`, cheaply (length, both ends, middle).
///
/// # Errors
///
/// Says what differs.
pub fn check_doubled(out: &[u64], n: u64) -> Result<(), String> {
    if out.len() as u64 != n {
        return Err(format!("expected {n} results, got {}", out.len()));
    }
    for i in [0, n / 2, n.saturating_sub(1)] {
        if n > 0 && out[i as usize] != double(i) {
            return Err(format!(
                "result {i} is {}, expected {}",
                out[i as usize],
                double(i)
            ));
        }
    }
    Ok(())
}

/// The CPU-bound task of the `process.work_*` rows: `iters` rounds of a xorshift step seeded
/// from `seed`, a serial dependency chain the compiler cannot shorten. Its argument is one
/// tuple so that every pool runs the very same `fn` (ours needs a zero-sized function and a
/// serializable argument, procspawn a `fn` pointer); [`work_iters`] says how many rounds make
/// a given time on this machine.
pub fn burn(arg: (u64, u64)) -> u64 {
    let (seed, iters) = arg;
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for _ in 0..std::hint::black_box(iters) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

/// [`burn`] over the seeds `start..end`, in order: what procspawn runs per spawn in the
/// `process.work_*` rows.
pub fn burn_range(arg: (u64, u64, u64)) -> Vec<u64> {
    let (start, end, iters) = arg;
    (start..end).map(|i| burn((i, iters))).collect()
}

/// The CPU time this thread has used so far (`CLOCK_THREAD_CPUTIME_ID`): unlike a wall
/// clock, it does not advance while the thread waits for a core the rest of the machine holds.
pub fn thread_cpu_time() -> std::time::Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    std::time::Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// CPU time of `op` on this thread ([`thread_cpu_time`]), and its value.
pub fn cpu_timed<T>(op: impl FnOnce() -> T) -> (std::time::Duration, T) {
    let start = thread_cpu_time();
    let value = op();
    (thread_cpu_time().saturating_sub(start), value)
}

/// Rounds of [`burn`] per nanosecond of CPU on this machine, measured once per process in
/// thread CPU time (the best of five runs of ~10 ms each), so load elsewhere on the machine
/// does not shorten the tasks.
fn burn_rate() -> f64 {
    static RATE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *RATE.get_or_init(|| {
        let target = std::time::Duration::from_millis(10);
        let mut iters = 1_000u64;
        while cpu_timed(|| std::hint::black_box(burn((1, iters)))).0 < target {
            iters *= 2;
        }
        let best = (0..5)
            .map(|_| cpu_timed(|| std::hint::black_box(burn((1, iters)))).0)
            .min()
            .unwrap_or(target);
        iters as f64 / best.as_nanos().max(1) as f64
    })
}

/// The rounds of [`burn`] that take about `per_task` of CPU on this machine, from one calibration
/// per process, so every subject of every `process.work_*` row runs the same work.
pub fn work_iters(per_task: std::time::Duration) -> u64 {
    ((burn_rate() * per_task.as_nanos() as f64) as u64).max(1)
}

/// Checks that `out` is [`burn`] of `(i, iters)` for `i` in `0..n` (length, both ends,
/// middle).
///
/// # Errors
///
/// Says what differs.
pub fn check_burned(out: &[u64], n: u64, iters: u64) -> Result<(), String> {
    if out.len() as u64 != n {
        return Err(format!("expected {n} results, got {}", out.len()));
    }
    for i in [0, n / 2, n.saturating_sub(1)] {
        if n > 0 && out[i as usize] != burn((i, iters)) {
            return Err(format!("result {i} differs from burn({i}, {iters})"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_range_is_burn_in_order_and_checked() {
        let out = burn_range((0, 50, 1_000));
        assert_eq!(out, (0..50).map(|i| burn((i, 1_000))).collect::<Vec<_>>());
        assert_eq!(check_burned(&out, 50, 1_000), Ok(()));
        assert!(check_burned(&out, 50, 999).is_err());
        assert!(check_burned(&out[1..], 49, 1_000).is_err());
    }

    #[test]
    fn calibration_gives_more_rounds_for_longer_tasks() {
        let short = work_iters(std::time::Duration::from_micros(10));
        let long = work_iters(std::time::Duration::from_millis(1));
        assert!(short >= 1 && long > short);
    }
}
