//! The fork server's messages, parsed and built without I/O (the fuzz target `forkserver`
//! runs them). One datagram each; integers little-endian (`crate::wire`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::wire::{Put, Reader};

pub(super) const FORK: u8 = 1;
pub(super) const KILL: u8 = 2;
pub(super) const RELEASE: u8 = 3;
pub(super) const READY: u8 = 0x81;
pub(super) const FORKED: u8 = 0x82;
pub(super) const FORK_FAILED: u8 = 0x83;
pub(super) const EXITED: u8 = 0x84;
pub(super) const REAPED: u8 = 0x85;

/// What a FORK request asks for: the worker's spec, its whole environment, its working
/// directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForkRequest {
    pub(crate) spec: String,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) cwd: OsString,
}

impl ForkRequest {
    /// Reads the fields after the request id; `None` if they are truncated or malformed.
    pub(super) fn read(r: &mut Reader<'_>) -> Option<Self> {
        let spec = r.str()?;
        let n = r.u32()?;
        let mut env = Vec::new();
        for _ in 0..n {
            let k = OsString::from_vec(r.bytes()?.to_vec());
            let v = OsString::from_vec(r.bytes()?.to_vec());
            env.push((k, v));
        }
        let cwd = OsString::from_vec(r.bytes()?.to_vec());
        Some(Self { spec, env, cwd })
    }
}

/// The FORK message for request `request`.
pub(super) fn fork_message(
    request: i64,
    spec: &str,
    env: &[(OsString, OsString)],
    cwd: &OsStr,
) -> Vec<u8> {
    let mut body = vec![FORK];
    body.put_i64(request);
    body.put_str(spec);
    body.put_u32(env.len() as u32);
    for (k, v) in env {
        body.put_bytes(k.as_bytes());
        body.put_bytes(v.as_bytes());
    }
    body.put_bytes(cwd.as_bytes());
    body
}

/// A message from the parent, as the server reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    /// FORK: the request id (0 if missing) and what to fork (`None`: malformed, answered with
    /// FORK_FAILED).
    Fork(i64, Option<ForkRequest>),
    /// KILL of a pid (0 if missing: matches no child).
    Kill(u32),
    /// RELEASE of a pid (0 if missing).
    Release(u32),
    /// Empty, or of a kind the server does not know: ignored.
    Other,
}

impl Request {
    pub(crate) fn decode(msg: &[u8]) -> Self {
        let mut r = Reader(msg);
        match r.u8() {
            Some(FORK) => {
                let request = r.i64().unwrap_or(0);
                Self::Fork(request, ForkRequest::read(&mut r))
            }
            Some(KILL) => Self::Kill(r.u32().unwrap_or(0)),
            Some(RELEASE) => Self::Release(r.u32().unwrap_or(0)),
            _ => Self::Other,
        }
    }

    /// The message the parent sends for this request (`None`: no parent sends it).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn encode(&self) -> Option<Vec<u8>> {
        match self {
            Self::Fork(request, Some(f)) => Some(fork_message(*request, &f.spec, &f.env, &f.cwd)),
            Self::Kill(pid) => Some(pid_message(KILL, *pid).to_vec()),
            Self::Release(pid) => Some(pid_message(RELEASE, *pid).to_vec()),
            Self::Fork(_, None) | Self::Other => None,
        }
    }
}

/// A message from the server, as the parent reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The server's pid, and why it refuses to serve, if it does.
    Ready {
        pid: u32,
        refusal: Option<String>,
    },
    Forked {
        request: i64,
        pid: u32,
    },
    ForkFailed {
        request: i64,
        why: String,
    },
    /// A child exited: its classic wait status.
    Exited {
        pid: u32,
        status: i64,
    },
    Reaped {
        pid: u32,
    },
}

impl Answer {
    pub(crate) fn encode(&self) -> Vec<u8> {
        match self {
            Self::Ready { pid, refusal } => {
                let mut m = vec![READY];
                m.put_u32(*pid);
                m.put_opt_str(refusal.as_deref());
                m
            }
            Self::Forked { request, pid } => {
                let mut m = vec![FORKED];
                m.put_i64(*request);
                m.put_u32(*pid);
                m
            }
            Self::ForkFailed { request, why } => {
                let mut m = vec![FORK_FAILED];
                m.put_i64(*request);
                m.put_str(why);
                m
            }
            Self::Exited { pid, status } => {
                let mut m = vec![EXITED];
                m.put_u32(*pid);
                m.put_i64(*status);
                m
            }
            Self::Reaped { pid } => pid_message(REAPED, *pid).to_vec(),
        }
    }

    /// `None` for a message of another kind, or truncated.
    pub(crate) fn decode(msg: &[u8]) -> Option<Self> {
        let mut r = Reader(msg);
        Some(match r.u8()? {
            READY => Self::Ready {
                pid: r.u32()?,
                refusal: r.opt_str()?,
            },
            FORKED => Self::Forked {
                request: r.i64()?,
                pid: r.u32()?,
            },
            FORK_FAILED => Self::ForkFailed {
                request: r.i64()?,
                why: r.str()?,
            },
            EXITED => Self::Exited {
                pid: r.u32()?,
                status: r.i64()?,
            },
            REAPED => Self::Reaped { pid: r.u32()? },
            _ => return None,
        })
    }
}

/// A message of `kind` carrying only a pid.
pub(super) fn pid_message(kind: u8, pid: u32) -> [u8; 5] {
    let mut m = [kind, 0, 0, 0, 0];
    m[1..].copy_from_slice(&pid.to_le_bytes());
    m
}
