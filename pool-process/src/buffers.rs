//! Reused byte buffers for encoded arguments and replies, so the hot path does not allocate
//! once buffers are warm.
//!
//! Small buffers (≤ 1 MiB) go to a free list. One large buffer (≤ 256 MiB) is kept too and
//! handed out first: a big argument sent again and again then reuses memory whose pages are
//! already mapped, instead of paying a page fault per 4 KiB each time (which costs more than
//! the copy itself). The pool therefore holds at most about 256 MiB + 256 MiB of idle buffers
//! after sending a huge argument, until it is dropped.

use std::sync::{Mutex, PoisonError};

/// Largest buffer kept on the small free list.
const SMALL_MAX: usize = 1 << 20;
/// Largest buffer kept at all.
const LARGE_MAX: usize = 256 << 20;
/// At most this many idle small buffers are kept.
const KEEP_COUNT: usize = 256;

/// A free list of byte buffers.
#[derive(Default)]
pub(crate) struct BufPool {
    small: Mutex<Vec<Vec<u8>>>,
    large: Mutex<Option<Vec<u8>>>,
}

impl BufPool {
    /// An empty buffer, reused when one is free.
    pub(crate) fn take(&self) -> Vec<u8> {
        if let Some(b) = self.large.try_lock().ok().and_then(|mut l| l.take()) {
            return b;
        }
        self.small
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    /// Gives a buffer back for reuse.
    pub(crate) fn put(&self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap == 0 || cap > LARGE_MAX {
            return;
        }
        buf.clear();
        if cap > SMALL_MAX {
            let mut large = self.large.lock().unwrap_or_else(PoisonError::into_inner);
            if large.as_ref().is_none_or(|l| l.capacity() < cap) {
                *large = Some(buf);
            }
            return;
        }
        let mut small = self.small.lock().unwrap_or_else(PoisonError::into_inner);
        if small.len() < KEEP_COUNT {
            small.push(buf);
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
        assert!(pool.take().capacity() >= 2 << 20);
        pool.put(vec![0; 300 << 20]);
        assert!(pool.take().capacity() < 300 << 20);
    }
}
