//! The messages between parent and worker, and the worker's start-up environment variable.
//!
//! Every message is one transport frame whose first byte is its kind. Integers are
//! little-endian (see `crate::wire`). The sequence is described in `../worker/README.md`.

use crate::transfer::FnRef;
use crate::wire::{Put, Reader};

/// Message kinds, flags and header sizes (also included by the misbehaving-worker fixture).
mod numbers;
/// The worker's start-up spec, and the spelling of its transport.
mod spec;
pub(crate) use numbers::*;
pub(crate) use spec::WorkerSpec;

/// A request's kind without the [`POLL`] flag, and whether the flag was set.
pub(crate) fn request_kind(kind: u8) -> (u8, bool) {
    (kind & !POLL, kind & POLL != 0)
}

/// Builds a named task request header (sequence 0: [`stamp_seq`] sets it when it is sent).
pub(crate) fn named_header(index: u32) -> [u8; NAMED_HEADER] {
    let mut h = [0u8; NAMED_HEADER];
    h[0] = NAMED;
    h[SEQ.end..].copy_from_slice(&index.to_le_bytes());
    h
}

/// Builds a task request header (sequence 0: [`stamp_seq`] sets it when it is sent).
pub(crate) fn task_header(f: FnRef) -> [u8; TASK_HEADER] {
    let mut h = [0u8; TASK_HEADER];
    h[0] = TASK;
    h[SEQ.end..].copy_from_slice(&f.0.to_le_bytes());
    h
}

/// Copies request header `header` (from [`task_header`] or [`named_header`]) into `buf` with
/// sequence number `seq`; `None` if `header` is not a request header.
pub(crate) fn stamp_seq<'a>(
    header: &[u8],
    seq: u64,
    buf: &'a mut [u8; MAX_REQUEST_HEADER],
) -> Option<&'a [u8]> {
    let len = match header.first().map(|&k| request_kind(k).0) {
        Some(TASK) => TASK_HEADER,
        Some(NAMED) => NAMED_HEADER,
        _ => return None,
    };
    (header.len() == len).then_some(())?;
    let out = &mut buf[..len];
    out.copy_from_slice(header);
    out[SEQ].copy_from_slice(&seq.to_le_bytes());
    Some(out)
}

/// The sequence number of a request or reply frame (0 if the frame is too short to have
/// one).
pub(crate) fn seq_of(frame: &[u8]) -> u64 {
    frame
        .get(SEQ)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// Builds a reply header: kind, the request's sequence number, outcome byte.
pub(crate) fn reply_header(seq: u64, outcome: u8) -> [u8; REPLY_HEADER] {
    let mut h = [0u8; REPLY_HEADER];
    h[0] = REPLY;
    h[SEQ].copy_from_slice(&seq.to_le_bytes());
    h[SEQ.end] = outcome;
    h
}

/// A hook (initializer or finalizer) as it travels: its reference and encoded argument.
#[derive(Debug, Clone)]
pub(crate) struct HookCall {
    pub(crate) f: FnRef,
    pub(crate) arg: Vec<u8>,
}

/// The SETUP message.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub(crate) probe: FnRef,
    pub(crate) init: Option<HookCall>,
    pub(crate) fin: Option<HookCall>,
}

fn put_hook(out: &mut Vec<u8>, h: &Option<HookCall>) {
    match h {
        Some(h) => {
            out.put_u8(1);
            out.put_i64(h.f.0);
            out.put_bytes(&h.arg);
        }
        None => out.put_u8(0),
    }
}

fn read_hook(r: &mut Reader<'_>) -> Option<Option<HookCall>> {
    match r.u8()? {
        0 => Some(None),
        1 => Some(Some(HookCall {
            f: FnRef(r.i64()?),
            arg: r.bytes()?.to_vec(),
        })),
        _ => None,
    }
}

impl Setup {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![SETUP];
        out.put_u32(PROTOCOL_VERSION);
        out.put_i64(self.probe.0);
        put_hook(&mut out, &self.init);
        put_hook(&mut out, &self.fin);
        out
    }

    pub(crate) fn decode(frame: &[u8]) -> Option<Self> {
        let mut r = Reader(frame);
        (r.u8()? == SETUP).then_some(())?;
        (r.u32()? == PROTOCOL_VERSION).then_some(())?;
        Some(Self {
            probe: FnRef(r.i64()?),
            init: read_hook(&mut r)?,
            fin: read_hook(&mut r)?,
        })
    }
}

/// The READY message as the parent reads it: the worker's codec name, then its
/// initializer's outcome byte and detail (the rest of the frame). The worker writes it in
/// `serve.rs`; the parent parses it in `supervisor/handshake.rs` with the same steps as
/// [`Ready::decode`], which the fuzz target `handshake` runs on hostile bytes.
#[cfg(any(test, feature = "fuzzing"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ready<'a> {
    pub(crate) codec: String,
    pub(crate) outcome: crate::transfer::Outcome,
    pub(crate) detail: &'a [u8],
}

#[cfg(any(test, feature = "fuzzing"))]
impl<'a> Ready<'a> {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![READY];
        out.put_str(&self.codec);
        out.put_u8(self.outcome as u8);
        out.extend_from_slice(self.detail);
        out
    }

    pub(crate) fn decode(frame: &'a [u8]) -> Option<Self> {
        let mut r = Reader(frame);
        (r.u8()? == READY).then_some(())?;
        let codec = r.str()?;
        let outcome = r.u8().and_then(crate::transfer::Outcome::from_u8)?;
        Some(Self {
            codec,
            outcome,
            detail: r.rest(),
        })
    }
}

/// The HELLO message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hello {
    pub(crate) version: u32,
    pub(crate) pid: u32,
    pub(crate) identity: String,
    pub(crate) anchor_delta: i64,
    /// Set when the worker itself found a mismatch and will exit.
    pub(crate) refusal: Option<String>,
    /// The worker's named tasks: `(name, codec name)`, in registry order.
    pub(crate) tasks: Vec<(String, String)>,
}

impl Hello {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![HELLO];
        out.put_u32(self.version);
        out.put_u32(self.pid);
        out.put_str(&self.identity);
        out.put_i64(self.anchor_delta);
        out.put_opt_str(self.refusal.as_deref());
        out.put_u32(self.tasks.len() as u32);
        for (name, codec) in &self.tasks {
            out.put_str(name);
            out.put_str(codec);
        }
        out
    }

    pub(crate) fn decode(frame: &[u8]) -> Option<Self> {
        let mut r = Reader(frame);
        (r.u8()? == HELLO).then_some(())?;
        Some(Self {
            version: r.u32()?,
            pid: r.u32()?,
            identity: r.str()?,
            anchor_delta: r.i64()?,
            refusal: r.opt_str()?,
            tasks: {
                let n = r.u32()?;
                let mut tasks = Vec::new();
                for _ in 0..n {
                    tasks.push((r.str()?, r.str()?));
                }
                tasks
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::exe::BuildIdentity;
    use crate::transport::Flavor;

    #[test]
    fn messages_round_trip() {
        let id = BuildIdentity::current().unwrap();
        let spec = WorkerSpec {
            version: PROTOCOL_VERSION,
            parent: 12,
            ppid: 13,
            identity: id,
            anchor_delta: -64,
            worker_id: 3,
            named_only: true,
            transport: Flavor::from_wire("sock:pool-1-2-ab:00ff").unwrap(),
        };
        assert_eq!(WorkerSpec::decode(&spec.encode()), Some(spec.clone()));
        let spawned = WorkerSpec { ppid: 12, ..spec };
        assert_eq!(spawned.encode().matches(';').count(), 6);
        assert_eq!(WorkerSpec::decode(&spawned.encode()), Some(spawned));
        let hello = Hello {
            version: 1,
            pid: 5,
            identity: "x".into(),
            anchor_delta: 7,
            refusal: Some("no".into()),
            tasks: vec![("a".into(), "msgpack".into())],
        };
        assert_eq!(Hello::decode(&hello.encode()), Some(hello));
        let setup = Setup {
            probe: FnRef(-3),
            init: Some(HookCall {
                f: FnRef(9),
                arg: vec![1, 2],
            }),
            fin: None,
        };
        let back = Setup::decode(&setup.encode()).unwrap();
        assert_eq!(back.probe, FnRef(-3));
        assert_eq!(back.init.unwrap().arg, vec![1, 2]);
        assert!(back.fin.is_none());
        assert!(Setup::decode(&[SETUP, 9, 9]).is_none());
    }

    #[test]
    fn ready_round_trips_and_refuses_garbage() {
        use crate::transfer::Outcome;
        // As `serve.rs` writes it: kind, the probe's codec name, the outcome byte, detail.
        let mut wire = vec![READY];
        wire.put_str("msgpack");
        wire.put_u8(Outcome::Failed as u8);
        wire.put_str("no database");
        let ready = Ready::decode(&wire).unwrap();
        assert_eq!(ready.codec, "msgpack");
        assert_eq!(ready.outcome, Outcome::Failed);
        assert_eq!(Reader(ready.detail).str().as_deref(), Some("no database"));
        assert_eq!(ready.encode(), wire);
        assert!(Ready::decode(&wire[..wire.len() - ready.detail.len() - 1]).is_none());
        let mut unknown = wire.clone();
        unknown[1 + 4 + 7] = 9;
        assert!(Ready::decode(&unknown).is_none(), "unknown outcome byte");
        assert!(Ready::decode(&[HELLO]).is_none());
    }

    #[test]
    fn sequence_numbers_are_stamped_and_echoed() {
        let mut buf = [0u8; MAX_REQUEST_HEADER];
        let task = task_header(FnRef(-2));
        let stamped = stamp_seq(&task, 0x0102_0304_0506_0708, &mut buf).unwrap();
        assert_eq!(stamped.len(), TASK_HEADER);
        assert_eq!(stamped[0], TASK);
        assert_eq!(seq_of(stamped), 0x0102_0304_0506_0708);
        assert_eq!(stamped[9..], (-2i64).to_le_bytes());
        let named = named_header(7);
        let stamped = stamp_seq(&named, 5, &mut buf).unwrap();
        assert_eq!(
            (stamped.len(), stamped[0], seq_of(stamped)),
            (NAMED_HEADER, NAMED, 5)
        );
        assert_eq!(stamped[9..], 7u32.to_le_bytes());
        assert!(stamp_seq(&[STOP], 1, &mut buf).is_none());
        assert!(stamp_seq(&task[..5], 1, &mut buf).is_none());
        let reply = reply_header(u64::MAX, 2);
        assert_eq!((reply[0], seq_of(&reply), reply[9]), (REPLY, u64::MAX, 2));
        assert_eq!(seq_of(&[REPLY, 1, 2]), 0);
    }
}
