//! pool: the thread backend and [`ThreadPool`].
//!
//! A [`ThreadPool`] runs closures (and [`Call`](pool_core::Call)s) on worker threads managed
//! by the `pool-core` policy engine: workers start on demand and exit after `idle_timeout`
//! down to `min_workers`, are recycled after `max_tasks_per_worker`, panics become
//! [`TaskError::Panicked`](pool_core::TaskError::Panicked) with message and location and the
//! worker lives on, and a failing initializer breaks the pool with its cause.
//!
//! Bulk work: `map` / `map_unordered` / `map_with` stream lazily with bounded look-ahead
//! (from [`Executor`](pool_core::Executor)); [`map_all`](pool_core::Executor::map_all) and
//! [`ThreadPool::map_slice`] have the workers (and the caller) write results straight into
//! the output vector (the `direct` module, this crate's only `unsafe`).
//!
//! [`shared`] is a process-wide pool; [`ThreadPool::test`] self-tests a configuration.
//!
//! # Examples
//!
//! ```
//! use pool::Executor;
//! let pool = pool::ThreadPool::builder().max_workers(2).build().unwrap();
//! let f = pool.submit(|| 6 * 7).unwrap();
//! assert_eq!(f.result().unwrap(), 42);
//! let squares: Vec<u64> = pool.map_all(|x: u64| x * x, 0..5).unwrap();
//! assert_eq!(squares, vec![0, 1, 4, 9, 16]);
//! ```

mod backend;
mod builder;
mod direct;
mod pool;

pub use builder::{BuildError, SelfTestError, ThreadPoolBuilder};
pub use pool::{ThreadPool, shared};
