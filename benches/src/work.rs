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
