//! The framing shared by every byte-stream transport (pipes, sockets).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use super::{MAX_FRAME, Transport};
use crate::sys::fdio;

/// Smallest read attempted; bigger frames read straight into a buffer sized for them.
const MIN_READ: usize = 64 * 1024;
/// Never reserve more than this ahead of data that actually arrived.
const MAX_RESERVE_AHEAD: usize = 64 << 20;

/// A [`Transport`] over a pair of stream descriptors (the same socket twice, or two pipes).
pub(crate) struct StreamTransport {
    rx: OwnedFd,
    tx: OwnedFd,
    buf: Vec<u8>,
    /// Start of unread data in `buf`.
    start: usize,
    /// End of the frame handed out by the last `recv`, consumed at the next call.
    handed_out: Option<(usize, usize)>,
}

impl StreamTransport {
    pub(crate) fn new(rx: OwnedFd, tx: OwnedFd) -> Self {
        Self {
            rx,
            tx,
            buf: Vec::with_capacity(MIN_READ),
            start: 0,
            handed_out: None,
        }
    }

    /// The frame the last successful `recv` returned (empty if none).
    pub(crate) fn last_frame(&self) -> &[u8] {
        self.handed_out.map_or(&[], |(b, e)| &self.buf[b..e])
    }

    /// If a whole frame is buffered, its body's range.
    fn buffered_frame(&self) -> io::Result<Option<(usize, usize)>> {
        let avail = &self.buf[self.start..];
        if avail.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"),
            ));
        }
        if avail.len() >= 4 + len {
            let body = self.start + 4;
            Ok(Some((body, body + len)))
        } else {
            Ok(None)
        }
    }

    /// Bytes still missing for the frame at `start` (at least `MIN_READ`).
    fn wanted(&self) -> usize {
        let avail = &self.buf[self.start..];
        if avail.len() < 4 {
            return MIN_READ;
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        (4 + len - avail.len()).clamp(MIN_READ, MAX_RESERVE_AHEAD)
    }
}

impl Transport for StreamTransport {
    fn send(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("message of {total} bytes exceeds the {MAX_FRAME}-byte frame limit"),
            ));
        }
        let header = (total as u32).to_le_bytes();
        let mut all: [&[u8]; 4] = [&header, &[], &[], &[]];
        let n = parts.len().min(3);
        all[1..=n].copy_from_slice(&parts[..n]);
        fdio::write_all_vectored(self.tx.as_fd(), &all[..=n])?;
        for rest in parts.iter().skip(3) {
            fdio::write_all_vectored(self.tx.as_fd(), &[rest])?;
        }
        Ok(())
    }

    fn recv(&mut self, deadline: Option<Instant>) -> io::Result<&[u8]> {
        // Drop the frame handed out last time.
        if let Some((_, end)) = self.handed_out.take() {
            self.start = end;
        }
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        loop {
            if let Some((body, end)) = self.buffered_frame()? {
                self.handed_out = Some((body, end));
                return Ok(&self.buf[body..end]);
            }
            let want = self.wanted();
            if self.buf.capacity() - self.buf.len() < want {
                if self.start > 0 {
                    self.buf.drain(..self.start);
                    self.start = 0;
                }
                self.buf.reserve(want);
            }
            if let Some(deadline) = deadline {
                fdio::wait_readable(self.rx.as_fd(), deadline)?;
            }
            if fdio::read_spare(self.rx.as_fd(), &mut self.buf)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}
