//! References of the `nats.*` rows: the same named task on a local [`ProcessPool`], and the
//! raw async-nats floor — the messages pool-nats exchanges for a task, with nothing else.
//!
//! The floor, per task (see `benches/README.md` for why it is a lower bound):
//!
//! 1. the caller publishes the task to `<prefix>.tasks.<name>` in the work-queue stream with
//!    the headers pool-nats sends and awaits the store acknowledgement;
//! 2. a worker task in this process, on its own thread and connection, pulls it from the
//!    workers' consumer, [`WORKERS`] + [`nats::AHEAD`] tasks asked for at a time (as many as
//!    our worker holds before running them), computes the answer inline, publishes it to the
//!    caller's results subject (`Nats-Msg-Id` `r-<id>`, `Pool-Task`; the same outcome
//!    envelope and codec as pool-nats, so the same bytes) and awaits its store
//!    acknowledgement, then acknowledges the task with a double ack — any number of tasks
//!    being answered at once, as our worker answers off its slots;
//! 3. the caller receives the answer from its durable pull consumer and acknowledges it.
//!
//! What pool-nats sets up, pool-nats makes: a throwaway `NatsPool` on the floor's own prefix
//! creates the two streams and the workers' consumer (used as it is), and submits one task whose stored headers become the floor's template
//! (names and values, the ids replaced) before it is withdrawn. So the streams, the consumer
//! and the headers stay pool-nats' own as pool-nats changes.

use super::{Made, WORKERS};
use crate::measure::{echoed, submit_all, timed};
use crate::nats::{self, DOUBLE_TASK, NOOP_TASK, NatsServer};
use crate::work::{check_doubled, double, noop};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use futures::{StreamExt, TryStreamExt};
use pool_codec::{Codec, DefaultCodec};
use pool_core::{Executor, Shutdown};
use pool_nats::NatsPool;
use pool_process::ProcessPool;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The header naming the task an answer belongs to (pool-nats' wire format).
const TASK_HEADER: &str = "Pool-Task";
/// The header naming the subject a task's answer goes to.
const REPLY_HEADER: &str = "Pool-Reply";
/// The durable consumer every worker of a prefix pulls from (pool-nats creates it).
const WORKERS_CONSUMER: &str = "workers";
/// How long set-up waits for pool-nats' sample task to be stored.
const SETUP_WAIT: Duration = Duration::from_secs(10);
/// How long the floor's caller waits for one answer before the operation fails.
const ANSWER_WAIT: Duration = Duration::from_secs(60);
/// Tasks whose store acknowledgement the floor's caller awaits at once in `nats.tasks_*`:
/// async-nats' default bound on unacknowledged publishes, which our pool runs into too.
const PUBLISH_WINDOW: usize = 5_000;

/// The answer's envelope, shaped as pool-nats' `Outcome` (an enum whose first variant `Ok`
/// carries the encoded result as bytes), so the same codec gives the same bytes.
#[derive(Debug, Serialize, Deserialize)]
enum Outcome {
    Ok(#[serde(with = "serde_bytes")] Vec<u8>),
}

fn named_pool() -> Result<ProcessPool, String> {
    let pool = ProcessPool::builder()
        .min_workers(WORKERS)
        .max_workers(WORKERS)
        .named_tasks([NOOP_TASK, DOUBLE_TASK])
        .build()
        .map_err(|e| format!("ProcessPool: {e}"))?;
    let warm: Vec<_> = (0..WORKERS as u64 * 4)
        .map(|i| {
            pool.submit_named::<u64, u64>(NOOP_TASK, i)
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    for (i, f) in warm.into_iter().enumerate() {
        match f.result() {
            Ok(v) if v == i as u64 => {}
            Ok(v) => return Err(format!("ProcessPool warm-up: got {v}, expected {i}")),
            Err(e) => return Err(format!("ProcessPool warm-up: {e}")),
        }
    }
    Ok(pool)
}

/// `nats.roundtrip` on one machine: `ProcessPool::submit_named::<u64, u64>(noop, x)` then
/// `future.result()`, on a named-task pool of [`WORKERS`].
///
/// # Errors
///
/// The pool could not be built.
pub fn process_named_roundtrip() -> Made {
    let pool = named_pool()?;
    let mut i = 0u64;
    Ok(Box::new(move || {
        i += 1;
        let x = i;
        let (d, got) = timed(|| {
            pool.submit_named::<u64, u64>(NOOP_TASK, x)
                .map_err(|e| e.to_string())
                .and_then(|f| f.result().map_err(|e| e.to_string()))
        });
        echoed(d, got, x)
    }))
}

/// `nats.tasks_*` on one machine: `n` named tasks ([`double`]) submitted one by one, every
/// future kept, then every result collected in order.
///
/// # Errors
///
/// The pool could not be built.
pub fn process_named_tasks(n: usize) -> Made {
    let pool = named_pool()?;
    Ok(Box::new(move || {
        let (d, out) = timed(|| {
            submit_all(
                0..n as u64,
                |i| {
                    pool.submit_named::<u64, u64>(DOUBLE_TASK, i)
                        .map_err(|e| e.to_string())
                },
                |f| f.result().map_err(|e| e.to_string()),
            )
        });
        check_doubled(&out?, n as u64).map(|()| d)
    }))
}

/// The floor's caller, with its worker running on a thread of this process.
///
/// Dropping it stops the worker and waits for its thread; on an external server it also
/// deletes the floor's streams.
struct Floor {
    rt: tokio::runtime::Runtime,
    js: jetstream::Context,
    answers: consumer::pull::Stream,
    headers: TaskHeaders,
    client: String,
    next: u64,
    prefix: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    worker: Option<std::thread::JoinHandle<Result<(), String>>>,
    server: Arc<NatsServer>,
}

/// A client id of pool-nats' shape (`c<pid>x<48 bits of time, hex>x<n>`), so the task ids,
/// subjects and headers have the same lengths.
fn client_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("c{}x{:x}x0", std::process::id(), nanos & 0xffff_ffff_ffff)
}

fn e2s(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Floor {
    fn start() -> Result<Self, String> {
        let server = nats::server()?;
        let prefix = nats::unique_prefix("floor");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("the floor's runtime: {e}"))?;
        let template = made_by_pool_nats(&rt, &server, &prefix)?;
        let client = client_id();
        let headers = template.for_client(&client);
        let reply = headers.reply()?.to_owned();
        let (js, answers) = rt.block_on(async {
            let js = jetstream::new(async_nats::connect(server.url()).await.map_err(e2s)?);
            // The caller's answers consumer, configured as pool-nats configures its own.
            let answers = js
                .get_stream(nats::results_stream(&prefix))
                .await
                .map_err(e2s)?
                .get_or_create_consumer(
                    &client,
                    consumer::pull::Config {
                        durable_name: Some(client.clone()),
                        filter_subject: reply,
                        ack_policy: consumer::AckPolicy::Explicit,
                        inactive_threshold: Duration::from_secs(3600),
                        ..Default::default()
                    },
                )
                .await
                .map_err(e2s)?
                .messages()
                .await
                .map_err(e2s)?;
            Ok::<_, String>((js, answers))
        })?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let worker = {
            let (url, prefix) = (server.url().to_owned(), prefix.clone());
            std::thread::Builder::new()
                .name("nats-floor-worker".into())
                .spawn(move || floor_worker(&url, &prefix, WORKERS + nats::AHEAD, stopped))
                .map_err(|e| format!("cannot start the floor's worker thread: {e}"))?
        };
        let mut me = Floor {
            rt,
            js,
            answers,
            headers,
            client,
            next: 0,
            prefix,
            stop: Some(stop),
            worker: Some(worker),
            server,
        };
        for i in 0..WORKERS as u64 * 4 {
            let (_, got) = me.roundtrip(i)?;
            if got != i {
                return Err(format!("nats floor warm-up: got {got}, expected {i}"));
            }
        }
        Ok(me)
    }

    /// Why the worker is gone, if it is.
    fn worker_failure(&mut self) -> Option<String> {
        if !self.worker.as_ref()?.is_finished() {
            return None;
        }
        let ended = self.worker.take()?.join();
        Some(match ended {
            Ok(Err(e)) => format!("the floor's worker failed: {e}"),
            _ => "the floor's worker stopped".to_string(),
        })
    }

    /// One task published, its answer received and acknowledged; the time and the answer.
    fn roundtrip(&mut self, x: u64) -> Result<(Duration, u64), String> {
        self.next += 1;
        let id = format!("{}-{}", self.client, self.next);
        let subject = format!("{}.tasks.{NOOP_TASK}", self.prefix);
        let (js, answers, headers) = (&self.js, &mut self.answers, &self.headers);
        let (d, got) = timed(|| {
            self.rt.block_on(async {
                publish_task(js, &subject, headers.for_task(&id), x).await?;
                let (task, value) = receive_answer(answers).await?;
                if task != id {
                    return Err(format!("answer for {task}, expected {id}"));
                }
                Ok(value)
            })
        });
        match got {
            Ok(v) => Ok((d, v)),
            Err(e) => Err(self.worker_failure().unwrap_or(e)),
        }
    }

    /// `n` tasks published (at most [`PUBLISH_WINDOW`] store acknowledgements awaited at
    /// once) while their answers are received and acknowledged; the results by task number.
    fn tasks(&mut self, n: usize) -> Result<(Duration, Vec<u64>), String> {
        let first = self.next + 1;
        self.next += n as u64;
        let subject = format!("{}.tasks.{DOUBLE_TASK}", self.prefix);
        let (js, answers, client, headers) =
            (&self.js, &mut self.answers, &self.client, &self.headers);
        let (d, got) = timed(|| {
            self.rt.block_on(async {
                let publishing = futures::stream::iter(0..n as u64)
                    .map(|i| {
                        let subject = &subject;
                        async move {
                            let id = format!("{client}-{}", first + i);
                            publish_task(js, subject, headers.for_task(&id), i).await
                        }
                    })
                    .buffer_unordered(PUBLISH_WINDOW)
                    .try_for_each(|()| std::future::ready(Ok(())));
                let collecting = async {
                    let mut out = vec![0u64; n];
                    for _ in 0..n {
                        let (task, value) = receive_answer(answers).await?;
                        let k = task
                            .rsplit_once('-')
                            .and_then(|(_, k)| k.parse::<u64>().ok())
                            .and_then(|k| k.checked_sub(first))
                            .filter(|&k| k < n as u64)
                            .ok_or_else(|| format!("an answer for an unknown task {task}"))?;
                        out[k as usize] = value;
                    }
                    Ok::<_, String>(out)
                };
                // The first error ends both halves.
                futures::future::try_join(publishing, collecting)
                    .await
                    .map(|((), out)| out)
            })
        });
        match got {
            Ok(v) => Ok((d, v)),
            Err(e) => Err(self.worker_failure().unwrap_or(e)),
        }
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        nats::remove_streams(&self.server, &self.prefix);
    }
}

/// The headers of a task as pool-nats sends them, with the ids of one sample task, which the
/// floor replaces by its own.
#[derive(Debug)]
struct TaskHeaders {
    fields: Vec<(String, String)>,
    /// The task id in `fields` (the values equal to it are the task's id).
    id: String,
    /// The client id in `fields` (inside the reply subject and the like).
    client: String,
}

impl TaskHeaders {
    /// The template for another client: its id in place of the sample's.
    fn for_client(&self, client: &str) -> TaskHeaders {
        TaskHeaders {
            fields: self
                .fields
                .iter()
                .map(|(k, v)| {
                    let v = if *v == self.id {
                        v.clone()
                    } else {
                        v.replace(&self.client, client)
                    };
                    (k.clone(), v)
                })
                .collect(),
            // The fields equal to the sample's id keep it, to be replaced task by task.
            id: self.id.clone(),
            client: client.to_owned(),
        }
    }

    /// The results subject the answers go to.
    fn reply(&self) -> Result<&str, String> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(REPLY_HEADER))
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| format!("pool-nats' task has no {REPLY_HEADER} header"))
    }

    /// The headers of task `id`.
    fn for_task(&self, id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in &self.fields {
            let v = if *v == self.id { id } else { v.as_str() };
            headers.insert(k.as_str(), v);
        }
        headers
    }
}

/// Has pool-nats set up `prefix` (its two streams, its workers' consumer) with a throwaway
/// [`NatsPool`], and returns the headers of a task it stored there; the task is withdrawn
/// and the task stream purged before this returns. `rt` runs the floor's own requests (the
/// pool has its runtime, which must not be entered from another).
fn made_by_pool_nats(
    rt: &tokio::runtime::Runtime,
    server: &NatsServer,
    prefix: &str,
) -> Result<TaskHeaders, String> {
    let pool = NatsPool::builder()
        .url(server.url())
        .prefix(prefix)
        .build()
        .map_err(|e| format!("setting up the floor's streams with a NatsPool: {e}"))?;
    let sample = pool.submit_named::<u64, u64>(NOOP_TASK, 1).map_err(e2s)?;
    let subject = format!("{prefix}.tasks.{NOOP_TASK}");
    let found = rt.block_on(async {
        let js = jetstream::new(async_nats::connect(server.url()).await.map_err(e2s)?);
        let stream = js
            .get_stream(nats::tasks_stream(prefix))
            .await
            .map_err(e2s)?;
        let deadline = std::time::Instant::now() + SETUP_WAIT;
        loop {
            match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(m) => return Ok((stream, m)),
                Err(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => return Err(format!("pool-nats' sample task was not stored: {e}")),
            }
        }
    });
    // Withdrawn (cancelled), so no worker sees it; the purge makes sure.
    drop(sample);
    pool.shutdown(Shutdown::CancelPending);
    drop(pool);
    let (stream, stored) = found?;
    rt.block_on(async { stream.purge().await }).map_err(e2s)?;
    let fields: Vec<(String, String)> = stored
        .headers
        .iter()
        .flat_map(|(k, vs)| {
            vs.iter()
                .map(move |v| (AsRef::<str>::as_ref(k).to_owned(), v.as_str().to_owned()))
        })
        .collect();
    let id = fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(TASK_HEADER))
        .map(|(_, v)| v.clone())
        .ok_or_else(|| format!("pool-nats' task has no {TASK_HEADER} header"))?;
    let client = id
        .rsplit_once('-')
        .map(|(c, _)| c.to_owned())
        .ok_or_else(|| format!("pool-nats' task id {id:?} is not <client>-<n>"))?;
    Ok(TaskHeaders { fields, id, client })
}

/// Publishes a task (argument `x`) with `headers` and awaits its store ack.
async fn publish_task(
    js: &jetstream::Context,
    subject: &str,
    headers: HeaderMap,
    x: u64,
) -> Result<(), String> {
    let mut payload = Vec::new();
    DefaultCodec::default()
        .encode(&x, &mut payload)
        .map_err(e2s)?;
    js.publish_with_headers(subject.to_owned(), headers, payload.into())
        .await
        .map_err(e2s)?
        .await
        .map_err(e2s)?;
    Ok(())
}

/// The next answer from the caller's consumer, acknowledged: its task id and value.
async fn receive_answer(answers: &mut consumer::pull::Stream) -> Result<(String, u64), String> {
    let message = tokio::time::timeout(ANSWER_WAIT, answers.next())
        .await
        .map_err(|_| format!("no answer within {ANSWER_WAIT:?}"))?
        .ok_or("the answers consumer ended")?
        .map_err(e2s)?;
    let task = message
        .headers
        .as_ref()
        .and_then(|h| h.get(TASK_HEADER))
        .ok_or("an answer without its task id")?
        .as_str()
        .to_owned();
    let codec = DefaultCodec::default();
    let Outcome::Ok(bytes) = codec.decode(&message.payload).map_err(e2s)?;
    let value = codec.decode::<u64>(&bytes).map_err(e2s)?;
    message.ack().await.map_err(e2s)?;
    Ok((task, value))
}

/// The floor's worker: pulls tasks of `prefix` from a durable consumer holding at most
/// `depth` unacknowledged, answers each, until `stop` fires (or is dropped).
fn floor_worker(
    url: &str,
    prefix: &str,
    depth: usize,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(e2s)?;
    rt.block_on(async {
        let js = jetstream::new(async_nats::connect(url).await.map_err(e2s)?);
        // pool-nats' workers' consumer as it is, pulled `depth` tasks at a time: as many as
        // our worker holds before running them (its slots and the tasks it asks for ahead).
        let tasks = js
            .get_stream(nats::tasks_stream(prefix))
            .await
            .map_err(e2s)?
            .get_consumer::<consumer::pull::Config>(WORKERS_CONSUMER)
            .await
            .map_err(|e| format!("pool-nats' {WORKERS_CONSUMER:?} consumer is missing: {e}"))?
            .stream()
            .max_messages_per_batch(depth)
            .messages()
            .await
            .map_err(e2s)?;
        // Answers stored and tasks acknowledged concurrently, as many at once as come: our
        // worker also stores and acknowledges off its slots.
        let serving = tasks
            .map_err(e2s)
            .try_for_each_concurrent(None, |task| answer(&js, task));
        tokio::select! {
            served = serving => served,
            _ = stop => Ok(()),
        }
    })
}

/// Runs one task inline and answers it: the answer stored, then the task double-acked.
async fn answer(js: &jetstream::Context, task: jetstream::Message) -> Result<(), String> {
    let header = |k: &str| {
        task.headers
            .as_ref()
            .and_then(|h| h.get(k))
            .map(|v| v.as_str())
            .ok_or_else(|| format!("a task without {k}"))
    };
    let (id, reply) = (header(TASK_HEADER)?, header(REPLY_HEADER)?);
    let codec = DefaultCodec::default();
    let x = codec.decode::<u64>(&task.payload).map_err(e2s)?;
    let y = if task.subject.ends_with(DOUBLE_TASK) {
        double(x)
    } else {
        noop(x)
    };
    let mut result = Vec::new();
    codec.encode(&y, &mut result).map_err(e2s)?;
    let mut payload = Vec::new();
    codec
        .encode(&Outcome::Ok(result), &mut payload)
        .map_err(e2s)?;
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("r-{id}").as_str());
    headers.insert(TASK_HEADER, id);
    js.publish_with_headers(reply.to_owned(), headers, payload.into())
        .await
        .map_err(e2s)?
        .await
        .map_err(e2s)?;
    task.double_ack().await.map_err(e2s)
}

/// `nats.roundtrip` floor: one task through the server and a worker and back, raw.
///
/// # Errors
///
/// No server, or the floor's streams, consumers or worker could not be set up.
pub fn floor_roundtrip() -> Made {
    let mut floor = Floor::start()?;
    let mut i = 0u64;
    Ok(Box::new(move || {
        i += 1;
        let (d, got) = floor.roundtrip(i)?;
        if got == i {
            Ok(d)
        } else {
            Err(format!("got {got}, expected {i}"))
        }
    }))
}

/// `nats.tasks_*` floor: `n` tasks through the server and a worker holding at most
/// [`WORKERS`] at once, all answers collected.
///
/// # Errors
///
/// No server, or the floor's streams, consumers or worker could not be set up.
pub fn floor_tasks(n: usize) -> Made {
    let mut floor = Floor::start()?;
    Ok(Box::new(move || {
        let (d, out) = floor.tasks(n)?;
        check_doubled(&out, n as u64).map(|()| d)
    }))
}
