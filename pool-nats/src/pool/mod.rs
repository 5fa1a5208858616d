//! The caller's side: [`NatsPool`] publishes tasks and resolves their futures from the
//! answers on its own results subject, once per task id.

mod collect;
mod pending;

use std::any::type_name;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream;
use pool_codec::{Codec, DefaultCodec};
use pool_core::{
    BrokenReason, BuildError, CodecFailure, ConfigError, Executor, Future, Killer, Promise,
    Shutdown, ShutdownReport, Side, Stats, SubmitError, SubmitErrorKind, SubmitOptions, TaskError,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wire::{self, Names};
use crate::{server, store};
use pending::{Pending, Resolver, Waiting, Withdrawn};

/// How long cancelling waits for the server and the workers to hear of it.
const WITHDRAW_BOUND: Duration = Duration::from_secs(5);

/// Named tasks run by workers anywhere, through a NATS JetStream server.
///
/// # Examples
///
/// ```no_run
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// pool_process::named_task!("square", square);
///
/// let pool = pool_nats::NatsPool::builder().url("nats://127.0.0.1:4222").build()?;
/// let nine = pool.submit_named::<u64, u64>("square", 3)?.result()?;
/// assert_eq!(nine, 9);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct NatsPool<C: Codec = DefaultCodec> {
    inner: Arc<Inner<C>>,
    // Held only by the pool's handles (never by a task running on it), so it is never
    // dropped on one of its own threads.
    rt: Arc<tokio::runtime::Runtime>,
}

impl<C: Codec> Clone for NatsPool<C> {
    fn clone(&self) -> Self {
        NatsPool {
            inner: Arc::clone(&self.inner),
            rt: Arc::clone(&self.rt),
        }
    }
}

pub(crate) struct Inner<C: Codec> {
    codec: C,
    names: Names,
    client: String,
    nats: async_nats::Client,
    js: jetstream::Context,
    pending: Pending,
    next: AtomicU64,
    shut_down: AtomicBool,
    submitted: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    timed_out: AtomicU64,
    policy: Policy,
    handle: tokio::runtime::Handle,
}

/// What the builder set that each task carries or the pool enforces.
#[derive(Clone, Debug)]
struct Policy {
    ack_wait: Duration,
    max_deliver: u32,
    max_in_flight: usize,
    task_timeout: Option<Duration>,
    shutdown_timeout: Duration,
}

/// Settings of a [`NatsPool`].
#[must_use]
pub struct NatsPoolBuilder<C: Codec = DefaultCodec> {
    url: String,
    prefix: String,
    codec: C,
    connect_timeout: Duration,
    policy: Policy,
}

impl NatsPool<DefaultCodec> {
    /// A builder: server `nats://127.0.0.1:4222`, prefix `pool`, the default codec,
    /// `ack_wait` 30 s, `max_deliver` 5, no in-flight bound, no task timeout.
    pub fn builder() -> NatsPoolBuilder<DefaultCodec> {
        NatsPoolBuilder {
            url: "nats://127.0.0.1:4222".to_owned(),
            prefix: "pool".to_owned(),
            codec: DefaultCodec::default(),
            connect_timeout: Duration::from_secs(10),
            policy: Policy {
                ack_wait: Duration::from_secs(30),
                max_deliver: 5,
                max_in_flight: usize::MAX,
                task_timeout: None,
                shutdown_timeout: Duration::from_secs(30),
            },
        }
    }
}

impl<C: Codec> NatsPoolBuilder<C> {
    /// The server (or a comma-separated list of servers).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// The prefix of the subjects and streams (`<prefix>.tasks.*`, `<PREFIX>_TASKS`); workers
    /// must use the same. Letters, digits, `-` and `_`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The codec of arguments and results; workers' pools must use the same.
    pub fn codec<C2: Codec>(self, codec: C2) -> NatsPoolBuilder<C2> {
        NatsPoolBuilder {
            url: self.url,
            prefix: self.prefix,
            codec,
            connect_timeout: self.connect_timeout,
            policy: self.policy,
        }
    }

    /// How long the server waits for a worker's word on a task (an answer, or a heartbeat
    /// while it runs) before it hands the task to another worker: how soon the tasks of a
    /// worker that died run elsewhere. Set on the workers' consumer of this prefix when the
    /// pool is built (the last caller built sets it). Default 30 s; at least 100 ms.
    pub fn ack_wait(mut self, d: Duration) -> Self {
        self.policy.ack_wait = d.max(Duration::from_millis(100));
        self
    }

    /// How many times a task may be handed to a worker. A task whose workers all died or
    /// went silent that many times is a poison task: it resolves [`TaskError::Poison`]
    /// instead of being handed out again. Default 5; at least 1.
    pub fn max_deliver(mut self, n: u32) -> Self {
        self.policy.max_deliver = n.max(1);
        self
    }

    /// How many tasks may be outstanding at once: `submit_named` blocks while that many are
    /// waiting for their answers. Default: no bound.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.policy.max_in_flight = n.max(1);
        self
    }

    /// A time limit for every task once it runs on a worker (the worker's process running it
    /// is killed, as on one machine: [`TaskError::TimedOut`]). Default: none;
    /// [`NatsPool::submit_named_with`] sets one per task.
    pub fn task_timeout(mut self, d: Duration) -> Self {
        self.policy.task_timeout = Some(d);
        self
    }

    /// How long `build` waits for the server. Default 10 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How long `shutdown(Shutdown::Wait)` waits for outstanding tasks before cancelling
    /// them. Default 30 s.
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.policy.shutdown_timeout = d;
        self
    }

    /// Connects, makes sure the streams and the workers' consumer exist, and starts
    /// collecting answers.
    ///
    /// # Errors
    ///
    /// A bad prefix, an unreachable server, or streams that cannot be created.
    pub fn build(self) -> Result<NatsPool<C>, BuildError> {
        let fail =
            |msg: String| BuildError::new("nats", self.prefix.clone(), ConfigError::new(msg));
        let names = Names::new(&self.prefix).map_err(fail)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("{}-nats", self.prefix))
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the client's runtime: {e}")))?;
        let client = client_id();
        let ack_wait = self.policy.ack_wait;
        let (nats, js, answers, starts) = rt
            .block_on(async {
                let nats = server::connect(&self.url, self.connect_timeout, "client").await?;
                let js = jetstream::new(nats.clone());
                server::ensure_streams(&js, &names).await?;
                server::workers_consumer(&js, &names, ack_wait, true).await?;
                let answers = collect::answers_consumer(&js, &names, &client).await?;
                let starts = nats
                    .subscribe(names.started_subject(&client))
                    .await
                    .map_err(|e| format!("cannot listen for start notices: {e}"))?;
                Ok::<_, String>((nats, js, answers, starts))
            })
            .map_err(fail)?;
        let inner = Arc::new(Inner {
            codec: self.codec,
            names,
            client,
            nats,
            js,
            pending: Pending::default(),
            next: AtomicU64::new(1),
            shut_down: AtomicBool::new(false),
            submitted: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            policy: self.policy,
            handle: rt.handle().clone(),
        });
        rt.spawn(collect::collect(Arc::downgrade(&inner), answers));
        rt.spawn(collect::starts(Arc::downgrade(&inner), starts));
        Ok(NatsPool {
            inner,
            rt: Arc::new(rt),
        })
    }
}

/// A process-unique name for this client: its answers' subject and consumer.
fn client_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "c{}x{:x}x{}",
        std::process::id(),
        nanos & 0xffff_ffff_ffff,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

impl<C: Codec> NatsPool<C> {
    /// Runs the named task `name` on `arg` on some worker, anywhere.
    ///
    /// [`Future::cancel`] gives up a task no worker has said it started: it is removed from
    /// the server and never runs. [`Future::kill`] also stops a started one on its worker
    /// (the worker's process running it is killed).
    ///
    /// # Errors
    ///
    /// The pool is shut down, or `arg` cannot be encoded, or is larger than the server
    /// accepts (its `max_payload`); the argument is handed back.
    pub fn submit_named<A, R>(&self, name: &str, arg: A) -> Result<Future<R>, SubmitError<A>>
    where
        A: Serialize + Send + 'static,
        R: DeserializeOwned + Send + 'static,
    {
        self.submit_named_with(name, arg, SubmitOptions::default())
    }

    /// [`NatsPool::submit_named`] with per-task options: `timeout` (the task's time limit on
    /// the worker, over the builder's `task_timeout`); the label is the task's name.
    ///
    /// # Errors
    ///
    /// As [`NatsPool::submit_named`].
    pub fn submit_named_with<A, R>(
        &self,
        name: &str,
        arg: A,
        opts: SubmitOptions,
    ) -> Result<Future<R>, SubmitError<A>>
    where
        A: Serialize + Send + 'static,
        R: DeserializeOwned + Send + 'static,
    {
        let inner = &self.inner;
        let policy = &inner.policy;
        let open = || !inner.shut_down.load(Ordering::SeqCst);
        inner.pending.wait_for_room(policy.max_in_flight, open);
        if !open() {
            return Err(SubmitError::new(SubmitErrorKind::Shutdown, Some(arg)));
        }
        let mut payload = Vec::new();
        let refuse = |message: String| {
            SubmitErrorKind::Encode(CodecFailure {
                side: Side::Parent,
                type_name: type_name::<A>().to_owned(),
                codec: inner.codec.name().into_owned(),
                message,
            })
        };
        if let Err(e) = inner.codec.encode(&arg, &mut payload) {
            let kind = refuse(e.message().to_owned());
            return Err(SubmitError::new(kind, Some(arg)));
        }
        let id = format!(
            "{}-{}",
            inner.client,
            inner.next.fetch_add(1, Ordering::Relaxed)
        );
        let mut headers = HeaderMap::new();
        headers.insert(wire::MSG_ID, id.as_str());
        headers.insert(wire::TASK, id.as_str());
        headers.insert(
            wire::REPLY,
            inner.names.results_subject(&inner.client).as_str(),
        );
        headers.insert(
            wire::STARTED,
            inner.names.started_subject(&inner.client).as_str(),
        );
        headers.insert(wire::MAX_DELIVER, policy.max_deliver.to_string().as_str());
        headers.insert(wire::ACK_WAIT, millis(policy.ack_wait).as_str());
        if let Some(limit) = opts.timeout.or(policy.task_timeout) {
            headers.insert(wire::TIMEOUT, millis(limit).as_str());
        }
        let max_payload = inner.nats.server_info().max_payload;
        let size = payload.len() + headers_len(&headers);
        if max_payload > 0 && size > max_payload {
            let kind = refuse(format!(
                "the task is {size} bytes with its headers, over the NATS server's max_payload \
                 of {max_payload} bytes (raise max_payload in the server's configuration, or \
                 send a reference to the data instead of the data)"
            ));
            return Err(SubmitError::new(kind, Some(arg)));
        }
        drop(arg);

        let (promise, future) = pool_core::promise::<R>();
        // Kill: the future resolves `Cancelled` and the cancellation below reaches the worker.
        promise.set_killer(Killer::new(|| {}));
        let resolve: Resolver = Box::new(Typed {
            promise,
            codec: inner.codec.clone(),
        });
        inner.pending.insert(id.clone(), resolve);
        inner.submitted.fetch_add(1, Ordering::Relaxed);
        let weak = Arc::downgrade(&self.inner);
        let cancelled_id = id.clone();
        future.on_done(move |r| {
            if matches!(r, Err(TaskError::Cancelled))
                && let Some(inner) = weak.upgrade()
                && let Some(task) = inner.pending.cancel(&cancelled_id)
            {
                inner.cancelled.fetch_add(1, Ordering::Relaxed);
                // Waited for (bounded), so that by the time `cancel` returns the workers
                // know and the server no longer holds the task.
                let handle = inner.handle.clone();
                run_bounded(&handle, withdraw(inner, vec![task], true), WITHDRAW_BOUND);
            }
        });
        let subject = inner.names.task_subject(name);
        inner
            .handle
            .spawn(publish(Arc::clone(inner), id, subject, headers, payload));
        Ok(future)
    }
}

/// A pending task's typed promise.
struct Typed<R: Send + 'static, C> {
    promise: Promise<R>,
    codec: C,
}

impl<R: DeserializeOwned + Send + 'static, C: Codec> Waiting for Typed<R, C> {
    fn start(&self) -> bool {
        self.promise.start()
    }

    fn resolve(self: Box<Self>, outcome: Result<Vec<u8>, TaskError>) {
        let codec = &self.codec;
        let value = outcome.and_then(|bytes| {
            codec.decode::<R>(&bytes).map_err(|e| {
                TaskError::Decode(CodecFailure {
                    side: Side::Parent,
                    type_name: type_name::<R>().to_owned(),
                    codec: codec.name().into_owned(),
                    message: e.message().to_owned(),
                })
            })
        });
        self.promise.complete(value);
    }
}

fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

/// The size headers take on the wire (`NATS/1.0\r\n`, `name: value\r\n` each, `\r\n`).
fn headers_len(headers: &HeaderMap) -> usize {
    12 + headers
        .iter()
        .map(|(k, vs)| {
            vs.iter()
                .map(|v| AsRef::<str>::as_ref(k).len() + 2 + v.as_str().len() + 2)
                .sum::<usize>()
        })
        .sum::<usize>()
}

/// Stores one task; resolves it with the reason if it cannot be stored, removes it from the
/// stream if it was cancelled while being stored.
async fn publish<C: Codec>(
    inner: Arc<Inner<C>>,
    id: String,
    subject: String,
    headers: HeaderMap,
    payload: Vec<u8>,
) {
    let stream = inner.names.tasks_stream();
    match store::store(&inner.js, &stream, &subject, headers, payload.into()).await {
        Ok(seq) => {
            if inner.pending.stored(&id, seq) {
                withdraw(inner, vec![Withdrawn { id, seq: Some(seq) }], true).await;
            }
        }
        Err(why) => {
            inner.pending.resolve(&id, || {
                let error = TaskError::Broken(BrokenReason::new(format!(
                    "the task could not be handed to the server: {why}"
                )));
                inner.count(&Err::<(), _>(error.clone()));
                Err(error)
            });
        }
    }
}

/// Removes cancelled tasks from the task stream (no worker takes them afterwards) and, with
/// `stop`, tells the workers to stop those they already hold.
async fn withdraw<C: Codec>(inner: Arc<Inner<C>>, tasks: Vec<Withdrawn>, stop: bool) {
    // The workers are told first (one message each, no waiting for an answer). A task not yet
    // stored may be delivered once before it is deleted: the worker that gets it then knows.
    let subject = inner.names.cancel_subject();
    for task in tasks.iter().filter(|t| stop || t.seq.is_none()) {
        if let Err(e) = inner
            .nats
            .publish(subject.clone(), task.id.clone().into())
            .await
        {
            tracing::debug!(target: "pool", error = %e, "telling workers of a cancellation");
        }
    }
    let _ = inner.nats.flush().await;
    if tasks.iter().all(|t| t.seq.is_none()) {
        return; // deleted by their publishers once stored
    }
    let stream = match inner.js.get_stream(inner.names.tasks_stream()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(target: "pool", error = %e, "cannot remove cancelled tasks");
            return;
        }
    };
    for seq in tasks.iter().filter_map(|t| t.seq) {
        // Already gone if a worker acknowledged it.
        let _ = stream.delete_message(seq).await;
    }
}

/// Runs `job` on the pool's runtime and waits for it (at most `bound`), from any thread but
/// the runtime's own (where waiting would stall it: then the job runs on, unwaited).
fn run_bounded(
    handle: &tokio::runtime::Handle,
    job: impl std::future::Future<Output = ()> + Send + 'static,
    bound: Duration,
) {
    let (done, finished) = mpsc::channel();
    handle.spawn(async move {
        job.await;
        let _ = done.send(());
    });
    let on_runtime = tokio::runtime::Handle::try_current().is_ok_and(|h| h.id() == handle.id());
    if !on_runtime {
        let _ = finished.recv_timeout(bound);
    }
}

impl<C: Codec> Inner<C> {
    fn count<T>(&self, outcome: &Result<T, TaskError>) {
        let counter = match outcome {
            Ok(_) => &self.completed,
            Err(TaskError::Cancelled) => &self.cancelled,
            Err(e) => {
                if e.is_timed_out() {
                    self.timed_out.fetch_add(1, Ordering::Relaxed);
                }
                &self.failed
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl<C: Codec> NatsPool<C> {
    /// Resolves `tasks` `Cancelled` and removes them from the server (bounded), telling
    /// workers to stop them with `stop`. Returns how many.
    fn cancel(&self, tasks: Vec<(Withdrawn, Resolver)>, stop: bool) -> usize {
        let (tasks, resolvers): (Vec<_>, Vec<_>) = tasks.into_iter().unzip();
        // Given up on the server first: once a future says `Cancelled`, no worker starts it.
        if !tasks.is_empty() {
            let job = withdraw(Arc::clone(&self.inner), tasks, stop);
            run_bounded(&self.inner.handle, job, WITHDRAW_BOUND);
        }
        let n = resolvers.len();
        self.inner.cancelled.fetch_add(n as u64, Ordering::Relaxed);
        for resolve in resolvers {
            resolve.resolve(Err(TaskError::Cancelled));
        }
        n
    }
}

impl<C: Codec> Executor for NatsPool<C> {
    /// Stops taking tasks. `Wait` waits for the answers of outstanding tasks; `CancelPending`
    /// cancels those no worker has started and waits for the others; `Kill` cancels all at
    /// once. Waits are bounded by the builder's `shutdown_timeout`. A cancelled task resolves
    /// `Cancelled` and is removed from the server (no worker takes it afterwards); one a
    /// worker runs when it is given up is stopped there.
    fn shutdown(&self, mode: Shutdown) -> ShutdownReport {
        let inner = &self.inner;
        if inner.shut_down.swap(true, Ordering::SeqCst) {
            return ShutdownReport::default();
        }
        inner.pending.wake_all();
        let deadline = Instant::now() + inner.policy.shutdown_timeout;
        let mut cancelled = 0;
        if matches!(mode, Shutdown::CancelPending) {
            cancelled += self.cancel(inner.pending.drain(true), false);
        }
        if !matches!(mode, Shutdown::Kill) {
            let _ = inner.pending.wait_empty(deadline);
        }
        cancelled += self.cancel(inner.pending.drain(false), true);
        // Nothing more to collect: this client's answers consumer goes (the collector,
        // seeing the pool shut down, does not make it again).
        let (js, results, client) = (
            inner.js.clone(),
            inner.names.results_stream(),
            inner.client.clone(),
        );
        let forget = async move {
            if let Ok(stream) = js.get_stream(results).await {
                let _ = stream.delete_consumer(&client).await;
            }
        };
        run_bounded(&inner.handle, forget, WITHDRAW_BOUND);
        ShutdownReport {
            cancelled,
            ..ShutdownReport::default()
        }
    }

    /// `pending`: tasks no worker has said it started; `busy`: started and not answered;
    /// `workers` and `idle` are not known to a caller (0).
    fn stats(&self) -> Stats {
        let inner = &self.inner;
        let (pending, busy) = inner.pending.counts();
        Stats {
            pending,
            busy,
            submitted: inner.submitted.load(Ordering::Relaxed),
            completed: inner.completed.load(Ordering::Relaxed),
            failed: inner.failed.load(Ordering::Relaxed),
            cancelled: inner.cancelled.load(Ordering::Relaxed),
            timed_out: inner.timed_out.load(Ordering::Relaxed),
            ..Stats::default()
        }
    }
}
