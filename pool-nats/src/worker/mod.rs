//! The worker's side: [`NatsWorker`] pulls tasks, runs each on a local `ProcessPool`, sends
//! the outcome to the caller's results subject, and only then acknowledges the task.

mod cancel;
mod task;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer};
use futures::StreamExt;
use pool_codec::{Codec, DefaultCodec};
use pool_process::ProcessPool;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::server;
use crate::wire::Names;
use cancel::Held;

/// The `ack_wait` a worker creates the workers' consumer with when no caller has yet (a
/// caller's `NatsPoolBuilder::ack_wait` replaces it).
const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
/// How long a stopping worker waits for the tasks it runs to be answered.
const FINISH_BOUND: Duration = Duration::from_secs(60);
/// How long one pull request waits for tasks on the server.
const PULL_EXPIRES: Duration = Duration::from_secs(1);

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
    connect_timeout: Duration,
}

impl<C: Codec> NatsWorker<C> {
    /// A worker running tasks on `pool` (built with `named_tasks`; every worker of a prefix
    /// registers the same): server `nats://127.0.0.1:4222`, prefix `pool`, as many tasks at
    /// once as the pool has workers.
    pub fn new(pool: ProcessPool<C>) -> Self {
        let max_in_flight = pool.max_workers();
        NatsWorker {
            pool,
            url: "nats://127.0.0.1:4222".to_owned(),
            prefix: "pool".to_owned(),
            max_in_flight,
            connect_timeout: Duration::from_secs(10),
        }
    }

    /// The server (or a comma-separated list of servers).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// The callers' prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How many tasks this worker holds at once (at least 1). It asks the server for no more
    /// than that, so no task waits in this worker while another worker is idle.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// How long `run_until` waits for the server at start. Default 10 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Pulls and runs tasks until `stop` is set (checked every 200 ms), then hands back the
    /// tasks it received but did not start and waits (up to a minute) for those it runs to
    /// be answered.
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
        let nats = server::connect(&self.url, self.connect_timeout, "worker").await?;
        let js = jetstream::new(nats.clone());
        server::ensure_streams(&js, &names).await?;
        let mut tasks = server::workers_consumer(&js, &names, DEFAULT_ACK_WAIT, false).await?;
        let ack_wait = tasks
            .info()
            .await
            .map_err(|e| format!("cannot read the workers' consumer: {e}"))?
            .config
            .ack_wait;
        let shared = Arc::new(Shared {
            pool: self.pool,
            label: worker_label(),
            held: Arc::default(),
            names,
            nats: nats.clone(),
            js,
            ack_wait,
        });
        let listener = tokio::spawn(cancel::listen(
            nats.clone(),
            shared.names.cancel_subject(),
            Arc::clone(&shared.held),
        ));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut requested = 0usize;
        let mut running = JoinSet::new();
        // Acknowledgements, sent off the tasks' slots: a slot is free once its answer is
        // stored.
        let mut acks = JoinSet::new();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        while !stop.load(Ordering::SeqCst) {
            // Ask for as many tasks as there are free slots: `ack_wait` runs on every task
            // handed out, held or not.
            let free = self.max_in_flight - running.len().min(self.max_in_flight);
            let free = free.saturating_sub(requested);
            if free > 0 {
                requested += free;
                tokio::spawn(pull(tasks.clone(), free, tx.clone()));
            }
            tokio::select! {
                Some(pulled) = rx.recv() => match pulled {
                    Pulled::Task(m) => {
                        requested -= 1;
                        running.spawn(Arc::clone(&shared).handle(*m));
                    }
                    Pulled::Ended { unfilled } => requested -= unfilled,
                },
                Some(done) = running.join_next(), if !running.is_empty() => {
                    if let Ok(Some((message, id))) = done {
                        acks.spawn(Shared::<C>::acknowledge(message, id));
                    }
                    while acks.try_join_next().is_some() {}
                }
                _ = tick.tick() => {}
            }
        }
        // Stopping: tasks still arriving are handed back at once (NAK: delivered again to
        // another worker without waiting for ack_wait); those running are finished.
        drop(tx);
        let hand_back = async {
            while let Some(pulled) = rx.recv().await {
                if let Pulled::Task(m) = pulled {
                    let _ = m.ack_with(AckKind::Nak(None)).await;
                }
            }
        };
        let _ = tokio::time::timeout(PULL_EXPIRES + Duration::from_secs(2), hand_back).await;
        // Bounded: with the server gone, answers cannot be stored and the tasks will be
        // delivered again anyway.
        let finish = async {
            while let Some(done) = running.join_next().await {
                if let Ok(Some((message, id))) = done {
                    acks.spawn(Shared::<C>::acknowledge(message, id));
                }
            }
            while acks.join_next().await.is_some() {}
        };
        if tokio::time::timeout(FINISH_BOUND, finish).await.is_err() {
            tracing::warn!(target: "pool",
                "stopping: tasks in hand not answered within {FINISH_BOUND:?}; the server will \
                 deliver them again");
        }
        listener.abort();
        let _ = nats.flush().await;
        Ok(())
    }
}

/// What a pull request brings: a task, or its end with how many it did not fill.
enum Pulled {
    Task(Box<jetstream::Message>),
    Ended { unfilled: usize },
}

/// One pull request for up to `n` tasks, waiting at most [`PULL_EXPIRES`] on the server.
async fn pull(tasks: consumer::PullConsumer, n: usize, tx: mpsc::UnboundedSender<Pulled>) {
    let mut got = 0;
    let request = tasks
        .batch()
        .max_messages(n)
        .expires(PULL_EXPIRES)
        .messages();
    // Bounded: a request sent while the server is gone may never be answered.
    let batch = match tokio::time::timeout(PULL_EXPIRES, request).await {
        Ok(b) => b.map_err(|e| e.to_string()),
        Err(_) => Err("no answer to a pull request".to_owned()),
    };
    match batch {
        Ok(mut batch) => {
            let bound = PULL_EXPIRES + Duration::from_secs(5);
            let _ = tokio::time::timeout(bound, async {
                while let Some(message) = batch.next().await {
                    match message {
                        Ok(m) => {
                            got += 1;
                            if let Err(back) = tx.send(Pulled::Task(Box::new(m)))
                                && let Pulled::Task(m) = back.0
                            {
                                let _ = m.ack_with(AckKind::Nak(None)).await;
                            }
                        }
                        Err(e) => tracing::debug!(target: "pool", error = %e, "pulling tasks"),
                    }
                }
            })
            .await;
        }
        Err(e) => {
            tracing::debug!(target: "pool", error = %e, "pulling tasks; trying again");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let _ = tx.send(Pulled::Ended {
        unfilled: n.saturating_sub(got),
    });
}

/// `host pid N`, for errors and events.
fn worker_label() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("{host} pid {}", std::process::id())
}

/// What every task of a worker shares.
struct Shared<C: Codec> {
    pool: ProcessPool<C>,
    /// `host pid N`.
    label: String,
    held: Arc<Held>,
    names: Names,
    nats: async_nats::Client,
    js: jetstream::Context,
    /// The workers' consumer's `ack_wait` when this worker started.
    ack_wait: Duration,
}
