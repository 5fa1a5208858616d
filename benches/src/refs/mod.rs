//! The references every scenario is compared with: the peers (rayon, threadpool, procspawn),
//! a plain hand-written crossbeam pool, the raw pipe and spawn floors, and the raw async-nats
//! floor.

pub mod crossbeam_pool;
pub mod nats;
pub mod process;
pub mod thread;

use crate::measure::Subject;

/// Workers in every pool of the comparison, ours and the references alike.
pub const WORKERS: usize = 2;

/// A subject ready to measure, or why it could not be set up.
pub type Made = Result<Box<dyn Subject>, String>;
