//! The worker's side: [`NatsWorker`] pulls tasks, runs each on a local `ProcessPool`, sends
//! the outcome to the caller's results subject, and only then acknowledges the task.

mod cancel;
mod pull;
mod task;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind};
use pool_codec::{Codec, DefaultCodec};
use pool_process::ProcessPool;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::server;
use crate::wire::Names;
use cancel::Held;
use pull::{PULL_EXPIRES, Pulled, Puller};

/// The `ack_wait` a worker creates the workers' consumer with when no caller has yet (a
/// caller's `NatsPoolBuilder::ack_wait` replaces it).
const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
/// How long a stopping worker waits for the tasks it runs to be answered.
const FINISH_BOUND: Duration = Duration::from_secs(60);

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
    prefetch: usize,
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
            prefetch: 1,
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

    /// How many tasks this worker runs at once (at least 1). Default: the local pool's
    /// `max_workers`.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// How many tasks beyond `max_in_flight` this worker asks for ahead, so that the next
    /// task is in hand when a running one ends instead of one server round trip later.
    /// Only while its tasks are short (their recent runs took under 10 ms on average): a
    /// task asked for ahead waits here until a slot frees, and behind long tasks it could
    /// wait while a worker elsewhere is idle. A task waiting here is kept alive with
    /// progress heartbeats, is cancellable as a queued one, and is handed back when the
    /// worker stops. Default 1; 0 asks only for free slots.
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = n;
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
    /// Everything but the local pool runs on the calling thread (the connection, the pull
    /// requests, the tasks' answers and acknowledgements): no work is handed between threads
    /// on the way.
    ///
    /// # Errors
    ///
    /// The server cannot be reached, or the streams or the workers' consumer cannot be made.
    pub fn run_until(self, stop: &AtomicBool) -> Result<(), String> {
        let rt = tokio::runtime::Builder::new_current_thread()
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
        let mut puller = Puller::new(&nats, js.clone(), tasks).await?;
        let shared = Arc::new(Shared {
            pool: self.pool,
            label: worker_label(),
            held: Arc::default(),
            names,
            nats: nats.clone(),
            js,
            ack_wait,
            slots: Arc::new(Semaphore::new(self.max_in_flight)),
        });
        let listener = tokio::spawn(cancel::listen(
            nats.clone(),
            shared.names.cancel_subject(),
            Arc::clone(&shared.held),
        ));
        // Tasks received whose local run has not ended (waiting for a slot or running): a
        // slot is free again once its task has run, and the next task is asked for while
        // the answer is stored.
        let mut in_hand = 0usize;
        let mut runs = RecentRuns::default();
        let (ran, mut runs_ended) = mpsc::unbounded_channel();
        let mut running = JoinSet::new();
        // Acknowledgements, sent off the tasks' slots.
        let mut acks = JoinSet::new();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        while !stop.load(Ordering::SeqCst) {
            // Ask for as many tasks as there are free slots: `ack_wait` runs on every task
            // handed out, held or not.
            let ahead = if runs.short() { self.prefetch } else { 0 };
            while in_hand + puller.outstanding() < self.max_in_flight + ahead {
                if !puller.request().await {
                    break; // not sent; again on the next event
                }
            }
            tokio::select! {
                pulled = puller.next() => match pulled {
                    Some(Pulled::Task(m)) => {
                        in_hand += 1;
                        let slot = Slot { ended: ran.clone(), started: None };
                        running.spawn(Arc::clone(&shared).handle(*m, slot));
                    }
                    Some(Pulled::Nothing) => {}
                    None => return Err("the connection to the server is closed".to_owned()),
                },
                Some(ran) = runs_ended.recv() => {
                    in_hand -= 1;
                    if let Some(d) = ran {
                        runs.add(d);
                    }
                }
                Some(done) = running.join_next(), if !running.is_empty() => {
                    if let Ok(Some((message, id))) = done {
                        acks.spawn(Shared::<C>::acknowledge(message, id));
                    }
                    while acks.try_join_next().is_some() {}
                }
                _ = tick.tick() => puller.forget_lost(),
            }
        }
        // Stopping: tasks waiting for a slot, and those still arriving for the requests sent,
        // are handed back at once (NAK: delivered again to another worker without waiting
        // for ack_wait); those running are finished.
        shared.slots.close();
        let hand_back = async {
            while let Some(deadline) = puller.oldest_deadline() {
                tokio::select! {
                    pulled = puller.next() => match pulled {
                        Some(Pulled::Task(m)) => {
                            let _ = m.ack_with(AckKind::Nak(None)).await;
                        }
                        Some(Pulled::Nothing) => {}
                        None => break,
                    },
                    () = tokio::time::sleep_until(deadline) => puller.forget_lost(),
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

/// A task in hand, from its delivery to the end of its run: when dropped it tells the worker,
/// with how long the task ran if it did, and the worker asks for another task.
pub(super) struct Slot {
    ended: mpsc::UnboundedSender<Option<Duration>>,
    started: Option<Instant>,
}

impl Slot {
    /// The task starts running now.
    pub(super) fn start(&mut self) {
        self.started = Some(Instant::now());
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let _ = self.ended.send(self.started.map(|at| at.elapsed()));
    }
}

/// Below this average run, tasks count as short and the worker asks for tasks ahead.
const SHORT_RUN: Duration = Duration::from_millis(10);

/// The average of the recent runs (each new run weighs 1/8).
#[derive(Default)]
struct RecentRuns {
    average: Duration,
}

impl RecentRuns {
    fn add(&mut self, run: Duration) {
        self.average = (self.average * 7 + run) / 8;
    }

    fn short(&self) -> bool {
        self.average < SHORT_RUN
    }
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
    /// One permit per task run at once (`max_in_flight`); closed when the worker stops.
    slots: Arc<Semaphore>,
}
