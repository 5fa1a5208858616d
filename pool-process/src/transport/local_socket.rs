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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
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

    /// What the worker's environment carries: `sock:<name>:<token hex>`.
    pub(crate) fn worker_spec(&self) -> String {
        format!("sock:{}:{}", self.name, hex(&self.token))
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

/// Worker side: connects to the parent named in `spec` (`sock:<name>:<token hex>`) and
/// presents the token.
pub(crate) fn connect_worker(spec: &str) -> io::Result<StreamTransport> {
    let bad = || io::Error::new(io::ErrorKind::InvalidInput, "malformed local socket spec");
    let rest = spec.strip_prefix("sock:").ok_or_else(bad)?;
    let (name, token) = rest.rsplit_once(':').ok_or_else(bad)?;
    let token = unhex(token).ok_or_else(bad)?;
    let stream = ConnectOptions::new()
        .name(name.to_ns_name::<GenericNamespaced>()?)
        .connect_sync_as::<Stream>()?;
    let fd = OwnedFd::from(stream);
    let mut transport = StreamTransport::new(fd.try_clone()?, fd);
    transport.send(&[&token])?;
    Ok(transport)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_gate_accepts_the_right_token_only() {
        let listener = SocketListener::bind().unwrap();
        let spec = listener.worker_spec();
        let wrong = spec[..spec.len() - 2].to_string() + "00";
        let wrong = if wrong == spec {
            spec[..spec.len() - 2].to_string() + "11"
        } else {
            wrong
        };
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
