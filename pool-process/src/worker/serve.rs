//! The worker's life: checks, handshake, request loop, clean stop.

use std::ffi::CString;
use std::io;
use std::time::Duration;

use super::panics;
use crate::forkserver;
use crate::named;
use crate::protocol::{
    Hello, Outcome, PROTOCOL_VERSION, REPLY_HEADER, Request, Setup, WorkerSpec, ready_frame,
    reply_header, stopped_header, write_codec_failure, write_codec_name, write_failure,
};
use crate::sys::{fdio, malloc, proc, signals};
use crate::transfer::{SameBinary, ThisBuild};
use crate::transport::{self, Flavor, Transport};

/// How a worker's life ended, as an exit code.
pub(crate) enum End {
    /// Clean: STOP handled.
    Clean,
    /// The parent closed the channel: it is gone, or it dropped this worker (and kills its
    /// process tree anyway).
    ChannelClosed,
    /// The worker could not start or the handshake failed; the message goes to stderr.
    Failed(String),
}

/// Runs a worker described by the environment value; returns how it ended.
pub(crate) fn serve(env_value: &str) -> End {
    match serve_inner(env_value) {
        Ok(Ended::Stopped) => End::Clean,
        Ok(Ended::ChannelClosed) => End::ChannelClosed,
        Err(message) => End::Failed(message),
    }
}

/// How `serve_inner` ended without an error.
enum Ended {
    Stopped,
    ChannelClosed,
}

fn serve_inner(env_value: &str) -> Result<Ended, String> {
    signals::ignore_sigpipe();
    // Big task buffers stay in the heap between tasks (see sys/malloc.rs).
    malloc::tune_for_worker();
    let spec = WorkerSpec::decode(env_value)
        .ok_or_else(|| format!("malformed worker environment value {env_value:?}"))?;
    if let Ok(name) = CString::new(format!("pool-w{}", spec.worker_id)) {
        let _ = rustix::thread::set_name(&name);
    }
    proc::become_group_leader();
    signals::die_with_parent(spec.ppid)?;
    panics::install_hook();

    let opened: io::Result<Box<dyn Transport>> = match &spec.transport {
        Flavor::Pipe => transport::pipe_worker_side().map(|t| Box::new(t) as Box<dyn Transport>),
        Flavor::Shm if spec.ppid == spec.parent => {
            transport::shm_worker_side(spec.parent).map(|t| Box::new(t) as Box<dyn Transport>)
        }
        Flavor::Shm => forked_shm_side(&spec).map(|t| Box::new(t) as Box<dyn Transport>),
        Flavor::Socket(address) => {
            transport::connect_worker(address).map(|t| Box::new(t) as Box<dyn Transport>)
        }
    };
    let mut transport = opened.map_err(|e| {
        format!(
            "cannot open the control channel ({}): {e}",
            spec.transport.to_wire()
        )
    })?;

    // Identity: compare before any offset is resolved (the transfer invariant).
    let this =
        ThisBuild::measure().map_err(|e| format!("cannot stat this worker's executable: {e}"))?;
    let version_mismatch = (spec.version != PROTOCOL_VERSION).then(|| {
        format!(
            "protocol version {} (worker) vs {} (parent)",
            PROTOCOL_VERSION, spec.version
        )
    });
    let same_binary = SameBinary::verify(&this, &spec.identity, spec.anchor_delta);
    let refusal = match (version_mismatch, &same_binary) {
        (Some(v), _) => Some(v),
        (None, Err(b)) if !spec.named_only => Some(b.clone()),
        _ => None,
    };
    // Function offsets are resolved only by a worker of the identical build that was not
    // told to run named tasks only.
    let same_binary = same_binary.ok().filter(|_| !spec.named_only);
    let hello = Hello {
        version: PROTOCOL_VERSION,
        pid: proc::own_pid(),
        identity: this.identity().to_string(),
        anchor_delta: this.anchor_delta(),
        refusal: refusal.clone(),
        tasks: named::registry()
            .iter()
            .map(|t| (t.name.to_owned(), (t.codec)()))
            .collect(),
    };
    send(&mut transport, &[&hello.encode()])?;
    if let Some(why) = refusal {
        return Err(format!("refusing to serve: {why}"));
    }

    let setup = match transport.recv(None) {
        Ok(frame) => Setup::decode(frame).ok_or("malformed SETUP message")?,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Ended::ChannelClosed),
        Err(e) => return Err(format!("reading SETUP: {e}")),
    };
    transport.set_max_frame(setup.max_frame);
    let max_frame = setup.max_frame;
    let mut out = Vec::with_capacity(4096);
    match &same_binary {
        Some(same) => {
            setup.probe.resolve(same)(&setup.codec_config, &mut out);
        }
        None => {
            // A named-tasks worker (maybe another binary): the codec of its tasks, configured
            // as the pool's; a configuration it cannot take ends the start, with the reason.
            named::configure_codec(&setup.codec_name, &setup.codec_config)
                .map_err(|why| format!("cannot build the pool's codec: {why}"))?;
            write_codec_name(&mut out, "");
        }
    }
    let codec_field = out.clone();
    let codec_name = crate::wire::Reader(&codec_field).str().unwrap_or_default();
    out.clear();
    let init_outcome = match (&setup.init, &same_binary) {
        (Some(h), Some(same)) => h.f.resolve(same)(&h.arg, &mut out),
        _ => Outcome::Ok,
    };
    let ready = ready_frame(&codec_field, init_outcome, &out);
    send(&mut transport, &[&ready])?;
    if init_outcome != Outcome::Ok {
        return Ok(Ended::Stopped);
    }

    loop {
        out.clear();
        let frame = match transport.recv(None) {
            Ok(frame) => frame,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Ok(Ended::ChannelClosed);
            }
            Err(e) => return Err(format!("reading a request: {e}")),
        };
        // Every request's sequence number goes back in its reply; a request whose caller
        // polls for the reply (`POLL`) makes the worker poll for the next one.
        let (seq, poll, outcome) = match (Request::parse(frame), &same_binary) {
            (
                Ok(Request::Task {
                    seq,
                    poll,
                    f: Some(f),
                    arg,
                }),
                Some(same),
            ) => (seq, poll, f.resolve(same)(arg, &mut out)),
            (
                Ok(Request::Named {
                    seq,
                    poll,
                    index,
                    arg,
                }),
                _,
            ) => {
                let outcome = match named::registry().get(index as usize) {
                    Some(task) => (task.run)(arg, &mut out),
                    None => {
                        write_failure(&mut out, "no such named task in this worker");
                        Outcome::Failed
                    }
                };
                (seq, poll, outcome)
            }
            (Ok(Request::Task { seq, poll, .. }), _) => {
                write_failure(
                    &mut out,
                    "this worker cannot run functions sent by offset (not the same build)",
                );
                (seq, poll, Outcome::Failed)
            }
            (Ok(Request::Stop), _) => break,
            (Err(kind), _) => {
                return Err(format!("unexpected message kind {kind:?} from the parent"));
            }
        };
        let outcome = fit_in_a_frame(outcome, &mut out, &codec_name, max_frame);
        send(&mut transport, &[&reply_header(seq, outcome as u8), &out])?;
        transport.set_spin(if poll {
            transport::WORKER_SPIN
        } else {
            Duration::ZERO
        });
    }

    out.clear();
    let fin_outcome = match (&setup.fin, &same_binary) {
        (Some(h), Some(same)) => h.f.resolve(same)(&h.arg, &mut out),
        _ => Outcome::Ok,
    };
    let _ = transport.send(&[&stopped_header(fin_outcome), &out]);
    Ok(Ended::Stopped)
}

/// The shared-memory channel of a worker forked by the fork server: its peer is the pool
/// process (its grandparent), watched by pidfd. The watch is opened first and the server's
/// parent checked afterwards, so a pool that already died (its pid possibly reused) is an
/// error, never a stranger watched by mistake.
fn forked_shm_side(spec: &WorkerSpec) -> io::Result<transport::shm::ShmTransport> {
    let file = fdio::take_stdin()?;
    let mut t = transport::shm::ShmTransport::connect(file)?;
    t.watch_process(spec.parent)?;
    if !forkserver::server_parent_is(spec.ppid, spec.parent) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the pool process {} is gone", spec.parent),
        ));
    }
    Ok(t)
}

/// A reply too large for one frame becomes the task's encode failure, naming its size and
/// the limit: the parent could not receive it, and the worker need not die for it.
fn fit_in_a_frame(outcome: Outcome, out: &mut Vec<u8>, codec: &str, max: usize) -> Outcome {
    let size = out.len().saturating_add(REPLY_HEADER);
    if size <= max {
        return outcome;
    }
    out.clear();
    out.shrink_to(4096);
    let message = format!("the reply would be {size} bytes, over the {max}-byte frame limit");
    write_codec_failure(out, "the task's result", codec, &message);
    Outcome::EncodeFailed
}

fn send(t: &mut Box<dyn Transport>, parts: &[&[u8]]) -> Result<(), String> {
    t.send(parts)
        .map_err(|e| format!("writing to the parent failed: {e}"))
}
