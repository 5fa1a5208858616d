//! Transports: how frames move between the parent and one worker.
//!
//! A [`Transport`] is framed (every `send` is one message, every `recv` returns one whole
//! message), bidirectional, and receives with an optional deadline. The built-in transports
//! are chosen with [`TransportKind`]: anonymous pipes (the default), local sockets, and shared
//! memory. Pipes and sockets are byte streams carrying pool-codec's framing (`u32`
//! little-endian length, then the body; `stream.rs`); shared memory is a pair of rings in one
//! shared file (`shm/`, with its README).

mod local_socket;
mod pipe;
pub mod shm;
mod stream;

use std::io;
use std::time::{Duration, Instant};

pub(crate) use local_socket::{SocketAddress, SocketListener, connect_worker};
pub(crate) use pipe::{
    parent_side as pipe_parent_side, shm_worker_side, worker_side as pipe_worker_side,
};
pub(crate) use stream::StreamTransport;

/// Largest frame body either side accepts (pool-codec's default, 1 GiB); a larger length
/// prefix is corrupt input.
pub const MAX_FRAME: usize = pool_codec::DEFAULT_MAX_FRAME;

/// A framed, bidirectional message channel between a parent and one worker.
///
/// Implementations must preserve message boundaries and order, report a vanished peer as
/// [`io::ErrorKind::UnexpectedEof`], and a passed deadline as [`io::ErrorKind::TimedOut`]
/// (after which the channel may be unusable: the pool kills the worker then).
pub trait Transport: Send + 'static {
    /// Sends one message whose body is the concatenation of `parts`, in order.
    ///
    /// # Errors
    /// The peer is gone (`BrokenPipe`) or the message is larger than the frame limit
    /// ([`Transport::set_max_frame`]).
    fn send(&mut self, parts: &[&[u8]]) -> io::Result<()>;

    /// Receives the next message; the slice is valid until the next call.
    ///
    /// # Errors
    /// `UnexpectedEof` when the peer closed its end, `TimedOut` past `deadline`,
    /// `InvalidData` for a corrupt length prefix.
    fn recv(&mut self, deadline: Option<Instant>) -> io::Result<&[u8]>;

    /// How long a receive without deadline polls (yielding the CPU) before it blocks:
    /// polling saves a wake-up when the answer comes within that time, at the price of CPU
    /// time shared with whatever else runs. The default ignores it (the transport keeps
    /// its own policy).
    fn set_spin(&mut self, spin: Duration) {
        let _ = spin;
    }

    /// Sets the largest message either way (the pool's `max_frame_size`; [`MAX_FRAME`] until
    /// then). Both sides set the same value: the parent before SETUP, the worker from it.
    fn set_max_frame(&mut self, max: usize);
}

/// How long a worker polls for its next request after answering a polling caller's request
/// (`protocol::POLL`), and how long that caller polls for the reply, before either blocks
/// (stream transports; the shared-memory transport always polls this long, see
/// `shm/wake.rs`). Long enough to catch the next request of a loop of calls without a
/// wake-up, short enough to cost nothing measurable when the loop ends.
pub(crate) const WORKER_SPIN: Duration = Duration::from_micros(20);

/// The transport of one worker's channel, as both sides know it: the parent chooses it once
/// per worker from the pool's [`TransportKind`] (a socket's address exists once its
/// listener is bound) and writes it into the worker's spec; the worker opens its side of the
/// channel by it. Its spelling in the spec is `protocol`'s ([`Flavor::to_wire`],
/// [`Flavor::from_wire`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// Anonymous pipes on the worker's fds 0/1.
    Pipe,
    /// A local socket: the worker connects to this address and presents its token.
    Socket(SocketAddress),
    /// Shared memory: the memory file on the worker's fd 0.
    Shm,
}

/// Which built-in transport a pool uses for its workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// Anonymous pipes on the worker's stdin/stdout (its stderr is a third pipe, forwarded
    /// to the parent's stderr). The default: nothing to name, nothing to clean up.
    #[default]
    Pipe,
    /// A Unix-domain socket in the abstract namespace. The worker connects back and must be
    /// the same user and present the pool's random secret token before anything else.
    /// A task's stdout is the parent's stdout.
    LocalSocket,
    /// Shared memory: two rings in an anonymous memory file (memfd) handed to the worker as
    /// its stdin, futex wake-ups after a short `sched_yield` phase, large payloads through a
    /// shared region (see [`shm`]). Lowest latency, fastest for large payloads. A task's
    /// stdout is the parent's stdout.
    Shm,
}
