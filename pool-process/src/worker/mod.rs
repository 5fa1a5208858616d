//! The worker side: bootstrap before `main`, the handshake, and the request loop.
//! See `README.md` in this folder for the message sequence.

mod bootstrap;
pub(crate) mod codec;
pub(crate) mod panics;
mod serve;

pub use bootstrap::worker_main;
