//! Reused byte buffers for encoded arguments and replies, so the hot path does not allocate
//! once buffers are warm.

use std::sync::{Mutex, PoisonError};

/// Buffers larger than this are dropped instead of kept (a 64 MiB argument should not pin
/// 64 MiB for the pool's lifetime).
const KEEP_MAX: usize = 1 << 20;
/// At most this many idle buffers are kept.
const KEEP_COUNT: usize = 256;

/// A free list of byte buffers.
#[derive(Default)]
pub(crate) struct BufPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufPool {
    /// An empty buffer, reused when one is free.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    /// Gives a buffer back for reuse.
    pub(crate) fn put(&self, mut buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > KEEP_MAX {
            return;
        }
        buf.clear();
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < KEEP_COUNT {
            free.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reuses_and_bounds() {
        let pool = super::BufPool::default();
        let mut b = pool.take();
        b.extend_from_slice(b"abc");
        let cap = b.capacity();
        pool.put(b);
        let b = pool.take();
        assert!(b.is_empty() && b.capacity() == cap);
        pool.put(vec![0; 2 << 20]);
        assert_eq!(pool.take().capacity(), 0);
    }
}
