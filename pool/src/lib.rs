//! pool: robust, reusable thread and process pools.
//!
//! This crate is the front door: it re-exports the vocabulary of [`pool_core`] (futures,
//! errors, the [`Executor`] trait and its `map` family), the thread backend
//! ([`ThreadPool`]), the process backend ([`ProcessPool`]) and the codecs ([`codec`]).
//! Library authors who want only one backend can depend on the small crates directly.
//!
//! # Examples
//!
//! Threads:
//!
//! ```
//! use pool::{Executor, ThreadPool};
//!
//! let pool = ThreadPool::builder().max_workers(2).build()?;
//! let answer = pool.submit(|| 6 * 7)?;
//! assert_eq!(answer.result()?, 42);
//! let doubled: Vec<u64> = pool.map_all(|x: u64| x * 2, 0..4)?;
//! assert_eq!(doubled, [0, 2, 4, 6]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Processes — plain functions cross the process boundary without registration, and a
//! worker that crashes fails only its own task:
//!
//! ```
//! use pool::ProcessPool;
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let pool = ProcessPool::builder().max_workers(2).build()?;
//! assert_eq!(pool.submit(square, 9)?.result()?, 81);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "progress")]
mod progress;

pub use pool_core::*;
pub use pool_process::{ProcessPool, ProcessPoolBuilder, Transport, TransportKind, worker_main};
pub use pool_thread::{ThreadPool, ThreadPoolBuilder, shared};
#[cfg(feature = "progress")]
pub use progress::progress_bar;

/// Codecs: how arguments and results cross a process boundary.
///
/// See [`pool_codec`] for the measured comparison behind [`codec::DefaultCodec`].
pub mod codec {
    pub use pool_codec::*;
}
