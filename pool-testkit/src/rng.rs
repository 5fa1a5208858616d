//! A seeded, reproducible random sequence for fuzz and soak tests.
//!
//! xorshift64\*: the same seed gives the same sequence on every machine and in every
//! release, so a printed seed (`POOL_SOAK_SEED`, `POOL_FUZZ_SEED`) replays a run exactly.

/// The seed named by environment variable `var` (to replay a printed run), else a fresh
/// odd one from the clock.
pub fn seed_from_env(var: &str) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
                | 1
        })
}

/// A xorshift64\* generator. The state must not be zero.
///
/// # Examples
///
/// ```
/// let mut a = pool_testkit::rng::Rng::new(7);
/// let mut b = pool_testkit::rng::Rng::new(7);
/// assert_eq!(a.next(), b.next());
/// assert!(a.below(10) < 10);
/// assert_eq!(a.below(0), 0);
/// assert_eq!(a.bytes(3).len(), 3);
/// ```
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (a zero seed is replaced by 1: zero is a fixed point).
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 { 1 } else { seed })
    }

    /// The next value.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Up to `n - 1` random bytes.
    pub fn bytes_upto(&mut self, n: u64) -> Vec<u8> {
        let k = self.below(n) as usize;
        self.bytes(k)
    }
}
