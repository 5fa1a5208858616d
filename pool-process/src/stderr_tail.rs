//! The last lines of a worker's stderr, kept while forwarding it to the parent's stderr.
//!
//! One thread per worker drains the worker's stderr pipe: every chunk is written through to
//! the parent's stderr at once and appended to a small ring (the last [`TAIL_BYTES`] bytes).
//! When the worker dies, the supervisor waits a short, bounded time for the pipe's end of
//! file (the worker's whole process group was killed, so nobody else holds it) and quotes the
//! last [`TAIL_LINES`] lines in the `WorkerDied` error.
//!
//! The quote leaves out what the worker wrote before the dying task (or the run of
//! back-to-back tasks it belongs to) began: the supervisor marks the stream when the worker
//! starts a task ([`StderrTail::mark_task_start`]). The mark counts the bytes drained so far plus those
//! still waiting in the pipe (`FIONREAD`): the mark is set only when a request goes to an
//! idle worker, so everything it wrote before is one or the other — the draining thread reads
//! and counts under the lock the mark takes, so no byte is between the two. A task sent behind others
//! (pipelining) starts the moment the worker has answered the one before it, which the
//! parent learns on another descriptor, possibly after the new task's first lines were
//! drained: its quote therefore starts where the run of back-to-back tasks began. The last
//! lines are still the dying task's; earlier ones may be its predecessors', and the dying
//! task's own lines are never cut off.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes of stderr kept per worker.
pub(crate) const TAIL_BYTES: usize = 4096;
/// Lines quoted in a death report.
pub(crate) const TAIL_LINES: usize = 20;

#[derive(Default)]
struct State {
    ring: VecDeque<u8>,
    /// Bytes drained since the start (the ring holds the last of them).
    total: u64,
    /// Where the current task's output starts, in the same count as `total`.
    task_start: Option<u64>,
    closed: bool,
}

/// Shared between the draining thread and the supervisor.
#[derive(Default)]
pub(crate) struct StderrTail {
    state: Mutex<State>,
    closed: Condvar,
    /// The pipe's read end (a duplicate), to count what is written but not drained yet.
    pipe: Option<OwnedFd>,
}

impl StderrTail {
    /// Starts draining `source` on a new thread.
    pub(crate) fn spawn(
        source: impl Read + AsFd + Send + 'static,
        worker: u64,
        forward: bool,
    ) -> std::io::Result<(Arc<Self>, JoinHandle<()>)> {
        let tail = Arc::new(Self {
            pipe: source.as_fd().try_clone_to_owned().ok(),
            ..Self::default()
        });
        let t = Arc::clone(&tail);
        let handle = std::thread::Builder::new()
            .name(format!("pool-w{worker}-stderr"))
            .spawn(move || t.drain(source, forward))?;
        Ok((tail, handle))
    }

    fn drain(&self, mut source: impl Read + AsFd, forward: bool) {
        let mut buf = [0u8; 4096];
        loop {
            // Wait for bytes without the lock, then read and count them under it: a mark
            // (which reads the pipe's pending count under the same lock) sees every byte
            // either still in the pipe or counted, never in between.
            let mut fds = [rustix::event::PollFd::new(
                &source,
                rustix::event::PollFlags::IN,
            )];
            match rustix::event::poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => break,
            }
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    Self::push(&mut st, &buf[..n]);
                    drop(st);
                    if forward {
                        let _ = std::io::stderr().write_all(&buf[..n]);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.closed = true;
        self.closed.notify_all();
    }

    fn push(st: &mut State, bytes: &[u8]) {
        st.total += bytes.len() as u64;
        let bytes = &bytes[bytes.len().saturating_sub(TAIL_BYTES)..];
        let over = (st.ring.len() + bytes.len()).saturating_sub(TAIL_BYTES);
        st.ring.drain(..over);
        st.ring.extend(bytes);
    }

    /// An idle worker (nothing in flight, so all it wrote before is drained or in the pipe)
    /// starts a task now: the death report quotes only what comes after.
    pub(crate) fn mark_task_start(&self) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let pending = match &self.pipe {
            Some(fd) => rustix::io::ioctl_fionread(fd).unwrap_or(0),
            None => 0,
        };
        st.task_start = Some(st.total + pending);
    }

    /// The last lines, after waiting up to `wait` for the stream to close.
    pub(crate) fn tail(&self, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !st.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            st = self
                .closed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        // The ring holds bytes `total - ring.len() .. total`; skip those before the task.
        let ring_start = st.total - st.ring.len() as u64;
        let skip = st.task_start.map_or(0, |m| {
            m.saturating_sub(ring_start).min(st.ring.len() as u64) as usize
        });
        let bytes: Vec<u8> = st.ring.iter().skip(skip).copied().collect();
        drop(st);
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.trim_end_matches('\n').lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }

    /// Whether the stream reached end of file.
    pub(crate) fn is_closed(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipe holding `bytes` (less than a pipe's 64 KiB), its writing end closed.
    fn piped(bytes: &[u8]) -> std::io::PipeReader {
        let (r, mut w) = std::io::pipe().unwrap();
        w.write_all(bytes).unwrap();
        r
    }

    #[test]
    fn keeps_last_lines_and_bytes() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let (tail, handle) = StderrTail::spawn(piped(text.as_bytes()), 0, false).unwrap();
        handle.join().unwrap();
        let t = tail.tail(Duration::from_secs(1));
        assert!(tail.is_closed());
        assert_eq!(t.lines().count(), TAIL_LINES);
        assert!(t.ends_with("line 99"));
        let big = vec![b'x'; 3 * TAIL_BYTES];
        let (tail, handle) = StderrTail::spawn(piped(&big), 1, false).unwrap();
        handle.join().unwrap();
        assert_eq!(tail.tail(Duration::ZERO).len(), TAIL_BYTES);
    }

    #[test]
    fn the_quote_starts_at_the_task() {
        let (r, mut w) = std::io::pipe().unwrap();
        let (tail, handle) = StderrTail::spawn(r, 2, false).unwrap();
        w.write_all(b"earlier task\n").unwrap();
        // Marked while the earlier output may still sit in the pipe: it counts as before.
        tail.mark_task_start();
        w.write_all(b"dying task\n").unwrap();
        drop(w);
        handle.join().unwrap();
        assert_eq!(tail.tail(Duration::ZERO), "dying task");
        // Nothing after the mark: an empty quote.
        let (r, mut w) = std::io::pipe().unwrap();
        let (tail, handle) = StderrTail::spawn(r, 3, false).unwrap();
        w.write_all(b"earlier task\n").unwrap();
        tail.mark_task_start();
        drop(w);
        handle.join().unwrap();
        assert_eq!(tail.tail(Duration::ZERO), "");
    }
}
