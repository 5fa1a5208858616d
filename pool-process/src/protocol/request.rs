//! Parent → worker: SETUP, the task requests (TASK, NAMED) and STOP. The parent builds them
//! here; the worker parses them here ([`Setup::decode`], [`Request::parse`]).

use std::ops::Deref;

use super::numbers::{
    MAX_REQUEST_HEADER, NAMED, NAMED_HEADER, POLL, PROTOCOL_VERSION, SEQ, SETUP, STOP, TASK,
    TASK_HEADER,
};
use crate::wire::{Put, Reader};

/// A request's kind without the [`POLL`] flag, and whether the flag was set.
pub(crate) fn request_kind(kind: u8) -> (u8, bool) {
    (kind & !POLL, kind & POLL != 0)
}

/// The sequence number of a request or reply frame (0 if the frame is too short to have
/// one).
pub(crate) fn seq_of(frame: &[u8]) -> u64 {
    frame
        .get(SEQ)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// A task request's header (TASK or NAMED), on the stack: kind, sequence number (0 here:
/// [`stamp_seq`] sets it when the request is sent), target. Reads as its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RequestHeader {
    bytes: [u8; MAX_REQUEST_HEADER],
    len: usize,
}

impl RequestHeader {
    /// The same request, marked as awaited by a polling caller ([`POLL`]).
    pub(crate) fn polled(mut self) -> Self {
        self.bytes[0] |= POLL;
        self
    }
}

impl Deref for RequestHeader {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A trampoline's position relative to the build's anchor function: what a request carries
/// to name the function to run. Made and resolved only in `transfer.rs` (its `impl`), which
/// holds the invariant that makes resolving it sound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FnRef(pub(crate) i64);

/// The header of a request to run the function at `f` (sent by offset).
pub(crate) fn task_header(f: FnRef) -> RequestHeader {
    let mut bytes = [0u8; MAX_REQUEST_HEADER];
    bytes[0] = TASK;
    bytes[SEQ.end..TASK_HEADER].copy_from_slice(&f.0.to_le_bytes());
    RequestHeader {
        bytes,
        len: TASK_HEADER,
    }
}

/// The header of a request to run the named task at `index` in the worker's registry.
pub(crate) fn named_header(index: u32) -> RequestHeader {
    let mut bytes = [0u8; MAX_REQUEST_HEADER];
    bytes[0] = NAMED;
    bytes[SEQ.end..NAMED_HEADER].copy_from_slice(&index.to_le_bytes());
    RequestHeader {
        bytes,
        len: NAMED_HEADER,
    }
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

/// The STOP request: the worker runs its finalizer and exits.
pub(crate) const STOP_REQUEST: [u8; 1] = [STOP];

/// A request as the worker's loop reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request<'a> {
    /// Run a function sent by offset. `f` is `None` when the frame is too short to hold
    /// one (the worker answers that it cannot run it).
    Task {
        seq: u64,
        poll: bool,
        f: Option<FnRef>,
        arg: &'a [u8],
    },
    /// Run the named task at `index` of the worker's registry.
    Named {
        seq: u64,
        poll: bool,
        index: u32,
        arg: &'a [u8],
    },
    /// Run the finalizer and exit.
    Stop,
}

impl<'a> Request<'a> {
    /// What `frame` asks for. `Err` holds the kind byte of a frame that is no request of
    /// the loop (`None`: an empty frame).
    pub(crate) fn parse(frame: &'a [u8]) -> Result<Self, Option<u8>> {
        let (kind, poll) = frame.first().map_or((0, false), |&k| request_kind(k));
        match kind {
            TASK => {
                let (f, arg) = match frame.get(SEQ.end..TASK_HEADER) {
                    Some(offset) => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(offset);
                        (Some(FnRef(i64::from_le_bytes(b))), &frame[TASK_HEADER..])
                    }
                    None => (None, &[][..]),
                };
                Ok(Request::Task {
                    seq: seq_of(frame),
                    poll,
                    f,
                    arg,
                })
            }
            NAMED if frame.len() >= NAMED_HEADER => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&frame[SEQ.end..NAMED_HEADER]);
                Ok(Request::Named {
                    seq: seq_of(frame),
                    poll,
                    index: u32::from_le_bytes(b),
                    arg: &frame[NAMED_HEADER..],
                })
            }
            STOP => Ok(Request::Stop),
            _ => Err(frame.first().copied()),
        }
    }
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
    /// The codec's configuration ([`pool_codec::Codec::configuration`]): the probe's input,
    /// from which the worker builds the codec every task of this pool uses.
    pub(crate) codec_config: Vec<u8>,
    /// The pool's codec name: a named-tasks worker builds, from `codec_config`, the codec of
    /// its registered tasks that has this name.
    pub(crate) codec_name: String,
    /// The largest message either side may send (the builder's `max_frame_size`).
    pub(crate) max_frame: usize,
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
        out.put_bytes(&self.codec_config);
        out.put_str(&self.codec_name);
        out.put_u32(u32::try_from(self.max_frame).unwrap_or(u32::MAX));
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
            codec_config: r.bytes()?.to_vec(),
            codec_name: r.str()?,
            max_frame: r.u32()? as usize,
            init: read_hook(&mut r)?,
            fin: read_hook(&mut r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_as_the_worker_loop_read_them() {
        let mut buf = [0u8; MAX_REQUEST_HEADER];
        let header = task_header(FnRef(-7)).polled();
        let mut frame = stamp_seq(&header, 3, &mut buf).unwrap().to_vec();
        frame.extend_from_slice(b"arg");
        assert_eq!(
            Request::parse(&frame),
            Ok(Request::Task {
                seq: 3,
                poll: true,
                f: Some(FnRef(-7)),
                arg: b"arg"
            })
        );
        assert_eq!(
            Request::parse(&frame[..TASK_HEADER - 1]),
            Ok(Request::Task {
                seq: 3,
                poll: true,
                f: None,
                arg: &[]
            })
        );
        let mut frame = stamp_seq(&named_header(2), 4, &mut buf).unwrap().to_vec();
        frame.push(9);
        assert_eq!(
            Request::parse(&frame),
            Ok(Request::Named {
                seq: 4,
                poll: false,
                index: 2,
                arg: &[9]
            })
        );
        assert_eq!(Request::parse(&frame[..NAMED_HEADER - 1]), Err(Some(NAMED)));
        assert_eq!(Request::parse(&STOP_REQUEST), Ok(Request::Stop));
        assert_eq!(Request::parse(&[STOP | POLL]), Ok(Request::Stop));
        assert_eq!(Request::parse(&[SETUP, 0]), Err(Some(SETUP)));
        assert_eq!(Request::parse(&[]), Err(None));
    }
}
