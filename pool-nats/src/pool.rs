//! The caller's side: [`NatsPool`] publishes tasks and resolves their futures from the
//! answers on its own results subject, once per task id.

use std::any::type_name;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use pool_codec::{Codec, DefaultCodec};
use pool_core::{
    BrokenReason, BuildError, CodecFailure, ConfigError, Executor, Future, Shutdown,
    ShutdownReport, Side, Stats, SubmitError, SubmitErrorKind, TaskError,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::server;
use crate::wire::{self, Names, Outcome};

/// What resolves a pending task's future from its answer.
type Resolver = Box<dyn FnOnce(Result<Vec<u8>, TaskError>) + Send>;

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
}

impl<C: Codec> Clone for NatsPool<C> {
    fn clone(&self) -> Self {
        NatsPool {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<C: Codec> {
    codec: C,
    names: Names,
    client: String,
    js: jetstream::Context,
    pending: Arc<Mutex<HashMap<String, Resolver>>>,
    next: AtomicU64,
    shut_down: AtomicBool,
    submitted: AtomicU64,
    counts: Arc<Counts>,
    shutdown_timeout: Duration,
    // Last: dropped after everything that may still spawn on it.
    rt: tokio::runtime::Runtime,
}

#[derive(Default)]
struct Counts {
    completed: AtomicU64,
    failed: AtomicU64,
}

/// Settings of a [`NatsPool`].
#[must_use]
pub struct NatsPoolBuilder<C: Codec = DefaultCodec> {
    url: String,
    prefix: String,
    codec: C,
    connect_timeout: Duration,
    shutdown_timeout: Duration,
}

impl NatsPool<DefaultCodec> {
    /// A builder: server `nats://127.0.0.1:4222`, prefix `pool`, the default codec.
    pub fn builder() -> NatsPoolBuilder<DefaultCodec> {
        NatsPoolBuilder {
            url: "nats://127.0.0.1:4222".to_owned(),
            prefix: "pool".to_owned(),
            codec: DefaultCodec::default(),
            connect_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(30),
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
            shutdown_timeout: self.shutdown_timeout,
        }
    }

    /// How long `build` waits for the server. Default 10 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How long `shutdown(Shutdown::Wait)` waits for outstanding tasks before cancelling
    /// them. Default 30 s.
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.shutdown_timeout = d;
        self
    }

    /// Connects, makes sure the streams exist, and starts collecting answers.
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
        let pending: Arc<Mutex<HashMap<String, Resolver>>> = Arc::default();
        let counts = Arc::<Counts>::default();
        let js = rt
            .block_on(async {
                let js = server::connect(&self.url, self.connect_timeout).await?;
                server::ensure_streams(&js, &names).await?;
                let answers = answers_consumer(&js, &names, &client).await?;
                Ok::<_, String>((js, answers))
            })
            .map_err(fail)?;
        let (js, answers) = js;
        rt.spawn(collect(
            answers,
            self.codec.clone(),
            Arc::clone(&pending),
            Arc::clone(&counts),
        ));
        Ok(NatsPool {
            inner: Arc::new(Inner {
                codec: self.codec,
                names,
                client,
                js,
                pending,
                next: AtomicU64::new(1),
                shut_down: AtomicBool::new(false),
                submitted: AtomicU64::new(0),
                counts,
                shutdown_timeout: self.shutdown_timeout,
                rt,
            }),
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

/// This client's durable consumer of its answers.
async fn answers_consumer(
    js: &jetstream::Context,
    names: &Names,
    client: &str,
) -> Result<consumer::PullConsumer, String> {
    let stream = js
        .get_stream(names.results_stream())
        .await
        .map_err(|e| format!("the results stream is missing: {e}"))?;
    stream
        .get_or_create_consumer(
            client,
            consumer::pull::Config {
                durable_name: Some(client.to_owned()),
                filter_subject: names.results_subject(client),
                ack_policy: consumer::AckPolicy::Explicit,
                inactive_threshold: Duration::from_secs(3600),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("cannot create this client's answers consumer: {e}"))
}

/// Resolves futures from answers, each task id once: a repeated answer (a task that ran
/// twice after a redelivery) finds no pending entry and is only acknowledged.
async fn collect<C: Codec>(
    answers: consumer::PullConsumer,
    codec: C,
    pending: Arc<Mutex<HashMap<String, Resolver>>>,
    counts: Arc<Counts>,
) {
    let mut messages = match answers.messages().await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(target: "pool", error = %e, "cannot read answers; no task will resolve");
            return;
        }
    };
    while let Some(message) = messages.next().await {
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(target: "pool", error = %e, "reading answers");
                continue;
            }
        };
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(wire::TASK))
            .map(|v| v.as_str().to_owned());
        let resolver = id.and_then(|id| {
            pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id)
        });
        if let Some(resolve) = resolver {
            let outcome = match codec.decode::<Outcome>(&message.payload) {
                Ok(Outcome::Ok(bytes)) => Ok(bytes),
                Ok(Outcome::Err(e)) => Err(e),
                Err(e) => Err(TaskError::Decode(CodecFailure {
                    side: Side::Parent,
                    type_name: "the task's outcome".to_owned(),
                    codec: codec.name().into_owned(),
                    message: e.message().to_owned(),
                })),
            };
            let counter = if outcome.is_ok() {
                &counts.completed
            } else {
                &counts.failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
            resolve(outcome);
        }
        if let Err(e) = message.ack().await {
            tracing::warn!(target: "pool", error = %e, "acknowledging an answer");
        }
    }
}

impl<C: Codec> NatsPool<C> {
    /// Runs the named task `name` on `arg` on some worker, anywhere.
    ///
    /// # Errors
    ///
    /// The pool is shut down, or `arg` cannot be encoded; the argument is handed back.
    pub fn submit_named<A, R>(&self, name: &str, arg: A) -> Result<Future<R>, SubmitError<A>>
    where
        A: Serialize + Send + 'static,
        R: DeserializeOwned + Send + 'static,
    {
        let inner = &self.inner;
        if inner.shut_down.load(Ordering::SeqCst) {
            return Err(SubmitError::new(SubmitErrorKind::Shutdown, Some(arg)));
        }
        let mut payload = Vec::new();
        if let Err(e) = inner.codec.encode(&arg, &mut payload) {
            let failure = CodecFailure {
                side: Side::Parent,
                type_name: type_name::<A>().to_owned(),
                codec: inner.codec.name().into_owned(),
                message: e.message().to_owned(),
            };
            return Err(SubmitError::new(
                SubmitErrorKind::Encode(failure),
                Some(arg),
            ));
        }
        let (promise, future) = pool_core::promise::<R>();
        let id = format!(
            "{}-{}",
            inner.client,
            inner.next.fetch_add(1, Ordering::Relaxed)
        );
        let codec = inner.codec.clone();
        let resolve: Resolver = Box::new(move |outcome| {
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
            promise.complete(value);
        });
        inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), resolve);
        inner.submitted.fetch_add(1, Ordering::Relaxed);
        let js = inner.js.clone();
        let subject = inner.names.task_subject(name);
        let reply = inner.names.results_subject(&inner.client);
        let pending = Arc::clone(&inner.pending);
        let counts = Arc::clone(&inner.counts);
        inner.rt.spawn(async move {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", id.as_str());
            headers.insert(wire::TASK, id.as_str());
            headers.insert(wire::REPLY, reply.as_str());
            let stored = match js
                .publish_with_headers(subject.clone(), headers, payload.into())
                .await
            {
                Ok(ack) => ack.await.map(drop).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(why) = stored {
                let resolve = pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id);
                if let Some(resolve) = resolve {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                    resolve(Err(TaskError::Broken(BrokenReason::new(format!(
                        "the task could not be stored on {subject}: {why}"
                    )))));
                }
            }
        });
        Ok(future)
    }

    /// Tasks submitted and not answered yet.
    fn outstanding(&self) -> usize {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl<C: Codec> Executor for NatsPool<C> {
    /// Stops taking tasks. `Wait` waits (bounded by the builder's `shutdown_timeout`) for the
    /// answers of outstanding tasks; what is still outstanding then, or at once with `Cancel`
    /// and `Kill`, resolves `Cancelled` (the tasks may still run on a worker).
    fn shutdown(&self, mode: Shutdown) -> ShutdownReport {
        if self.inner.shut_down.swap(true, Ordering::SeqCst) {
            return ShutdownReport::default();
        }
        if matches!(mode, Shutdown::Wait) {
            let deadline = Instant::now() + self.inner.shutdown_timeout;
            while self.outstanding() > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let left: Vec<Resolver> = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, r)| r)
            .collect();
        let cancelled = left.len();
        for resolve in left {
            resolve(Err(TaskError::Cancelled));
        }
        ShutdownReport {
            cancelled,
            ..ShutdownReport::default()
        }
    }

    fn stats(&self) -> Stats {
        Stats {
            pending: self.outstanding(),
            submitted: self.inner.submitted.load(Ordering::Relaxed),
            completed: self.inner.counts.completed.load(Ordering::Relaxed),
            failed: self.inner.counts.failed.load(Ordering::Relaxed),
            ..Stats::default()
        }
    }
}
