//! The local-socket transport (Unix-domain socket in the abstract namespace, via
//! `interprocess`).
//!
//! Per worker the parent binds a listener under a fresh unguessable name, passes the name
//! and a random 128-bit token to the worker in its environment, and accepts one connection.
//! A connection counts only if the kernel-reported peer uid (`SO_PEERCRED`) is ours and its
//! first frame is exactly the token; anything else is dropped and accepting goes on until the
//! start deadline. The listener is closed once the worker is connected.

use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use interprocess::local_socket::traits::Listener as _;
use interprocess::local_socket::{
    ConnectOptions, GenericNamespaced, ListenerNonblockingMode, ListenerOptions, ToNsName,
};
use interprocess::os::unix::uds_local_socket::{Listener, Stream};

use super::{StreamTransport, Transport};
use crate::sys::fdio;
use crate::wire::hex;

/// A bound, not yet connected listener for one worker.
pub(crate) struct SocketListener {
    listener: Listener,
    name: String,
    token: [u8; 16],
}

fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut out = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut out)?;
    Ok(out)
}

/// Where a worker connects and what it presents: the listener's abstract name and the
/// token. The worker learns it from its spec (`transport::Flavor::Socket`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SocketAddress {
    pub(crate) name: String,
    pub(crate) token: Vec<u8>,
}

impl SocketListener {
    /// Binds a listener under a fresh random name.
    pub(crate) fn bind() -> io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "pool-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            hex(&random_bytes::<8>()?)
        );
        let listener = ListenerOptions::new()
            .name(name.as_str().to_ns_name::<GenericNamespaced>()?)
            .nonblocking(ListenerNonblockingMode::Accept)
            .create_sync_as::<Listener>()?;
        Ok(Self {
            listener,
            name,
            token: random_bytes()?,
        })
    }

    /// What the worker is told (in its spec) to connect to.
    pub(crate) fn address(&self) -> SocketAddress {
        SocketAddress {
            name: self.name.clone(),
            token: self.token.to_vec(),
        }
    }

    /// Accepts the worker: same uid and the right token, before `deadline`. `gone` is asked
    /// between polls and aborts the wait (the child died).
    pub(crate) fn accept(
        self,
        deadline: Instant,
        mut gone: impl FnMut() -> Option<String>,
    ) -> io::Result<StreamTransport> {
        let uid = rustix::process::getuid();
        loop {
            if let Some(why) = gone() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, why));
            }
            let step = (Instant::now() + Duration::from_millis(20)).min(deadline);
            match fdio::wait_readable(self.listener.as_fd(), step) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the worker did not connect to the local socket in time",
                        ));
                    }
                    continue;
                }
                Err(e) => return Err(e),
            }
            let stream = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            };
            let fd = OwnedFd::from(stream);
            match rustix::net::sockopt::socket_peercred(&fd) {
                Ok(cred) if cred.uid == uid => {}
                _ => continue,
            }
            let mut transport = StreamTransport::new(fd.try_clone()?, fd);
            let presented = match transport.recv(Some(deadline)) {
                Ok(frame) => frame.to_vec(),
                Err(_) => continue,
            };
            if constant_time_eq(&presented, &self.token) {
                return Ok(transport);
            }
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Worker side: connects to the parent's listener at `address` and presents the token.
pub(crate) fn connect_worker(address: &SocketAddress) -> io::Result<StreamTransport> {
    let stream = ConnectOptions::new()
        .name(address.name.as_str().to_ns_name::<GenericNamespaced>()?)
        .connect_sync_as::<Stream>()?;
    let fd = OwnedFd::from(stream);
    let mut transport = StreamTransport::new(fd.try_clone()?, fd);
    transport.send(&[&address.token])?;
    Ok(transport)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_gate_accepts_the_right_token_only() {
        let listener = SocketListener::bind().unwrap();
        let spec = listener.address();
        let mut wrong = spec.clone();
        let last = wrong.token.last_mut().unwrap();
        *last = if *last == 0 { 0x11 } else { 0 };
        let t1 = std::thread::spawn(move || {
            let _impostor = connect_worker(&wrong).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        });
        let spec2 = spec.clone();
        let t2 = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            let mut w = connect_worker(&spec2).unwrap();
            w.send(&[b"hello"]).unwrap();
        });
        let mut parent = listener
            .accept(Instant::now() + Duration::from_secs(10), || None)
            .unwrap();
        assert_eq!(
            parent
                .recv(Some(Instant::now() + Duration::from_secs(10)))
                .unwrap(),
            b"hello"
        );
        t1.join().unwrap();
        t2.join().unwrap();
    }
}
