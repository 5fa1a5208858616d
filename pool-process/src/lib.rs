//! pool: the process backend and [`ProcessPool`].
//!
//! ```
//! # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
//! use pool::ProcessPool;
//!
//! fn collatz_steps(mut n: u64) -> u32 {
//!     let mut steps = 0;
//!     while n != 1 {
//!         n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
//!         steps += 1;
//!     }
//!     steps
//! }
//!
//! let pool = ProcessPool::builder().max_workers(2).build()?;
//! assert_eq!(pool.submit(collatz_steps, 27)?.result()?, 111);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it works
//!
//! - **Workers are this program.** A worker is started by exec of the very file the parent
//!   runs (a descriptor to it is held, so rebuilding the program on disk cannot split parent
//!   and worker). A hook that runs before `main` recognises worker mode and serves; it never
//!   returns to the user's `main`. So neither programs nor test binaries call any `init()`.
//!   [`worker_main`] exists for binaries where that hook cannot run.
//! - **What crosses.** Any zero-sized `F: Fn(A) -> R` — a fn item or a closure that
//!   captures nothing — with `A, R: Serialize + DeserializeOwned`, without registration. The
//!   function travels as an offset in the (identical) binary; the handshake checks that the
//!   worker is the same build, the same protocol and the same codec before any task.
//!   A capturing closure or fn pointer is a compile error.
//! - **Crash isolation.** A worker that dies (signal, `exit`, `abort`) fails only its task
//!   with `TaskError::WorkerDied`: worker id and pid, the exit code or the signal by name,
//!   the task (its label or its function's name) and the last lines of the worker's stderr.
//!   Panics come back as `TaskError::Panicked` with message, location and, when
//!   `RUST_BACKTRACE` is set, the backtrace. Codec failures name the side, type and codec.
//! - **No orphans.** Each worker leads its own process group; kills (timeouts, `kill`,
//!   shutdown) take the whole group. If the parent dies, even by SIGKILL, a parent-death
//!   signal makes each worker kill its group.
//! - **Stdio.** With the default pipe transport a task's stdout goes to the parent's
//!   **stderr** (the worker's stdout carries the protocol); the worker's stderr is forwarded
//!   to the parent's stderr as it comes, and its tail is kept for death reports. A task's
//!   stdin is `/dev/null`.
//! - **Policies** (sizing, idle shrink, recycling, timeouts, failure policy, shutdown) are
//!   the `pool_core::Engine`'s; this crate supplies the process mechanics
//!   (its `Backend` and `Worker` for processes).

mod backend;
mod buffers;
mod builder;
mod bytes;
mod forkserver;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod named;
mod pool;
mod protocol;
mod reusable;
mod stderr_tail;
mod supervisor;
mod sys;
mod transfer;
// Public only for this crate's own integration tests (the shm ring across real processes)
// and the protocol tests of the test kit; not part of the API. Users pick a transport with
// `TransportKind`.
#[doc(hidden)]
pub mod transport;
mod values;
mod wire;
mod worker;

pub use builder::ProcessPoolBuilder;
pub use pool::ProcessPool;
pub use reusable::reusable;
pub use supervisor::StartMethod;
pub use transfer::HookResult;
pub use transport::TransportKind;
pub use worker::worker_main;

#[doc(hidden)]
pub mod __private {
    pub use crate::named::{NAMED_TASKS, NamedTask, entry};
    pub use linkme;
    pub use pool_codec::DefaultCodec;

    /// This process's running fork server, for leak checks: `(its pid, the descriptor of our
    /// end of its socket)`. Both live as long as the process, by design.
    pub fn fork_server() -> Option<(u32, i32)> {
        crate::forkserver::footprint()
    }
}
