//! Worker → parent: HELLO, READY, the task replies (REPLY) and STOPPED, with the outcome
//! byte and the detail records (panic, codec failure, failure message) they carry. The
//! worker writes them here; the parent reads them here ([`Reply::parse`], [`Detail::read`]).

use super::numbers::{HELLO, READY, REPLY, REPLY_HEADER, SEQ, STOPPED};
use super::request::seq_of;
use crate::wire::{Put, Reader};

/// What a task or hook did; the outcome byte of REPLY, READY and STOPPED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Outcome {
    /// The detail is the encoded result.
    Ok = 0,
    /// The detail is a [`PanicRecord`].
    Panicked = 1,
    /// Decoding the argument failed in the worker; the detail is a codec failure record
    /// ([`write_codec_failure`]).
    DecodeFailed = 2,
    /// Encoding the result failed in the worker; the detail is a codec failure record.
    EncodeFailed = 3,
    /// The function reported failure (initializer/finalizer `Err`, or a request the worker
    /// cannot serve); the detail is the message ([`write_failure`]).
    Failed = 4,
}

impl Outcome {
    pub(crate) fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Ok,
            1 => Self::Panicked,
            2 => Self::DecodeFailed,
            3 => Self::EncodeFailed,
            4 => Self::Failed,
            _ => return None,
        })
    }
}

/// One caught panic: the detail of [`Outcome::Panicked`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct PanicRecord {
    pub(crate) message: String,
    pub(crate) location: Option<String>,
    pub(crate) backtrace: Option<String>,
}

impl PanicRecord {
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.put_str(&self.message);
        out.put_opt_str(self.location.as_deref());
        out.put_opt_str(self.backtrace.as_deref());
    }

    pub(crate) fn read(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        Some(Self {
            message: r.str()?,
            location: r.opt_str()?,
            backtrace: r.opt_str()?,
        })
    }
}

/// Writes the detail of [`Outcome::DecodeFailed`] and [`Outcome::EncodeFailed`].
pub(crate) fn write_codec_failure(out: &mut Vec<u8>, type_name: &str, codec: &str, message: &str) {
    out.put_str(type_name);
    out.put_str(codec);
    out.put_str(message);
}

/// Writes READY's codec name field (what the codec probe answers).
pub(crate) fn write_codec_name(out: &mut Vec<u8>, name: &str) {
    out.put_str(name);
}

/// Writes the detail of [`Outcome::Failed`].
pub(crate) fn write_failure(out: &mut Vec<u8>, message: &str) {
    out.put_str(message);
}

/// A codec failure record as read; a field that cannot be read is empty.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct CodecFailureRecord {
    pub(crate) type_name: String,
    pub(crate) codec: String,
    pub(crate) message: String,
}

/// An outcome with its detail, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Detail<'a> {
    /// [`Outcome::Ok`]: the encoded result (a hook's: nothing).
    Value(&'a [u8]),
    /// [`Outcome::Panicked`]; `None` when the record cannot be read.
    Panicked(Option<PanicRecord>),
    /// [`Outcome::DecodeFailed`].
    DecodeFailed(CodecFailureRecord),
    /// [`Outcome::EncodeFailed`].
    EncodeFailed(CodecFailureRecord),
    /// [`Outcome::Failed`]; `None` when the message cannot be read.
    Failed(Option<String>),
}

impl<'a> Detail<'a> {
    pub(crate) fn read(outcome: Outcome, detail: &'a [u8]) -> Self {
        let codec_failure = || {
            let mut r = Reader(detail);
            CodecFailureRecord {
                type_name: r.str().unwrap_or_default(),
                codec: r.str().unwrap_or_default(),
                message: r.str().unwrap_or_default(),
            }
        };
        match outcome {
            Outcome::Ok => Detail::Value(detail),
            Outcome::Panicked => Detail::Panicked(PanicRecord::read(detail)),
            Outcome::DecodeFailed => Detail::DecodeFailed(codec_failure()),
            Outcome::EncodeFailed => Detail::EncodeFailed(codec_failure()),
            Outcome::Failed => Detail::Failed(Reader(detail).str()),
        }
    }
}

/// A task reply's header: kind, the request's sequence number, outcome byte.
pub(crate) fn reply_header(seq: u64, outcome: u8) -> [u8; REPLY_HEADER] {
    let mut h = [0u8; REPLY_HEADER];
    h[0] = REPLY;
    h[SEQ].copy_from_slice(&seq.to_le_bytes());
    h[SEQ.end] = outcome;
    h
}

/// The READY message: the codec name field as the codec probe wrote it
/// ([`write_codec_name`]; an empty name from a worker that runs no function by offset), the
/// initializer's outcome, its detail.
pub(crate) fn ready_frame(codec_field: &[u8], init: Outcome, detail: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + codec_field.len() + 1 + detail.len());
    out.push(READY);
    out.extend_from_slice(codec_field);
    out.put_u8(init as u8);
    out.extend_from_slice(detail);
    out
}

/// The STOPPED message's header: kind and the finalizer's outcome (its detail follows).
pub(crate) fn stopped_header(fin: Outcome) -> [u8; 2] {
    [STOPPED, fin as u8]
}

/// The READY message as the parent reads it: the worker's codec name, then its
/// initializer's outcome and detail (the rest of the frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ready<'a> {
    pub(crate) codec: String,
    pub(crate) outcome: Outcome,
    pub(crate) detail: &'a [u8],
}

impl<'a> Ready<'a> {
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut codec = Vec::new();
        write_codec_name(&mut codec, &self.codec);
        ready_frame(&codec, self.outcome, self.detail)
    }

    pub(crate) fn decode(frame: &'a [u8]) -> Option<Self> {
        let mut r = Reader(frame);
        (r.u8()? == READY).then_some(())?;
        let codec = r.str()?;
        let outcome = r.u8().and_then(Outcome::from_u8)?;
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

/// A message from the worker, as the parent reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply<'a> {
    Hello(Hello),
    Ready(Ready<'a>),
    /// A task's reply: the request's sequence number, the outcome and its detail.
    Task {
        seq: u64,
        outcome: Outcome,
        payload: &'a [u8],
    },
    /// The finalizer's outcome and its detail.
    Stopped {
        outcome: Outcome,
        detail: &'a [u8],
    },
}

/// A frame that is no well-formed message from the worker, by its kind byte (`None`: an
/// empty frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed {
    pub(crate) kind: Option<u8>,
}

impl<'a> Reply<'a> {
    /// Reads one frame from the worker.
    pub(crate) fn parse(frame: &'a [u8]) -> Result<Self, Malformed> {
        let kind = frame.first().copied();
        let malformed = Malformed { kind };
        match kind {
            Some(REPLY) => {
                let outcome = frame
                    .get(REPLY_HEADER - 1)
                    .copied()
                    .and_then(Outcome::from_u8)
                    .ok_or(malformed)?;
                Ok(Reply::Task {
                    seq: seq_of(frame),
                    outcome,
                    payload: &frame[REPLY_HEADER..],
                })
            }
            Some(STOPPED) => {
                let outcome = frame
                    .get(1)
                    .copied()
                    .and_then(Outcome::from_u8)
                    .ok_or(malformed)?;
                Ok(Reply::Stopped {
                    outcome,
                    detail: &frame[2..],
                })
            }
            Some(HELLO) => Hello::decode(frame).map(Reply::Hello).ok_or(malformed),
            Some(READY) => Ready::decode(frame).map(Reply::Ready).ok_or(malformed),
            _ => Err(malformed),
        }
    }

    /// The message's kind byte.
    pub(crate) fn kind(&self) -> u8 {
        match self {
            Reply::Hello(_) => HELLO,
            Reply::Ready(_) => READY,
            Reply::Task { .. } => REPLY,
            Reply::Stopped { .. } => STOPPED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_by_kind() {
        let mut frame = reply_header(7, Outcome::Panicked as u8).to_vec();
        frame.extend_from_slice(b"x");
        assert_eq!(
            Reply::parse(&frame),
            Ok(Reply::Task {
                seq: 7,
                outcome: Outcome::Panicked,
                payload: b"x"
            })
        );
        let malformed = |kind| Err(Malformed { kind });
        assert_eq!(
            Reply::parse(&frame[..REPLY_HEADER - 1]),
            malformed(Some(REPLY))
        );
        frame[REPLY_HEADER - 1] = 9;
        assert_eq!(Reply::parse(&frame), malformed(Some(REPLY)));
        let mut stopped = stopped_header(Outcome::Failed).to_vec();
        write_failure(&mut stopped, "no");
        let Ok(Reply::Stopped { outcome, detail }) = Reply::parse(&stopped) else {
            panic!("STOPPED");
        };
        assert_eq!(
            Detail::read(outcome, detail),
            Detail::Failed(Some("no".into()))
        );
        assert_eq!(Reply::parse(&[STOPPED]), malformed(Some(STOPPED)));
        assert_eq!(Reply::parse(&[HELLO]), malformed(Some(HELLO)));
        assert_eq!(Reply::parse(&[]), malformed(None));
        assert_eq!(Reply::parse(&[2]), malformed(Some(2)));
        let ready = ready_frame(&[0, 0, 0, 0], Outcome::Ok, &[]);
        assert_eq!(Reply::parse(&ready).map(|r| r.kind()), Ok(READY));
    }

    #[test]
    fn details_read_leniently() {
        let mut d = Vec::new();
        write_codec_failure(&mut d, "T", "json", "bad");
        let record = CodecFailureRecord {
            type_name: "T".into(),
            codec: "json".into(),
            message: "bad".into(),
        };
        assert_eq!(
            Detail::read(Outcome::DecodeFailed, &d),
            Detail::DecodeFailed(record.clone())
        );
        assert_eq!(
            Detail::read(Outcome::EncodeFailed, &d[..d.len() - 1]),
            Detail::EncodeFailed(CodecFailureRecord {
                message: String::new(),
                ..record
            })
        );
        assert_eq!(
            Detail::read(Outcome::Panicked, &[1]),
            Detail::Panicked(None)
        );
        assert_eq!(Detail::read(Outcome::Failed, &[]), Detail::Failed(None));
        assert_eq!(Detail::read(Outcome::Ok, b"v"), Detail::Value(b"v"));
    }
}
