//! The last lines of a worker's stderr, kept while forwarding it to the parent's stderr.
//!
//! One thread per worker drains the worker's stderr pipe: every chunk is written through to
//! the parent's stderr at once and appended to a small ring (the last [`TAIL_BYTES`] bytes).
//! When the worker dies, the supervisor waits a short, bounded time for the pipe's end of
//! file (the worker's whole process group was killed, so nobody else holds it) and quotes the
//! last [`TAIL_LINES`] lines in the `WorkerDied` error.

use std::collections::VecDeque;
use std::io::{Read, Write};
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
    closed: bool,
}

/// Shared between the draining thread and the supervisor.
#[derive(Default)]
pub(crate) struct StderrTail {
    state: Mutex<State>,
    closed: Condvar,
}

impl StderrTail {
    /// Starts draining `source` on a new thread.
    pub(crate) fn spawn(
        source: impl Read + Send + 'static,
        worker: u64,
        forward: bool,
    ) -> std::io::Result<(Arc<Self>, JoinHandle<()>)> {
        let tail = Arc::new(Self::default());
        let t = Arc::clone(&tail);
        let handle = std::thread::Builder::new()
            .name(format!("pool-w{worker}-stderr"))
            .spawn(move || t.drain(source, forward))?;
        Ok((tail, handle))
    }

    fn drain(&self, mut source: impl Read, forward: bool) {
        let mut buf = [0u8; 4096];
        loop {
            match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if forward {
                        let _ = std::io::stderr().write_all(&buf[..n]);
                    }
                    self.push(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.closed = true;
        self.closed.notify_all();
    }

    fn push(&self, bytes: &[u8]) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = &bytes[bytes.len().saturating_sub(TAIL_BYTES)..];
        let over = (st.ring.len() + bytes.len()).saturating_sub(TAIL_BYTES);
        st.ring.drain(..over);
        st.ring.extend(bytes);
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
        let bytes: Vec<u8> = st.ring.iter().copied().collect();
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

    #[test]
    fn keeps_last_lines_and_bytes() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let (tail, handle) =
            StderrTail::spawn(std::io::Cursor::new(text.into_bytes()), 0, false).unwrap();
        handle.join().unwrap();
        let t = tail.tail(Duration::from_secs(1));
        assert!(tail.is_closed());
        assert_eq!(t.lines().count(), TAIL_LINES);
        assert!(t.ends_with("line 99"));
        let big = vec![b'x'; 3 * TAIL_BYTES];
        let (tail, handle) = StderrTail::spawn(std::io::Cursor::new(big), 1, false).unwrap();
        handle.join().unwrap();
        assert_eq!(tail.tail(Duration::ZERO).len(), TAIL_BYTES);
    }
}
