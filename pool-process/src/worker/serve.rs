//! The worker's life: checks, handshake, request loop, clean stop.

use std::ffi::CString;
use std::io;

use super::panics;
use super::protocol::{
    HELLO, Hello, PROTOCOL_VERSION, READY, REPLY, STOP, STOPPED, Setup, TASK, TASK_HEADER,
    WorkerSpec,
};
use crate::sys::exe::BuildIdentity;
use crate::sys::{proc, signals};
use crate::transfer::{self, FnRef, Outcome};
use crate::transport::{self, StreamTransport, Transport};
use crate::wire::Put;

/// How a worker's life ended, as an exit code.
pub(crate) enum End {
    /// Clean: STOP handled, or the parent closed the channel.
    Clean,
    /// The worker could not start or the handshake failed; the message goes to stderr.
    Failed(String),
}

/// Runs a worker described by the environment value; returns how it ended.
pub(crate) fn serve(env_value: &str) -> End {
    match serve_inner(env_value) {
        Ok(()) => End::Clean,
        Err(message) => End::Failed(message),
    }
}

fn serve_inner(env_value: &str) -> Result<(), String> {
    signals::ignore_sigpipe();
    let spec = WorkerSpec::decode(env_value)
        .ok_or_else(|| format!("malformed worker environment value {env_value:?}"))?;
    if let Ok(name) = CString::new(format!("pool-w{}", spec.worker_id)) {
        let _ = rustix::thread::set_name(&name);
    }
    proc::become_group_leader();
    signals::die_with_parent(spec.parent)?;
    panics::install_hook();

    let mut transport = if spec.transport == "pipe" {
        transport::pipe_worker_side()
    } else {
        transport::connect_worker(&spec.transport)
    }
    .map_err(|e| format!("cannot open the control channel ({}): {e}", spec.transport))?;

    // Identity: compare before any offset is resolved (the transfer invariant).
    let mine = BuildIdentity::current()
        .map_err(|e| format!("cannot stat this worker's executable: {e}"))?;
    let delta = transfer::anchor_delta();
    let refusal = if spec.version != PROTOCOL_VERSION {
        Some(format!(
            "protocol version {} (worker) vs {} (parent)",
            PROTOCOL_VERSION, spec.version
        ))
    } else if mine != spec.identity {
        Some(format!(
            "the worker runs a different executable ({mine}) than the parent ({})",
            spec.identity
        ))
    } else if delta != spec.anchor_delta {
        Some(format!(
            "code layout differs (anchor distance {delta} in the worker, {} in the parent)",
            spec.anchor_delta
        ))
    } else {
        None
    };
    let hello = Hello {
        version: PROTOCOL_VERSION,
        pid: proc::own_pid(),
        identity: mine.to_string(),
        anchor_delta: delta,
        refusal: refusal.clone(),
    };
    send(&mut transport, &[&hello.encode()])?;
    debug_assert_eq!(hello.encode()[0], HELLO);
    if let Some(why) = refusal {
        return Err(format!("refusing to serve: {why}"));
    }

    let setup = match transport.recv(None) {
        Ok(frame) => Setup::decode(frame).ok_or("malformed SETUP message")?,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
        Err(e) => return Err(format!("reading SETUP: {e}")),
    };
    let mut out = Vec::with_capacity(4096);
    // SAFETY: identity, anchor distance and protocol version were checked above.
    let probe = unsafe { setup.probe.resolve() };
    probe(&[], &mut out);
    let mut ready = vec![READY];
    ready.extend_from_slice(&out);
    out.clear();
    let init_outcome = match &setup.init {
        Some(h) => {
            // SAFETY: as for the probe.
            let hook = unsafe { h.f.resolve() };
            hook(&h.arg, &mut out)
        }
        None => Outcome::Ok,
    };
    ready.put_u8(init_outcome as u8);
    ready.extend_from_slice(&out);
    send(&mut transport, &[&ready])?;
    if init_outcome != Outcome::Ok {
        return Ok(());
    }

    loop {
        out.clear();
        let outcome = match transport.recv(None) {
            Ok(frame) if frame.len() >= TASK_HEADER && frame[0] == TASK => {
                let mut offset = [0u8; 8];
                offset.copy_from_slice(&frame[1..TASK_HEADER]);
                // SAFETY: the reference was made by the parent that passed the identity
                // checks above (same build).
                let trampoline = unsafe { FnRef(i64::from_le_bytes(offset)).resolve() };
                trampoline(&frame[TASK_HEADER..], &mut out)
            }
            Ok(frame) if frame.first() == Some(&STOP) => break,
            Ok(frame) => {
                return Err(format!(
                    "unexpected message kind {:?} from the parent",
                    frame.first()
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(format!("reading a request: {e}")),
        };
        send(&mut transport, &[&[REPLY, outcome as u8], &out])?;
    }

    out.clear();
    let fin_outcome = match &setup.fin {
        Some(h) => {
            // SAFETY: as for the probe.
            let hook = unsafe { h.f.resolve() };
            hook(&h.arg, &mut out)
        }
        None => Outcome::Ok,
    };
    let _ = transport.send(&[&[STOPPED, fin_outcome as u8], &out]);
    Ok(())
}

fn send(t: &mut StreamTransport, parts: &[&[u8]]) -> Result<(), String> {
    t.send(parts)
        .map_err(|e| format!("writing to the parent failed: {e}"))
}
