//! One task on a worker: checked against its delivery limit, run on the local pool with
//! progress heartbeats, stopped if its caller cancels it, answered, and only then
//! acknowledged.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind};
use pool_codec::Codec;
use pool_core::{BrokenReason, SubmitOptions, TaskError};

use super::{Shared, Slot};
use crate::store;
use crate::wire::{self, Outcome};

/// How long a confirmed acknowledgement may take before it is sent again.
const ACK_ATTEMPT: Duration = Duration::from_secs(1);
/// How many times a confirmed acknowledgement is tried before a plain one is sent.
const ACK_ATTEMPTS: u32 = 2;

/// What a task message carries besides its argument.
struct Envelope {
    id: String,
    reply: String,
    started: Option<String>,
    name: String,
    delivered: u32,
    max_deliver: u32,
    heartbeat: Duration,
    timeout: Option<Duration>,
}

impl<C: Codec> Shared<C> {
    fn envelope(&self, message: &jetstream::Message) -> Option<Envelope> {
        let header = |k: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(k))
                .map(|v| v.as_str().to_owned())
        };
        let millis = |k: &str| {
            header(k)
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_millis)
        };
        let ack_wait = millis(wire::ACK_WAIT).map_or(self.ack_wait, |d| d.min(self.ack_wait));
        Some(Envelope {
            id: header(wire::TASK)?,
            reply: header(wire::REPLY)?,
            started: header(wire::STARTED),
            name: self
                .names
                .task_name(message.subject.as_str())
                .unwrap_or_default()
                .to_owned(),
            delivered: message
                .info()
                .map_or(1, |i| u32::try_from(i.delivered).unwrap_or(u32::MAX)),
            max_deliver: header(wire::MAX_DELIVER)
                .and_then(|v| v.parse().ok())
                .unwrap_or(5),
            heartbeat: ack_wait / 3,
            timeout: millis(wire::TIMEOUT),
        })
    }

    /// Runs one task and answers it. Returns the task to acknowledge once its answer is
    /// stored (the caller acknowledges it off the task's slot), `None` if there is nothing to
    /// acknowledge.
    pub(super) async fn handle(
        self: Arc<Self>,
        message: jetstream::Message,
        mut slot: Slot,
    ) -> Option<(jetstream::Message, String)> {
        let Some(task) = self.envelope(&message) else {
            tracing::warn!(target: "pool", subject = %message.subject,
                "a task without its id or reply subject; dropped");
            let _ = message.ack_with(AckKind::Term).await;
            return None;
        };
        if task.delivered > 1 {
            tracing::warn!(target: "pool", task = %task.id, name = %task.name,
                delivery = task.delivered, max_deliver = task.max_deliver,
                "a task delivered again: the worker that held it died or went silent");
        }
        let outcome = if task.delivered > task.max_deliver {
            let deliveries = task.delivered - 1;
            tracing::error!(target: "pool", task = %task.id, name = %task.name, deliveries,
                "a poison task: given up without running it again");
            Err(TaskError::Poison {
                task: format!("task {:?} ({})", task.name, task.id),
                deliveries,
            })
        } else {
            // A task asked for ahead waits here for a slot, kept alive by heartbeats.
            let slots = Arc::clone(&self.slots);
            let Ok(permit) = self.beating(&message, &task, slots.acquire_owned()).await else {
                // The worker is stopping: handed back to be delivered to another one.
                let _ = message.ack_with(AckKind::Nak(None)).await;
                return None;
            };
            slot.start();
            let ran = self.run(&task, &message).await;
            drop(permit);
            match ran {
                Some(outcome) => outcome,
                None => {
                    // Cancelled by its caller, who already resolved it: nothing to answer.
                    let _ = message.ack_with(AckKind::Term).await;
                    return None;
                }
            }
        };
        // The task has run: the worker may take the next one while this answer is stored.
        drop(slot);
        let payload = self.encode(outcome);
        let mut headers = HeaderMap::new();
        headers.insert(wire::MSG_ID, format!("r-{}", task.id).as_str());
        headers.insert(wire::TASK, task.id.as_str());
        let stream = self.names.results_stream();
        let stored = store::store(&self.js, &stream, &task.reply, headers, payload.into());
        // Heartbeats go on while the answer is stored (through an outage, perhaps), so the
        // task is not handed to another worker meanwhile.
        let stored = self.beating(&message, &task, stored).await;
        match stored {
            Ok(_) => Some((message, task.id)),
            Err(e) => {
                tracing::warn!(target: "pool", task = %task.id, error = %e,
                    "storing an answer failed; the task will be delivered again");
                None
            }
        }
    }

    /// Acknowledges a task whose answer is stored, so it is not delivered again. The
    /// confirmed acknowledgement is a request: one lost in an outage would wait for the
    /// connection's request timeout, and a server restarted since the delivery ignores it
    /// without answering. After a few tries a plain one is sent and the slot freed (if it
    /// is lost too, the task runs again and its caller ignores the second answer).
    pub(super) async fn acknowledge(message: jetstream::Message, id: String) {
        for _ in 0..ACK_ATTEMPTS {
            match tokio::time::timeout(ACK_ATTEMPT, message.double_ack()).await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => tracing::debug!(target: "pool", task = %id, error = %e,
                    "acknowledging a task"),
                Err(_) => tracing::debug!(target: "pool", task = %id,
                    "acknowledging a task: no confirmation"),
            }
        }
        if let Err(e) = message.ack().await {
            tracing::warn!(target: "pool", task = %id, error = %e,
                "acknowledging a task failed (it may run again; its caller resolves it once)");
        }
    }

    /// Runs the task on the local pool. `None` if its caller cancelled it meanwhile.
    async fn run(
        &self,
        task: &Envelope,
        message: &jetstream::Message,
    ) -> Option<Result<Vec<u8>, TaskError>> {
        let mut opts = SubmitOptions::default().label(task.name.as_str());
        opts.timeout = task.timeout;
        let Some(stopped) = self.held.enter(&task.id) else {
            return None; // cancelled before it came here
        };
        let future =
            match self
                .pool
                .submit_named_encoded_with(&task.name, message.payload.to_vec(), opts)
            {
                Ok(future) => {
                    if let Some(subject) = &task.started {
                        let said = self.nats.publish(subject.clone(), task.id.clone().into());
                        if let Err(e) = said.await {
                            tracing::debug!(target: "pool", task = %task.id, error = %e,
                                "saying a task started");
                        }
                    }
                    future
                }
                Err(refused) => {
                    self.held.leave(&task.id);
                    return Some(Err(self.refusal(refused.to_task_error())));
                }
            };
        let mut future = std::pin::pin!(future);
        let mut stopped = stopped;
        let mut cancelled = false;
        let work = async {
            loop {
                tokio::select! {
                    r = future.as_mut() => break r,
                    stop = &mut stopped, if !cancelled => {
                        // Err: the worker let go of the signal; there is no cancellation.
                        cancelled = stop.is_ok();
                        if cancelled {
                            future.kill();
                        } else {
                            break future.as_mut().await;
                        }
                    }
                }
            }
        };
        let outcome = self.beating(message, task, work).await;
        self.held.leave(&task.id);
        (!cancelled).then_some(outcome)
    }

    /// Awaits `work`, sending a progress heartbeat every `task.heartbeat` meanwhile.
    async fn beating<T>(
        &self,
        message: &jetstream::Message,
        task: &Envelope,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let mut work = std::pin::pin!(work);
        // The first beat one period from now (an interval's immediate first tick would cost
        // a timer round, about a millisecond, on every task).
        let period = task.heartbeat.max(Duration::from_millis(10));
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                r = &mut work => return r,
                _ = beat.tick() => {
                    if let Err(e) = message.ack_with(AckKind::Progress).await {
                        tracing::debug!(target: "pool", task = %task.id, error = %e,
                            "sending a progress heartbeat");
                    }
                }
            }
        }
    }

    /// The local pool's refusal, saying which worker refused (an unknown name, most often).
    fn refusal(&self, error: TaskError) -> TaskError {
        match error {
            TaskError::Encode(mut c) => {
                c.message = format!("on worker {}: {}", self.label, c.message);
                TaskError::Encode(c)
            }
            other => other,
        }
    }

    /// The outcome's bytes; if the codec cannot encode it, an error saying so.
    fn encode(&self, outcome: Result<Vec<u8>, TaskError>) -> Vec<u8> {
        let outcome = match outcome {
            Ok(bytes) => Outcome::Ok(bytes),
            Err(e) => Outcome::Err(e),
        };
        let mut payload = Vec::new();
        if let Err(e) = self.pool.codec().encode(&outcome, &mut payload) {
            payload.clear();
            let fallback = Outcome::Err(TaskError::Broken(BrokenReason::new(format!(
                "worker {} could not encode the task's outcome: {e}",
                self.label
            ))));
            // A codec that cannot encode this either cannot answer anything.
            let _ = self.pool.codec().encode(&fallback, &mut payload);
        }
        payload
    }
}
