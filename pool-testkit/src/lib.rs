//! pool: fault fixtures, conformance suite, leak checks.
//!
//! - [`Target`]: what an executor offers so the suite can drive it (implemented here for
//!   `ThreadPool` and `ProcessPool`; [`impl_target!`] implements it for any other);
//! - [`conformance`]: the suite every executor must pass;
//! - [`leaks`]: descriptor and descendant-process snapshots, asserted back with a deadline.

pub mod conformance;
pub mod leaks;
mod target;

pub use target::{__rt, Target, TaskFn, Value};
