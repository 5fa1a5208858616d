//! pool: the process backend and [`ProcessPool`].
//!
//! Workers are the user's own binary, re-executed; a hook that runs before `main` turns such
//! a process into a worker, so no `init()` call is needed anywhere. Any zero-sized function
//! (a fn item or a capture-free closure) with serde argument and result can run in a worker
//! without registration.

mod backend;
mod buffers;
mod pool;
mod stderr_tail;
mod supervisor;
mod sys;
mod transfer;
pub mod transport;
mod wire;
mod worker;

pub use backend::{EncodedReply, EncodedTask, ProcessBackend, ProcessWorker};
pub use pool::{ProcessPool, ProcessPoolBuilder};
pub use transfer::HookResult;
pub use transport::{Transport, TransportKind};
pub use worker::worker_main;
