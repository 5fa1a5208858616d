//! The worker's side: [`NatsWorker`] pulls tasks, runs each on a local `ProcessPool`, sends
//! the outcome to the caller's results subject, and only then acknowledges the task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer};
use futures::StreamExt;
use pool_codec::{Codec, DefaultCodec};
use pool_core::TaskError;
use pool_process::ProcessPool;
use tokio::task::JoinSet;

use crate::server;
use crate::wire::{self, Names, Outcome};

/// Serves the named tasks of a local [`ProcessPool`] to callers anywhere.
///
/// # Examples
///
/// ```no_run
/// use std::sync::atomic::AtomicBool;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// pool_process::named_task!("square", square);
///
/// let local = pool_process::ProcessPool::builder()
///     .max_workers(4)
///     .named_tasks(["square"])
///     .build()?;
/// let stop = AtomicBool::new(false);
/// pool_nats::NatsWorker::new(local)
///     .url("nats://10.0.0.1:4222")
///     .run_until(&stop)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub struct NatsWorker<C: Codec = DefaultCodec> {
    pool: ProcessPool<C>,
    url: String,
    prefix: String,
    max_in_flight: usize,
    ack_wait: Duration,
    max_deliver: i64,
    connect_timeout: Duration,
}

impl<C: Codec> NatsWorker<C> {
    /// A worker running tasks on `pool` (built with `named_tasks`): server
    /// `nats://127.0.0.1:4222`, prefix `pool`, as many tasks at once as the pool has workers,
    /// `ack_wait` 30 s, `max_deliver` 5.
    pub fn new(pool: ProcessPool<C>) -> Self {
        let max_in_flight = pool.max_workers();
        NatsWorker {
            pool,
            url: "nats://127.0.0.1:4222".to_owned(),
            prefix: "pool".to_owned(),
            max_in_flight,
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// The server.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// The callers' prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How many tasks this worker holds at once (at least 1).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// How long the server waits for a task's acknowledgement before it delivers the task
    /// again (to any worker). Running tasks are kept alive by progress heartbeats.
    pub fn ack_wait(mut self, d: Duration) -> Self {
        self.ack_wait = d;
        self
    }

    /// How many times a task is delivered at most.
    pub fn max_deliver(mut self, n: i64) -> Self {
        self.max_deliver = n;
        self
    }

    /// Pulls and runs tasks until `stop` is set (checked at least every half second), then
    /// waits for the tasks in hand to be answered.
    ///
    /// # Errors
    ///
    /// The server cannot be reached, or the streams or the workers' consumer cannot be made.
    pub fn run_until(self, stop: &AtomicBool) -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("{}-nats-worker", self.prefix))
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the worker's runtime: {e}"))?;
        rt.block_on(self.serve(stop))
    }

    async fn serve(self, stop: &AtomicBool) -> Result<(), String> {
        let names = Names::new(&self.prefix)?;
        let js = server::connect(&self.url, self.connect_timeout).await?;
        server::ensure_streams(&js, &names).await?;
        let stream = js
            .get_stream(names.tasks_stream())
            .await
            .map_err(|e| format!("the task stream is missing: {e}"))?;
        let tasks = stream
            .get_or_create_consumer(
                "workers",
                consumer::pull::Config {
                    durable_name: Some("workers".to_owned()),
                    filter_subject: names.all_tasks(),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.ack_wait,
                    max_deliver: self.max_deliver,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| format!("cannot create the workers' consumer: {e}"))?;
        let shared = Arc::new(Shared {
            pool: self.pool,
            names,
            js,
            heartbeat: self.ack_wait / 3,
        });
        let mut running = JoinSet::new();
        while !stop.load(Ordering::SeqCst) {
            while running.try_join_next().is_some() {}
            let free = self.max_in_flight.saturating_sub(running.len());
            if free == 0 {
                let _ = tokio::time::timeout(Duration::from_millis(500), running.join_next()).await;
                continue;
            }
            // Pull only as many as there are free slots: `ack_wait` runs on every message
            // handed out, held or not.
            let batch = tasks
                .fetch()
                .max_messages(free)
                .expires(Duration::from_millis(500))
                .messages()
                .await;
            let mut batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(target: "pool", error = %e, "pulling tasks; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            while let Some(message) = batch.next().await {
                match message {
                    Ok(m) => {
                        running.spawn(Arc::clone(&shared).handle(m));
                    }
                    Err(e) => tracing::warn!(target: "pool", error = %e, "pulling tasks"),
                }
            }
        }
        while running.join_next().await.is_some() {}
        Ok(())
    }
}

struct Shared<C: Codec> {
    pool: ProcessPool<C>,
    names: Names,
    js: jetstream::Context,
    heartbeat: Duration,
}

impl<C: Codec> Shared<C> {
    /// Runs one task and answers it; acknowledges it only once the answer is stored.
    async fn handle(self: Arc<Self>, message: jetstream::Message) {
        let header = |k: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(k))
                .map(|v| v.as_str().to_owned())
        };
        let (Some(id), Some(reply)) = (header(wire::TASK), header(wire::REPLY)) else {
            tracing::warn!(target: "pool", subject = %message.subject,
                "a task without its id or reply subject; dropped");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        };
        let name = self
            .names
            .task_name(message.subject.as_str())
            .unwrap_or_default()
            .to_owned();
        let outcome = match self
            .pool
            .submit_named_encoded(&name, message.payload.to_vec())
        {
            Ok(future) => {
                let mut future = std::pin::pin!(future);
                let mut beat = tokio::time::interval(self.heartbeat);
                beat.tick().await;
                loop {
                    tokio::select! {
                        r = &mut future => break r,
                        _ = beat.tick() => {
                            if let Err(e) = message.ack_with(AckKind::Progress).await {
                                tracing::warn!(target: "pool", task = %id, error = %e,
                                    "sending a progress heartbeat");
                            }
                        }
                    }
                }
            }
            Err(refused) => Err(refused.to_task_error()),
        };
        let outcome = match outcome {
            Ok(bytes) => Outcome::Ok(bytes),
            Err(e) => Outcome::Err(e),
        };
        let mut payload = Vec::new();
        if let Err(e) = self.pool.codec().encode(&outcome, &mut payload) {
            payload.clear();
            let fallback = Outcome::Err(TaskError::Broken(pool_core::BrokenReason::new(format!(
                "the worker could not encode the task's outcome: {e}"
            ))));
            if self.pool.codec().encode(&fallback, &mut payload).is_err() {
                return; // not answered, not acknowledged: delivered again after ack_wait
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("r-{id}").as_str());
        headers.insert(wire::TASK, id.as_str());
        let stored = match self
            .js
            .publish_with_headers(reply, headers, payload.into())
            .await
        {
            Ok(ack) => ack.await.map(drop).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match stored {
            Ok(()) => {
                if let Err(e) = message.double_ack().await {
                    tracing::warn!(target: "pool", task = %id, error = %e,
                        "acknowledging a task (it may run again; its caller resolves once)");
                }
            }
            Err(e) => {
                tracing::warn!(target: "pool", task = %id, error = %e,
                    "storing an answer failed; the task will be delivered again");
            }
        }
    }
}
