//! pool: fault fixtures, conformance suite, leak checks.
//!
//! - [`Target`]: what an executor offers so the suite can drive it: every
//!   `pool_core::Parallel` executor is one;
//! - [`NamedTarget`]: what an executor of named tasks offers so the named suite can drive it;
//! - [`conformance`]: the suite every executor must pass, and the suite of named tasks;
//! - [`faults`]: fault fixtures (values, tasks, hooks) for every phase and fault kind;
//! - [`harness`]: one-at-a-time process tests with a watchdog and a leak check;
//! - [`matrix`]: the outcome DESIGN §8 promises for each phase × fault;
//! - [`leaks`]: descriptor and descendant-process snapshots, asserted back with a deadline.

pub mod conformance;
pub mod faults;
pub mod harness;
pub mod leaks;
pub mod matrix;
pub mod rng;
mod target;

pub use target::{__rt, NamedTarget, Target, TaskFn, Value};
