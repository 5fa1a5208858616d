//! The policy engine: the one implementation of sizing, on-demand spawning, idle shrink,
//! recycling, timeouts, failure policy, the bounded queue and shutdown, shared by every
//! backend. A backend implements [`Backend`] (start one worker) and [`Worker`] (run one task,
//! report death, stop); the engine does the rest. See `README.md` beside this file for the
//! threads, the queue, the sleep/wake protocol and the life of a worker slot.

mod admission;
mod census;
mod config;
mod job;
mod lend;
mod pipeline;
mod pool;
mod queue;
mod search;
mod shared;
mod shutdown;
mod sleep;
mod slot;
mod slots;
mod spot;
mod stats;
mod watchdog;
mod work;
mod worker;

#[cfg(all(test, pool_loom))]
mod loom_tests;

pub use config::{EngineConfig, OnWorkerDeath, Rejection};
pub use job::Runnable;
pub use pool::Engine;
pub use worker::{Backend, FinalizeError, Killer, Pipeline, RunContext, StartError, Worker};
