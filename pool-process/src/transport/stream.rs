//! The framing shared by every byte-stream transport (pipes, sockets): pool-codec's
//! `FrameReader` on the receive side (over a descriptor that honours a deadline), one
//! vectored write per message on the send side.

use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use pool_codec::{FrameError, FrameReader, HEADER_LEN};

use super::{MAX_FRAME, Transport};
use crate::sys::fdio;
use crate::sys::pidfd::ProcessWatch;

/// A descriptor whose reads wait at most until `deadline`.
struct DeadlineFd {
    fd: OwnedFd,
    deadline: Option<Instant>,
    /// Without a deadline, poll this long before the blocking read (see
    /// `Transport::set_spin`).
    spin: Duration,
    /// The process at the other end (parent side): every wait also ends when it exits.
    peer: Option<ProcessWatch>,
}

impl Read for DeadlineFd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(peer) = &self.peer {
            return self.read_watched(buf, peer.as_fd());
        }
        // Without a deadline: one blocking read, after a short poll if `spin` is set (the
        // engine's slot threads do not poll: with workers keeping both cores busy a blocking
        // read measured faster than any poll or yield-spin scheme; a worker waiting for its
        // next request and a caller waiting on a borrowed worker do).
        if let Some(deadline) = self.deadline {
            fdio::wait_readable(self.fd.as_fd(), deadline)?;
        } else if !self.spin.is_zero() {
            let _ = self.spin_for_data();
        }
        fdio::read(self.fd.as_fd(), buf)
    }
}

impl DeadlineFd {
    /// Polls (yielding) up to `spin` for data; true if some came.
    fn spin_for_data(&self) -> bool {
        let start = Instant::now();
        loop {
            if fdio::readable_now(self.fd.as_fd()) {
                return true;
            }
            if start.elapsed() >= self.spin {
                return false;
            }
            rustix::thread::sched_yield();
        }
    }

    /// A read on the non-blocking descriptor of a watched peer: what is there is read at once
    /// (one system call when a reply is waiting); otherwise the read waits, after the spin if
    /// one is set, for data, the deadline, or the peer's exit — end of file then, once what it
    /// wrote before dying is read, even while another process (a grandchild that inherited
    /// the worker's descriptors) keeps the writing end open.
    fn read_watched(&self, buf: &mut [u8], peer: std::os::fd::BorrowedFd<'_>) -> io::Result<usize> {
        let mut spun = self.deadline.is_some() || self.spin.is_zero();
        loop {
            match fdio::read(self.fd.as_fd(), buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return r,
            }
            if !spun {
                spun = true;
                if self.spin_for_data() {
                    continue;
                }
            }
            if !fdio::wait_readable_or_exit(self.fd.as_fd(), self.deadline, peer)? {
                return Ok(0);
            }
        }
    }
}

/// A [`Transport`] over a pair of stream descriptors (the same socket twice, or two pipes).
pub(crate) struct StreamTransport {
    reader: FrameReader<DeadlineFd>,
    tx: OwnedFd,
}

impl StreamTransport {
    /// Takes both descriptors (possibly the same socket twice).
    pub(crate) fn new(rx: OwnedFd, tx: OwnedFd) -> Self {
        Self {
            reader: FrameReader::with_max_frame(
                DeadlineFd {
                    fd: rx,
                    deadline: None,
                    spin: Duration::ZERO,
                    peer: None,
                },
                MAX_FRAME,
            ),
            tx,
        }
    }

    /// Parent side: watch the worker process `pid` (an unreaped child, or one the fork server
    /// keeps unreaped), so a receive or a send blocked on a full channel ends when it exits —
    /// not only when every holder of the other ends is gone. Both descriptors become
    /// non-blocking: reads and writes that cannot go on at once wait by polling.
    pub(crate) fn watch_process(&mut self, pid: u32) -> io::Result<()> {
        let watch = ProcessWatch::open(pid)?;
        fdio::set_nonblocking(self.tx.as_fd())?;
        fdio::set_nonblocking(self.reader.get_ref().fd.as_fd())?;
        self.reader.get_mut().peer = Some(watch);
        Ok(())
    }
}

impl Transport for StreamTransport {
    fn send(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let max = self.reader.max_frame();
        if total > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("message of {total} bytes exceeds the {max}-byte frame limit"),
            ));
        }
        let header: [u8; HEADER_LEN] = (total as u32).to_le_bytes();
        let mut all: [&[u8]; 4] = [&header, &[], &[], &[]];
        let n = parts.len().min(3);
        all[1..=n].copy_from_slice(&parts[..n]);
        let peer = self.reader.get_ref().peer.as_ref().map(AsFd::as_fd);
        fdio::write_all_vectored(self.tx.as_fd(), &all[..=n], peer)?;
        for rest in parts.iter().skip(3) {
            fdio::write_all_vectored(self.tx.as_fd(), &[rest], peer)?;
        }
        Ok(())
    }

    fn set_spin(&mut self, spin: Duration) {
        self.reader.get_mut().spin = spin;
    }

    fn set_max_frame(&mut self, max: usize) {
        self.reader.set_max_frame(max);
    }

    fn recv(&mut self, deadline: Option<Instant>) -> io::Result<&[u8]> {
        self.reader.get_mut().deadline = deadline;
        match self.reader.read_frame() {
            Ok(Some(frame)) => Ok(frame),
            Ok(None) | Err(FrameError::Truncated { .. }) => {
                Err(io::ErrorKind::UnexpectedEof.into())
            }
            Err(FrameError::Io(e)) => Err(e),
            // The peer's fault, not a setting to raise: say what it announced.
            Err(FrameError::TooLarge { claimed, max }) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a frame header announced {claimed} bytes, over the maximum of {max} bytes"
                ),
            )),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pair() -> (StreamTransport, StreamTransport) {
        let (r1, w1) = std::io::pipe().unwrap();
        let (r2, w2) = std::io::pipe().unwrap();
        (
            StreamTransport::new(r1.into(), w2.into()),
            StreamTransport::new(r2.into(), w1.into()),
        )
    }

    #[test]
    fn frames_keep_boundaries_and_deadlines_and_eof_are_reported() {
        let (mut a, mut b) = pair();
        b.send(&[b"he", b"llo"]).unwrap();
        b.send(&[]).unwrap();
        b.send(&[b"a", b"b", b"c", b"d", b"e"]).unwrap();
        assert_eq!(a.recv(None).unwrap(), b"hello");
        assert_eq!(a.recv(None).unwrap(), b"");
        assert_eq!(a.recv(None).unwrap(), b"abcde");
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            a.recv(Some(soon)).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        // A big frame crosses a pipe smaller than itself (a writer thread drains it).
        let big = vec![7u8; 3 << 20];
        let t = std::thread::spawn(move || {
            b.send(&[&big]).unwrap();
            b
        });
        assert_eq!(a.recv(None).unwrap().len(), 3 << 20);
        drop(t.join().unwrap());
        assert_eq!(
            a.recv(None).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn a_watched_peer_that_exits_ends_the_wait_though_its_pipe_stays_open() {
        let (r, w) = std::io::pipe().unwrap();
        let (_unused_r, tx) = std::io::pipe().unwrap();
        let mut a = StreamTransport::new(r.into(), tx.into());
        // The peer: a child that exits at once, unreaped until the end of the test.
        let mut peer = std::process::Command::new("true").spawn().unwrap();
        a.watch_process(peer.id()).unwrap();
        // What the peer wrote before dying is still delivered; `w` (held here, as a forked
        // grandchild would hold it) keeps the pipe from reaching end of file.
        let w = OwnedFd::from(w);
        fdio::write_all_vectored(w.as_fd(), &[&3u32.to_le_bytes(), b"bye"], None).unwrap();
        assert_eq!(a.recv(None).unwrap(), b"bye");
        assert_eq!(
            a.recv(None).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let later = Instant::now() + Duration::from_secs(5);
        assert_eq!(
            a.recv(Some(later)).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        // A send to it fails once the pipe is full, instead of blocking.
        let big = vec![0u8; 4 << 20];
        assert_eq!(
            a.send(&[&big]).unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        peer.wait().unwrap();
        drop(w);
    }

    #[test]
    fn a_lying_length_is_invalid_data() {
        let (mut a, b) = pair();
        fdio::write_all_vectored(b.tx.as_fd(), &[&u32::MAX.to_le_bytes()], None).unwrap();
        let err = a.recv(None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            err.to_string(),
            format!(
                "a frame header announced {} bytes, over the maximum of {MAX_FRAME} bytes",
                u32::MAX
            )
        );
    }
}
