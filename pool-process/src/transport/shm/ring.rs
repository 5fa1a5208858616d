//! One single-producer single-consumer byte ring in shared memory.
//!
//! `head` and `tail` count bytes ever written and consumed (`u64`, never wrap in practice);
//! a position's byte lives at `pos & (capacity - 1)`. Frames start at multiples of 8 and
//! are `HEADER` (length, kind) followed by the body padded to 8, so a header never straddles
//! the end of the data area while a body may wrap around it. The producer publishes a whole
//! frame with one `Release` store of `head`; the consumer reads `head` with `Acquire` and
//! hands space back with a `Release` store of `tail`, which the producer reads with
//! `Acquire`. Each index is written by one side only.

use std::io;
use std::sync::atomic::Ordering;

use super::layout::{HEADER, RingControl, frame_size};

/// A view of one ring for the duration of one call.
pub(super) struct Ring<'a> {
    pub(super) ctl: &'a RingControl,
    data: *mut u8,
    cap: usize,
}

impl<'a> Ring<'a> {
    /// # Safety
    ///
    /// `data..data + cap` is this ring's data area inside a mapping that outlives `'a`, and
    /// `cap` is a power of two, at least 8. The caller uses the view only in its own role
    /// (producer or consumer) and is the only one in that role: the producer writes only
    /// bytes in `[head, tail + cap)` (free space), the consumer reads only `[tail, head)`
    /// (published frames), so the two never touch the same byte at the same time.
    pub(super) unsafe fn new(ctl: &'a RingControl, data: *mut u8, cap: usize) -> Self {
        debug_assert!(cap.is_power_of_two() && cap >= 8);
        Self { ctl, data, cap }
    }

    // ---------------------------------------------------------------- producer side

    /// Free bytes for a producer whose next frame starts at `head`.
    pub(super) fn free(&self, head: u64) -> io::Result<usize> {
        let tail = self.ctl.tail.0.load(Ordering::Acquire);
        match head.checked_sub(tail) {
            Some(used) if used <= self.cap as u64 => Ok(self.cap - used as usize),
            _ => Err(corrupt("the consumer index ran ahead of the producer")),
        }
    }

    /// Writes one frame at `head` and publishes it; returns the new head. The caller checked
    /// `free(head) >= frame_size(len)` where `len` is the sum of `parts` (inline) or 0.
    pub(super) fn push(&self, head: u64, kind: u32, len: u32, parts: &[&[u8]]) -> u64 {
        let body: usize = parts.iter().map(|p| p.len()).sum();
        debug_assert!(body == 0 || body == len as usize);
        debug_assert!(head.is_multiple_of(8));
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4..].copy_from_slice(&kind.to_le_bytes());
        self.copy_in(head, &header);
        let mut pos = head + HEADER as u64;
        for part in parts {
            self.copy_in(pos, part);
            pos += part.len() as u64;
        }
        let next = head + frame_size(body) as u64;
        // Release: the frame's bytes are visible before the index that covers them.
        self.ctl.head.0.store(next, Ordering::Release);
        next
    }

    /// Writes `bytes` at `pos` whatever the indices say, as a hostile producer could: for the
    /// scripted peer in `hostile.rs`, which runs both sides on one thread (so no other access
    /// to these bytes is in progress, and no borrow of them is live).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn overwrite(&self, pos: u64, bytes: &[u8]) {
        let mut pos = pos;
        for chunk in bytes.chunks(self.cap) {
            self.copy_in(pos, chunk);
            pos = pos.wrapping_add(chunk.len() as u64);
        }
    }

    fn copy_in(&self, pos: u64, bytes: &[u8]) {
        let at = (pos as usize) & (self.cap - 1);
        let first = bytes.len().min(self.cap - at);
        // SAFETY: `at + first <= cap` and `bytes.len() - first <= cap - first`, so both
        // copies stay inside the data area (invariant of `new`); the range is free space
        // that only this producer writes (the caller checked `free`), and `bytes` is local
        // memory, so source and destination cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.data.add(at), first);
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr().add(first),
                self.data,
                bytes.len() - first,
            );
        }
    }

    // ---------------------------------------------------------------- consumer side

    /// Published bytes not yet consumed by a consumer at `tail`.
    pub(super) fn available(&self, tail: u64) -> io::Result<usize> {
        let head = self.ctl.head.0.load(Ordering::Acquire);
        match head.checked_sub(tail) {
            Some(n) if n <= self.cap as u64 => Ok(n as usize),
            _ => Err(corrupt("the producer index is out of range")),
        }
    }

    /// The header of the frame at `tail` (which must be published): `(kind, len)`.
    pub(super) fn header(&self, tail: u64) -> (u32, u32) {
        let mut header = [0u8; HEADER];
        // SAFETY: `header` is a local buffer of exactly `HEADER` writable bytes.
        unsafe { self.copy_out(tail, header.as_mut_ptr(), HEADER) };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let kind = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        (kind, len)
    }

    /// Appends the `len` bytes starting at `pos` (published, not yet consumed) to `out`.
    pub(super) fn read(&self, pos: u64, len: usize, out: &mut Vec<u8>) {
        out.reserve(len);
        let start = out.len();
        // SAFETY: `reserve` made room for `len` more bytes after `start`; `copy_out` writes
        // all of them, so `set_len` exposes only initialized bytes.
        unsafe {
            self.copy_out(pos, out.as_mut_ptr().add(start), len);
            out.set_len(start + len);
        }
    }

    /// # Safety
    ///
    /// `dst` is valid for `len` byte writes and does not point into the ring.
    unsafe fn copy_out(&self, pos: u64, dst: *mut u8, len: usize) {
        debug_assert!(len <= self.cap);
        let at = (pos as usize) & (self.cap - 1);
        let first = len.min(self.cap - at);
        // SAFETY: both copies stay inside the data area (as in `copy_in`); the range lies in
        // `[tail, head)`, published by the producer with a `Release` store that `available`
        // read with `Acquire`, and the producer does not write it again until `tail` passes
        // it; `dst` is valid and disjoint from the ring (this function's contract).
        unsafe {
            std::ptr::copy_nonoverlapping(self.data.add(at), dst, first);
            std::ptr::copy_nonoverlapping(self.data, dst.add(first), len - first);
        }
    }

    /// Hands the bytes before `tail` back to the producer.
    pub(super) fn release(&self, tail: u64) {
        // Release: our reads of the frame happen before the producer may overwrite it.
        self.ctl.tail.0.store(tail, Ordering::Release);
    }
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("shared-memory ring corrupt: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    use super::Ring;
    use crate::transport::shm::layout::{
        Event, HEADER, KIND_INLINE, KIND_LARGE, Line, RingControl, frame_size,
    };

    fn control() -> RingControl {
        let event = || {
            Line(Event {
                seq: AtomicU32::new(0),
                sleeping: AtomicU32::new(0),
            })
        };
        RingControl {
            head: Line(AtomicU64::new(0)),
            tail: Line(AtomicU64::new(0)),
            data: event(),
            space: event(),
            large_released: Line(AtomicU64::new(0)),
        }
    }

    #[test]
    fn frames_wrap_around_the_end_intact() {
        const CAP: usize = 64;
        let ctl = control();
        let mut data = vec![0u8; CAP];
        // SAFETY: `data` is CAP bytes and outlives the view; this test is both the only
        // producer and the only consumer, never at the same time.
        let ring = unsafe { Ring::new(&ctl, data.as_mut_ptr(), CAP) };
        let (mut head, mut tail) = (0u64, 0u64);
        for i in 0..200usize {
            let len = (i * 7) % (CAP - HEADER + 1);
            let msg: Vec<u8> = (0..len).map(|k| (i + k) as u8).collect();
            assert!(ring.free(head).unwrap() >= frame_size(len));
            let (a, b) = msg.split_at(len / 2);
            head = ring.push(head, KIND_INLINE, len as u32, &[a, b]);
            assert_eq!(ring.available(tail).unwrap(), frame_size(len));
            assert_eq!(ring.header(tail), (KIND_INLINE, len as u32));
            let mut out = vec![0xAA];
            ring.read(tail + HEADER as u64, len, &mut out);
            assert_eq!(&out[1..], &msg[..], "frame {i}");
            tail += frame_size(len) as u64;
            ring.release(tail);
        }
        // A header-only frame (a large payload's announcement).
        head = ring.push(head, KIND_LARGE, 12345, &[]);
        assert_eq!(ring.header(tail), (KIND_LARGE, 12345));
        assert_eq!(head - tail, HEADER as u64);
    }

    #[test]
    fn indices_out_of_range_are_corrupt_not_trusted() {
        let ctl = control();
        let mut data = vec![0u8; 64];
        // SAFETY: as above.
        let ring = unsafe { Ring::new(&ctl, data.as_mut_ptr(), 64) };
        ctl.tail.0.store(8, Ordering::Relaxed);
        assert!(ring.free(0).is_err(), "consumer ahead of producer");
        ctl.head.0.store(1000, Ordering::Relaxed);
        assert!(
            ring.available(0).is_err(),
            "more published than the ring holds"
        );
    }
}
