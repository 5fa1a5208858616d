//! A worker's start: launch, transport assembly and the handshake (HELLO, SETUP, READY),
//! and the descriptions of what a worker reports when a hook or the handshake fails.

use std::io;
use std::sync::Arc;
use std::time::Instant;

use crate::forkserver;
use crate::protocol::{Detail, Outcome, PROTOCOL_VERSION, PanicRecord, Reply, WorkerSpec};
use crate::stderr_tail::StderrTail;
use crate::sys::exe::self_exe;
use crate::sys::proc;
use crate::transfer;
use crate::transport::shm::{ShmOptions, ShmTransport};
use crate::transport::{self, Flavor, SocketListener, Transport, TransportKind};

use super::child::*;
use super::launch::*;
use super::*;

/// Finds each wanted name (with the pool's codec) in the worker's registry.
pub(super) fn map_named(
    wanted: &[String],
    offered: &[(String, String)],
    codec: &str,
) -> Result<Vec<u32>, String> {
    let mut map = Vec::with_capacity(wanted.len());
    let mut missing = Vec::new();
    for name in wanted {
        match offered.iter().position(|(n, _)| n == name) {
            Some(i) if offered[i].1 == codec => map.push(i as u32),
            Some(i) => missing.push(format!(
                "{name:?} (registered with codec {:?}, the pool uses {codec:?})",
                offered[i].1
            )),
            None => missing.push(format!("{name:?}")),
        }
    }
    if missing.is_empty() {
        Ok(map)
    } else {
        let available: Vec<String> = offered
            .iter()
            .map(|(n, c)| format!("{n:?} ({c})"))
            .collect();
        Err(format!(
            "the worker binary does not serve the named task(s) {}; it registers: {}",
            missing.join(", "),
            if available.is_empty() {
                "none".to_owned()
            } else {
                available.join(", ")
            }
        ))
    }
}

/// A task's panic detail in words (the tests' reading of a reply).
#[cfg(test)]
pub(super) fn describe_panic(detail: &[u8]) -> String {
    describe_panic_record(PanicRecord::read(detail))
}

fn describe_panic_record(record: Option<PanicRecord>) -> String {
    match record {
        Some(p) => match p.location {
            Some(loc) => format!("panicked at {loc}: {}", p.message),
            None => format!("panicked: {}", p.message),
        },
        None => "panicked".to_owned(),
    }
}

/// A hook's failure (outcome byte + detail) in words.
pub(crate) fn describe_hook_failure(outcome: Outcome, detail: &[u8]) -> String {
    let (what, failure) = match Detail::read(outcome, detail) {
        Detail::Value(_) => return "succeeded".to_owned(),
        Detail::Panicked(record) => return describe_panic_record(record),
        Detail::Failed(message) => return message.unwrap_or_else(|| "failed".to_owned()),
        Detail::DecodeFailed(failure) => ("decode its argument", failure),
        Detail::EncodeFailed(failure) => ("encode its result", failure),
    };
    format!(
        "could not {what} of type {} with codec {}: {}",
        failure.type_name, failure.codec, failure.message
    )
}

/// The start failure of a worker that sent a frame its transport refused (a header
/// announcing more than the maximum, a corrupt shared-memory ring): kills and reaps it, and
/// says what it sent (`fail` adds worker id, pid, exit and stderr tail).
pub(super) fn corrupt_frame(
    w: &WorkerProcess,
    fail: &impl Fn(&ChildCell, &StderrTail, &str) -> String,
    e: &io::Error,
) -> String {
    fail(
        &w.cell,
        &w.stderr,
        &format!("broke the protocol during the handshake: {e}; it was killed"),
    )
}

impl WorkerProcess {
    /// Spawns worker `id` and runs the handshake (and the initializer) to completion.
    pub(crate) fn start(cfg: &StartConfig, id: u64) -> Result<Self, StartFailure> {
        let deadline = Instant::now() + cfg.start_timeout;
        let exe = self_exe().map_err(StartFailure::Spawn)?;
        // The transport, chosen once: what the parent prepares for it, and the flavor the
        // worker is told.
        let (flavor, listener, shm) = match cfg.transport {
            TransportKind::Pipe => (Flavor::Pipe, None, None),
            TransportKind::LocalSocket => {
                let l = SocketListener::bind().map_err(|e| {
                    StartFailure::Spawn(format!("cannot bind a local socket for the worker: {e}"))
                })?;
                (Flavor::Socket(l.address()), Some(l), None)
            }
            TransportKind::Shm => {
                let shm = ShmTransport::create(&ShmOptions::new()).map_err(|e| {
                    StartFailure::Spawn(format!("cannot create a shared-memory channel: {e}"))
                })?;
                (Flavor::Shm, None, Some(shm))
            }
        };
        let mut spec = WorkerSpec {
            version: PROTOCOL_VERSION,
            parent: proc::own_pid(),
            ppid: proc::own_pid(),
            identity: exe.identity,
            anchor_delta: transfer::anchor_delta(),
            worker_id: id,
            named_only: cfg.named.is_some(),
            transport: flavor,
        };
        let (shm_side, shm_file) = match shm {
            Some((side, file)) => (Some(side), Some(file)),
            None => (None, None),
        };
        let stdio = match shm_file {
            Some(file) => Stdio01::Shm(file),
            None if listener.is_some() => Stdio01::Null,
            None => Stdio01::Pipes,
        };
        let forked = if cfg.start_method == StartMethod::ForkServer && cfg.program.is_none() {
            match forkserver::server(deadline) {
                Ok(server) => {
                    spec.ppid = server.pid();
                    let launched = launch_forked(cfg, &server, &spec, stdio, deadline);
                    spec.ppid = spec.parent;
                    launched
                }
                Err(why) => {
                    log_unavailable(&why);
                    Err(stdio)
                }
            }
        } else {
            Err(stdio)
        };
        let Launched {
            cell,
            pipes,
            stderr: stderr_pipe,
        } = match forked {
            Ok(l) => l,
            Err(stdio) => launch_spawn(cfg, exe, &spec, stdio).map_err(StartFailure::Spawn)?,
        };
        let pid = cell.pid;
        let (stdin, stdout) = match pipes {
            Some((i, o)) => (Some(i), Some(o)),
            None => (None, None),
        };
        let (stderr, stderr_thread) =
            match stderr_pipe.map(|s| StderrTail::spawn(std::fs::File::from(s), id, true)) {
                Some(Ok((t, h))) => (t, Some(h)),
                _ => (Arc::new(StderrTail::default()), None),
            };
        let fail = |cell: &ChildCell, stderr: &StderrTail, what: &str| {
            let exit = Exit::of(cell.reap());
            let tail = stderr.tail(STDERR_GRACE);
            let tail = if tail.is_empty() {
                String::new()
            } else {
                format!("; its stderr ends with:\n{tail}")
            };
            format!("worker #{id} (pid {pid}) {what} ({exit}){tail}")
        };
        let mut transport: Box<dyn Transport> = match (listener, stdin, stdout) {
            _ if shm_side.is_some() => {
                let mut side = shm_side.expect("checked");
                if let Err(e) = side.watch_process(pid) {
                    return Err(StartFailure::Spawn(fail(
                        &cell,
                        &stderr,
                        &format!("cannot be watched (pidfd): {e}"),
                    )));
                }
                Box::new(side)
            }
            (Some(l), _, _) => {
                let gone = || {
                    cell.try_reap()
                        .map(|s| format!("worker exited: {}", Exit::of(Some(s))))
                };
                match l.accept(deadline, gone).and_then(|mut t| {
                    t.watch_process(pid)?;
                    Ok(t)
                }) {
                    Ok(t) => Box::new(t),
                    Err(e) => {
                        return Err(StartFailure::Spawn(fail(
                            &cell,
                            &stderr,
                            &format!("never connected its local socket: {e}"),
                        )));
                    }
                }
            }
            (None, Some(i), Some(o)) => {
                let mut t = transport::pipe_parent_side(i, o);
                if let Err(e) = t.watch_process(pid) {
                    return Err(StartFailure::Spawn(fail(
                        &cell,
                        &stderr,
                        &format!("cannot be watched (pidfd): {e}"),
                    )));
                }
                Box::new(t)
            }
            _ => {
                return Err(StartFailure::Spawn(fail(&cell, &stderr, "has no pipes")));
            }
        };
        // The pool's frame limit, both ways; the worker sets the same from SETUP.
        transport.set_max_frame(cfg.setup.max_frame);
        let mut w = Self {
            id,
            cell,
            transport,
            stderr,
            stderr_thread,
            dead: None,
            named_map: Vec::new(),
            next_seq: 1,
            oldest: 1,
        };

        // SETUP goes out at once, without waiting for HELLO (one round trip less at start):
        // the worker reads it only after its own identity checks, so nothing is resolved
        // early, and a refusing worker never reads it.
        let setup_sent = w.transport.send(&[&cfg.setup.encode()]).is_ok();

        // HELLO. An answer found only after the deadline (the parent was slow to look) is late
        // all the same: the start timeout holds whatever the machine's load.
        let received = match w.transport.recv(Some(deadline)) {
            Ok(_) if Instant::now() > deadline => Err(io::ErrorKind::TimedOut.into()),
            r => r,
        };
        let hello = match received.map(Reply::parse) {
            Ok(Ok(Reply::Hello(hello))) => Some(hello),
            Ok(_) => None,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(StartFailure::Handshake(corrupt_frame(&w, &fail, &e)));
            }
            Err(e) => {
                let what = if e.kind() == io::ErrorKind::TimedOut {
                    "did not answer the handshake in time"
                } else {
                    "exited before the handshake"
                };
                return Err(StartFailure::Spawn(fail(&w.cell, &w.stderr, what)));
            }
        };
        let hello = hello.ok_or_else(|| {
            StartFailure::Handshake(fail(&w.cell, &w.stderr, "sent a malformed HELLO"))
        })?;
        let named_only = cfg.named.is_some();
        let mismatch = if let Some(why) = &hello.refusal {
            Some(why.clone())
        } else if hello.version != PROTOCOL_VERSION {
            Some(format!(
                "protocol version {} (worker) vs {PROTOCOL_VERSION} (parent)",
                hello.version
            ))
        } else if named_only {
            None
        } else if hello.identity != exe.identity.to_string() {
            Some(format!(
                "the worker runs a different executable ({}) than the parent ({})",
                hello.identity, exe.identity
            ))
        } else if hello.anchor_delta != transfer::anchor_delta() {
            Some("the worker's code layout differs from the parent's".to_owned())
        } else {
            None
        };
        let named_map = match &cfg.named {
            Some(wanted) => match map_named(wanted, &hello.tasks, &cfg.codec_name) {
                Ok(map) => map,
                Err(why) => {
                    let msg = fail(&w.cell, &w.stderr, "lacks named tasks");
                    return Err(StartFailure::Handshake(format!("{why}; {msg}")));
                }
            },
            None => Vec::new(),
        };
        w.named_map = named_map;
        if let Some(why) = mismatch {
            let msg = fail(&w.cell, &w.stderr, "is not the same build as the parent");
            return Err(StartFailure::Handshake(format!(
                "{why}. Functions can only be sent to the identical build of the program \
                 (did the executable change, or is `worker_program` a different binary?). \
                 Details: {msg}"
            )));
        }

        // READY
        if !setup_sent {
            return Err(StartFailure::Spawn(fail(
                &w.cell,
                &w.stderr,
                "exited during the handshake",
            )));
        }
        let has_init = cfg.setup.init.is_some();
        let ready = match w.transport.recv(Some(deadline)).map(Reply::parse) {
            Ok(Ok(Reply::Ready(r))) => Some((r.codec, r.outcome, r.detail.to_vec())),
            Ok(_) => None,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(StartFailure::Handshake(corrupt_frame(&w, &fail, &e)));
            }
            Err(e) => {
                let what = match (e.kind() == io::ErrorKind::TimedOut, has_init) {
                    (true, true) => "did not finish its initializer in time",
                    (true, false) => "did not finish the handshake in time",
                    (false, true) => "died in its initializer",
                    (false, false) => "exited during the handshake",
                };
                let msg = fail(&w.cell, &w.stderr, what);
                return Err(if has_init {
                    StartFailure::Initializer(msg)
                } else {
                    StartFailure::Spawn(msg)
                });
            }
        };
        let (codec, outcome, detail) = ready.ok_or_else(|| {
            StartFailure::Handshake(fail(&w.cell, &w.stderr, "sent a malformed READY"))
        })?;
        if !named_only && codec != cfg.codec_name {
            let msg = fail(&w.cell, &w.stderr, "disagrees on the codec");
            return Err(StartFailure::Handshake(format!(
                "codec mismatch: the parent uses {:?}, the worker {codec:?}; {msg}",
                cfg.codec_name
            )));
        }
        if outcome != Outcome::Ok {
            let why = describe_hook_failure(outcome, &detail);
            let _ = fail(&w.cell, &w.stderr, "stopped");
            return Err(StartFailure::Initializer(format!(
                "the initializer failed in worker #{id} (pid {pid}): {why}"
            )));
        }
        Ok(w)
    }
}
