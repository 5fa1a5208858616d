//! pool-nats: the same `Executor` with workers on many machines, on NATS JetStream.
//!
//! A [`NatsPool`] submits named tasks (`named_task!`) to a work-queue stream; workers on any
//! host run [`NatsWorker`], which pulls them, runs each on its own local `ProcessPool` (so a
//! crash, a timeout that kills and recycling behave as on one machine) and sends the outcome
//! back to the caller's results subject, acknowledging the task only after that. The caller
//! gets an ordinary [`pool_core::Future`], resolved once per task, with the same errors a
//! local pool gives.
//!
//! See `README.md` for the message sequence.

mod pool;
mod server;
mod store;
mod wire;
mod worker;

pub use pool::{NatsPool, NatsPoolBuilder};
pub use worker::NatsWorker;
