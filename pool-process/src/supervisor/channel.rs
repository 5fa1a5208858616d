//! The sequenced call channel to a started worker: requests numbered and pipelined, replies
//! checked against them, the death report when the worker dies, and the clean stop.

use std::io;
use std::time::{Duration, Instant};

use crate::protocol::{
    MAX_REQUEST_HEADER, Malformed, Outcome, REPLY, Reply, STOP_REQUEST, stamp_seq,
};

use super::handshake::*;
use super::*;

impl WorkerProcess {
    /// Sends one request (`parts` concatenated), waits for its reply and hands the reply's
    /// outcome and payload to `on_reply`.
    pub(crate) fn call<T>(
        &mut self,
        parts: &[&[u8]],
        deadline: Option<Instant>,
        on_reply: impl FnOnce(Outcome, &[u8]) -> T,
    ) -> Result<T, CallFailure> {
        if let Some(d) = &self.dead {
            return Err(CallFailure::Died(d.clone()));
        }
        if self.send_request(parts).is_err() {
            return Err(CallFailure::Died(self.bury()));
        }
        self.recv_reply(deadline, on_reply)
    }

    /// Sends one request (`parts` concatenated; `parts[0]` is a request header from
    /// `protocol::task_header` or `named_header`) without waiting for its reply. The header
    /// goes out with this worker's next sequence number. A failure means the worker is gone;
    /// it is not buried here, so the replies it sent before dying can still be read with
    /// `recv_reply`.
    pub(crate) fn send_request(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        if self.dead.is_some() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let mut buf = [0u8; MAX_REQUEST_HEADER];
        let (header, body) = match parts {
            [header, body] => (*header, *body),
            [header] => (*header, &[][..]),
            _ => return Err(io::ErrorKind::InvalidInput.into()),
        };
        let header =
            stamp_seq(header, self.next_seq, &mut buf).ok_or(io::ErrorKind::InvalidInput)?;
        if self.oldest == self.next_seq {
            // The worker is idle and starts this task at once.
            self.stderr.mark_task_start();
        }
        self.transport.send(&[header, body])?;
        self.next_seq += 1;
        Ok(())
    }

    /// Waits for the next reply (replies come in request order) and hands its outcome and
    /// payload to `on_reply`. A reply whose sequence number is not the oldest request's is a
    /// protocol violation: the worker is killed and the call fails (with a note saying so
    /// in the death's stderr tail); the reply is never delivered.
    pub(crate) fn recv_reply<T>(
        &mut self,
        deadline: Option<Instant>,
        on_reply: impl FnOnce(Outcome, &[u8]) -> T,
    ) -> Result<T, CallFailure> {
        if let Some(d) = &self.dead {
            return Err(CallFailure::Died(d.clone()));
        }
        let expected = (self.oldest < self.next_seq).then_some(self.oldest);
        /// What came instead of the reply.
        enum Wrong {
            Violation(String),
            Io(io::Error),
        }
        let got = match self.transport.recv(deadline) {
            Ok(frame) => match Reply::parse(frame) {
                Ok(Reply::Task {
                    seq,
                    outcome,
                    payload,
                }) if Some(seq) == expected => Ok(on_reply(outcome, payload)),
                Ok(Reply::Task { seq, .. }) => Err(Wrong::Violation(format!(
                    "replied with sequence number {seq} while {}; the reply was discarded",
                    match expected {
                        Some(e) => format!("the oldest task in flight has {e}"),
                        None => "no task was in flight".to_owned(),
                    }
                ))),
                Err(Malformed { kind: Some(REPLY) }) => {
                    Err(Wrong::Violation("sent a malformed reply".to_owned()))
                }
                other => Err(Wrong::Violation(format!(
                    "sent {} where a task's reply was expected",
                    match other.map_or_else(|m| m.kind, |r| Some(r.kind())) {
                        Some(k) => format!("a message of kind {k:#04x}"),
                        None => "an empty message".to_owned(),
                    }
                ))),
            },
            Err(e) => Err(Wrong::Io(e)),
        };
        match got {
            Ok(value) => {
                // A next request in flight keeps the current mark (see `stderr_tail`).
                self.oldest += 1;
                Ok(value)
            }
            Err(Wrong::Violation(v)) => Err(CallFailure::Died(self.bury_for(Some(&v)))),
            Err(Wrong::Io(e)) if e.kind() == io::ErrorKind::TimedOut => {
                Err(CallFailure::TimedOut(self.bury()))
            }
            Err(Wrong::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
                let v = format!("sent a corrupt frame: {e}");
                Err(CallFailure::Died(self.bury_for(Some(&v))))
            }
            Err(Wrong::Io(_)) => Err(CallFailure::Died(self.bury())),
        }
    }

    /// Kills, reaps, and records the death (idempotent).
    pub(crate) fn bury(&mut self) -> Death {
        self.bury_for(None)
    }

    /// Like [`bury`](Self::bury); `violation` (what the worker did wrong, if that is why it
    /// is killed) becomes the last line of the death's stderr tail, with worker id and pid.
    fn bury_for(&mut self, violation: Option<&str>) -> Death {
        if let Some(d) = &self.dead {
            return d.clone();
        }
        let exit = Exit::of(self.cell.reap());
        let mut stderr_tail = self.stderr.tail(STDERR_GRACE);
        let mut note = |line: &str| {
            if !stderr_tail.is_empty() && !stderr_tail.ends_with('\n') {
                stderr_tail.push('\n');
            }
            stderr_tail.push_str(line);
        };
        if self.cell.server_died() {
            note("pool-process: the fork server died; its workers were killed with it");
        }
        if let Some(v) = violation {
            note(&format!(
                "pool-process: protocol violation: worker #{} (pid {}) {v}; it was killed",
                self.id, self.cell.pid
            ));
        }
        let death = Death {
            pid: self.cell.pid,
            exit,
            stderr_tail,
        };
        self.dead = Some(death.clone());
        death
    }

    /// Asks for a clean exit (the finalizer runs), waits until `deadline`, then kills.
    /// Returns the finalizer's failure, if any.
    pub(crate) fn stop(mut self, deadline: Instant) -> Result<(), String> {
        if self.dead.is_some() {
            return Ok(());
        }
        let mut result = Ok(());
        self.stderr.mark_task_start();
        if self.transport.send(&[&STOP_REQUEST]).is_ok() {
            match self.transport.recv(Some(deadline)).map(Reply::parse) {
                Ok(Ok(Reply::Stopped { outcome, detail })) if outcome != Outcome::Ok => {
                    result = Err(format!(
                        "the finalizer failed in worker #{} (pid {}): {}",
                        self.id,
                        self.cell.pid,
                        describe_hook_failure(outcome, detail)
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    result = Err(format!(
                        "worker #{} (pid {}) did not finish its finalizer in time and was killed",
                        self.id, self.cell.pid
                    ));
                }
                Err(_) => {
                    let death = self.bury();
                    result = Err(format!(
                        "worker #{} (pid {}) died while stopping ({})",
                        self.id, self.cell.pid, death.exit
                    ));
                }
            }
        }
        // Give it until the deadline to exit by itself.
        while self.cell.try_reap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.bury();
        result
    }
}
