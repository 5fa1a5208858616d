//! The worker's start-up spec: what a worker learns from its environment (or, forked, from
//! the fork server's FORK request), one line of `;`-separated fields (see
//! `../worker/README.md`), and the spelling of its transport field.

use crate::sys::exe::BuildIdentity;
use crate::transport::{Flavor, SocketAddress};
use crate::wire::{hex, unhex};

/// What the worker learns from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkerSpec {
    pub(crate) version: u32,
    /// The pool process: the worker's peer.
    pub(crate) parent: u32,
    /// The worker's expected parent process: the pool process when spawned, the fork server
    /// when forked. The parent-death signal and the parent re-check are against it. Encoded
    /// as an optional last field, absent when it equals `parent` (so the text of a spawned
    /// worker's spec is unchanged).
    pub(crate) ppid: u32,
    pub(crate) identity: BuildIdentity,
    pub(crate) anchor_delta: i64,
    pub(crate) worker_id: u64,
    /// Only named tasks run: no function offset is ever resolved (the worker may be a
    /// different binary).
    pub(crate) named_only: bool,
    /// The channel's transport (see [`Flavor::to_wire`] for its spelling).
    pub(crate) transport: Flavor,
}

impl WorkerSpec {
    pub(crate) fn encode(&self) -> String {
        let mut s = format!(
            "{};{};{};{};{};{};{}",
            self.version,
            self.parent,
            self.identity.encode(),
            self.anchor_delta,
            self.worker_id,
            u8::from(self.named_only),
            self.transport.to_wire()
        );
        if self.ppid != self.parent {
            s.push_str(&format!(";{}", self.ppid));
        }
        s
    }

    pub(crate) fn decode(s: &str) -> Option<Self> {
        let mut it = s.splitn(8, ';');
        let version = it.next()?.parse().ok()?;
        let parent = it.next()?.parse().ok()?;
        Some(Self {
            version,
            parent,
            identity: BuildIdentity::decode(it.next()?)?,
            anchor_delta: it.next()?.parse().ok()?,
            worker_id: it.next()?.parse().ok()?,
            named_only: it.next()?.parse::<u8>().ok()? == 1,
            transport: Flavor::from_wire(it.next()?).ok()?,
            ppid: match it.next() {
                Some(p) => p.parse().ok()?,
                None => parent,
            },
        })
    }
}

/// The spelling of a [`Flavor`] in the spec: `pipe`, `shm`, or `sock:<abstract name>:<token
/// as hexadecimal>`. The only place it is written or read.
impl Flavor {
    const PIPE: &str = "pipe";
    const SHM: &str = "shm";
    const SOCKET_PREFIX: &str = "sock:";

    /// The flavor as the spec spells it.
    pub(crate) fn to_wire(&self) -> String {
        match self {
            Flavor::Pipe => Self::PIPE.to_owned(),
            Flavor::Shm => Self::SHM.to_owned(),
            Flavor::Socket(a) => format!("{}{}:{}", Self::SOCKET_PREFIX, a.name, hex(&a.token)),
        }
    }

    /// The flavor a spec's text names.
    ///
    /// # Errors
    /// The text names no transport, or is a socket address without a name and a
    /// hexadecimal token.
    pub(crate) fn from_wire(text: &str) -> Result<Self, String> {
        match text {
            Self::PIPE => return Ok(Flavor::Pipe),
            Self::SHM => return Ok(Flavor::Shm),
            _ => {}
        }
        let address = text.strip_prefix(Self::SOCKET_PREFIX).and_then(|rest| {
            let (name, token) = rest.rsplit_once(':')?;
            Some(SocketAddress {
                name: name.to_owned(),
                token: unhex(token)?,
            })
        });
        match address {
            Some(a) => Ok(Flavor::Socket(a)),
            None if text.starts_with(Self::SOCKET_PREFIX) => {
                Err(format!("malformed local socket address {text:?}"))
            }
            None => Err(format!("unknown transport {text:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavors_are_spelled_as_before() {
        for (text, flavor) in [
            ("pipe", Flavor::Pipe),
            ("shm", Flavor::Shm),
            (
                "sock:pool-1-2-ab:00ff",
                Flavor::Socket(SocketAddress {
                    name: "pool-1-2-ab".into(),
                    token: vec![0, 0xff],
                }),
            ),
            (
                "sock:a:b:",
                Flavor::Socket(SocketAddress {
                    name: "a:b".into(),
                    token: Vec::new(),
                }),
            ),
        ] {
            assert_eq!(Flavor::from_wire(text).as_ref(), Ok(&flavor));
            assert_eq!(flavor.to_wire(), text);
        }
        for bad in [
            "",
            "Pipe",
            "pipe ",
            "sock:",
            "sock:x:0",
            "sock:x:zz",
            "tcp:x:00",
        ] {
            assert!(Flavor::from_wire(bad).is_err(), "{bad:?}");
        }
    }
}
