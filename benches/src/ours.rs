//! Our pools, driven exactly like the references: [`pool_thread::ThreadPool`],
//! [`pool_process::ProcessPool`] and [`pool_nats::NatsPool`] (with its worker in this
//! process), each with [`WORKERS`] workers kept alive for the whole scenario
//! (`min_workers` = `max_workers`, so no idle shrink between rounds).

use crate::measure::{echoed, submit_all, timed};
use crate::nats;
use crate::refs::{Made, WORKERS};
use crate::work::{burn, byte_len, check_burned, check_doubled, double, noop, work_iters};
use pool_core::{Executor, Shutdown};
use pool_nats::{NatsPool, NatsWorker};
use pool_process::{ProcessPool, StartMethod, TransportKind};
use pool_thread::ThreadPool;
use serde_bytes::ByteBuf;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A process-pool variant: the default transport, or a named one.
#[derive(Debug)]
pub struct ProcessVariant {
    /// Suffix of the scenario ids (`None` for the default transport).
    pub suffix: Option<&'static str>,
    /// The transport our pool uses in these rows.
    pub transport: TransportKind,
}

/// The variants measured: the default (pipes) without a suffix, then the other transports.
/// A new transport is one more entry here; its rows (`process.<scenario>.<suffix>`) are
/// measured against the floors only, procspawn being compared once, on the default rows.
pub const PROCESS_VARIANTS: &[ProcessVariant] = &[
    ProcessVariant {
        suffix: None,
        transport: TransportKind::Pipe,
    },
    ProcessVariant {
        suffix: Some("socket"),
        transport: TransportKind::LocalSocket,
    },
    ProcessVariant {
        suffix: Some("shm"),
        transport: TransportKind::Shm,
    },
];

fn thread_pool() -> Result<ThreadPool, String> {
    let pool = ThreadPool::builder()
        .min_workers(WORKERS)
        .max_workers(WORKERS)
        .build()
        .map_err(|e| format!("ThreadPool: {e}"))?;
    let warm: Vec<_> = (0..WORKERS as u64 * 4)
        .map(|i| pool.submit(move || i).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    for f in warm {
        f.result().map_err(|e| format!("ThreadPool warm-up: {e}"))?;
    }
    Ok(pool)
}

/// `thread.roundtrip`: `pool.submit(closure)` then `future.result()`.
///
/// # Errors
///
/// The pool could not be built.
pub fn thread_roundtrip() -> Made {
    let pool = thread_pool()?;
    let mut i = 0u64;
    Ok(Box::new(move || {
        i += 1;
        let x = i;
        let (d, got) = timed(|| {
            pool.submit(move || noop(black_box(x)))
                .map_err(|e| e.to_string())
                .and_then(|f| f.result().map_err(|e| e.to_string()))
        });
        echoed(d, got, x)
    }))
}

/// `thread.tasks_*`: `n` closures submitted one by one, every future kept, then every result
/// collected in order.
///
/// # Errors
///
/// The pool could not be built.
pub fn thread_tasks(n: usize) -> Made {
    let pool = thread_pool()?;
    Ok(Box::new(move || {
        let (d, out) = timed(|| {
            submit_all(
                0..n as u64,
                |i| {
                    pool.submit(move || double(black_box(i)))
                        .map_err(|e| e.to_string())
                },
                |f| f.result().map_err(|e| e.to_string()),
            )
        });
        check_doubled(&out?, n as u64).map(|()| d)
    }))
}

/// `thread.submit_*x*`: `submitters` threads started together (a scoped thread each, inside
/// the clock, as for every subject of the row), thread `t` submitting the closures
/// `double(i)` for `i` in its own `per` indices one by one, keeping every future, then
/// collecting its results in order; the submitters' results are concatenated in order.
///
/// # Errors
///
/// The pool could not be built.
pub fn thread_submit_many(submitters: usize, per: usize) -> Made {
    let pool = thread_pool()?;
    Ok(Box::new(move || {
        let (d, out) = timed(|| {
            crate::refs::thread::from_submitters(submitters, per, |range| {
                submit_all(
                    range,
                    |i| {
                        pool.submit(move || double(black_box(i)))
                            .map_err(|e| e.to_string())
                    },
                    |f| f.result().map_err(|e| e.to_string()),
                )
            })
        });
        check_doubled(&out?, (submitters * per) as u64).map(|()| d)
    }))
}

/// `thread.map_1m`: `pool.map_all(double, items)` with the input `Vec` handed over by value,
/// the way a caller who owns its data calls it. The copy handed over is made outside the clock
/// (like the payloads of the process scenarios); dropping the result is outside it too.
///
/// # Errors
///
/// The pool could not be built.
pub fn thread_map(n: usize) -> Made {
    let pool = thread_pool()?;
    let items: Vec<u64> = (0..n as u64).collect();
    Ok(Box::new(move || {
        let input = items.clone();
        let (d, out) = timed(|| pool.map_all(double, input));
        check_doubled(&out.map_err(|e| e.to_string())?, n as u64).map(|()| d)
    }))
}

/// `thread.map_iter_1m`: `pool.map_all(double, items.iter().copied())`: the `Executor` map
/// over a borrowing iterator, collected; the caller's serial copy of the input is inside the
/// clock.
///
/// # Errors
///
/// The pool could not be built.
pub fn thread_map_iter(n: usize) -> Made {
    let pool = thread_pool()?;
    let items: Vec<u64> = (0..n as u64).collect();
    Ok(Box::new(move || {
        let (d, out) = timed(|| pool.map_all(double, items.iter().copied()));
        check_doubled(&out.map_err(|e| e.to_string())?, n as u64).map(|()| d)
    }))
}

/// `thread.map_slice_*`: `pool.map_slice(|x| double(*x), &items)`: ThreadPool's borrowed-slice
/// map, the closest match of rayon's `par_iter().map().collect()`.
///
/// # Errors
///
/// The pool could not be built.
pub fn thread_map_slice(n: usize) -> Made {
    let pool = thread_pool()?;
    let items: Vec<u64> = (0..n as u64).collect();
    Ok(Box::new(move || {
        let (d, out) = timed(|| pool.map_slice(|x: &u64| double(*x), &items));
        check_doubled(&out.map_err(|e| e.to_string())?, n as u64).map(|()| d)
    }))
}

fn process_builder(v: &ProcessVariant) -> pool_process::ProcessPoolBuilder {
    ProcessPool::builder()
        .min_workers(WORKERS)
        .max_workers(WORKERS)
        .transport(v.transport)
}

fn process_pool(v: &ProcessVariant) -> Result<ProcessPool, String> {
    let pool = process_builder(v)
        .build()
        .map_err(|e| format!("ProcessPool: {e}"))?;
    // Both workers up and warm: a few round trips in flight together.
    let warm: Vec<_> = (0..WORKERS as u64 * 4)
        .map(|i| pool.submit(noop, i).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    for (i, f) in warm.into_iter().enumerate() {
        let got = f
            .result()
            .map_err(|e| format!("ProcessPool warm-up: {e}"))?;
        if got != i as u64 {
            return Err(format!("ProcessPool warm-up: got {got}, expected {i}"));
        }
    }
    Ok(pool)
}

/// How a round trip is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundTrip {
    /// `pool.apply(noop, x)`: the blocking call (the caller borrows an idle worker).
    Apply,
    /// `pool.submit(noop, x)` then `future.result()`: through the pool's engine thread.
    Submit,
}

/// `process.roundtrip`: `pool.apply(noop, x)`; `process.roundtrip.submit`:
/// `pool.submit(noop, x)` then `future.result()`.
///
/// # Errors
///
/// The pool could not be built.
pub fn process_roundtrip(v: &ProcessVariant, how: RoundTrip) -> Made {
    let pool = process_pool(v)?;
    let mut i = 0u64;
    Ok(Box::new(move || {
        i += 1;
        let x = i;
        let (d, got) = timed(|| match how {
            RoundTrip::Apply => pool.apply(noop, x).map_err(|e| e.to_string()),
            RoundTrip::Submit => pool
                .submit(noop, x)
                .map_err(|e| e.to_string())
                .and_then(|f| f.result().map_err(|e| e.to_string())),
        });
        echoed(d, got, x)
    }))
}

/// `process.tasks_*`: `n` tasks `pool.submit(double, i)` one by one, every future kept, then
/// every result collected in order.
///
/// # Errors
///
/// The pool could not be built.
pub fn process_tasks(v: &ProcessVariant, n: usize) -> Made {
    let pool = process_pool(v)?;
    Ok(Box::new(move || {
        let (d, out) = timed(|| {
            submit_all(
                0..n as u64,
                |i| pool.submit(double, i).map_err(|e| e.to_string()),
                |f| f.result().map_err(|e| e.to_string()),
            )
        });
        check_doubled(&out?, n as u64).map(|()| d)
    }))
}

/// `process.work_*`: `n` CPU-bound tasks `pool.submit(burn, (i, iters))` one by one, each
/// about `per_task` of work ([`work_iters`], calibrated once per process before the clock
/// starts), every future kept, then every result collected in order.
///
/// # Errors
///
/// The pool could not be built.
pub fn process_work(v: &ProcessVariant, n: usize, per_task: Duration) -> Made {
    let iters = work_iters(per_task);
    let pool = process_pool(v)?;
    Ok(Box::new(move || {
        let (d, out) = timed(|| {
            submit_all(
                0..n as u64,
                |i| pool.submit(burn, (i, iters)).map_err(|e| e.to_string()),
                |f| f.result().map_err(|e| e.to_string()),
            )
        });
        check_burned(&out?, n as u64, iters).map(|()| d)
    }))
}

/// `process.map_*`: `pool.map(double, items)` (ordered, automatic chunks), collected.
///
/// # Errors
///
/// The pool could not be built.
pub fn process_map(v: &ProcessVariant, n: usize) -> Made {
    let pool = process_pool(v)?;
    let items: Vec<u64> = (0..n as u64).collect();
    Ok(Box::new(move || {
        let (d, out) = timed(|| {
            pool.map(double, items.iter().copied())
                .collect::<Result<Vec<u64>, _>>()
        });
        check_doubled(&out.map_err(|e| e.to_string())?, n as u64).map(|()| d)
    }))
}

/// `process.bytes_*`: `pool.submit(byte_len, ByteBuf)` of a `len`-byte payload (the copy
/// handed over is made before the clock starts); the worker answers the length.
///
/// # Errors
///
/// The pool could not be built.
pub fn process_bytes(v: &ProcessVariant, len: usize) -> Made {
    let pool = process_pool(v)?;
    let data = ByteBuf::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    Ok(Box::new(move || {
        let arg = data.clone();
        let (d, got) = timed(|| {
            pool.submit(byte_len, arg)
                .map_err(|e| e.to_string())
                .and_then(|f| f.result().map_err(|e| e.to_string()))
        });
        match got {
            Ok(v) if v == len as u64 => Ok(d),
            Ok(v) => Err(format!("worker counted {v} bytes, sent {len}")),
            Err(e) => Err(e),
        }
    }))
}

/// `process.cold_start`: build a pool of [`WORKERS`] (`min_workers` = `max_workers`, so both
/// start at once, as procspawn's do) and wait for the first result; dropping the pool happens
/// after the clock stops.
///
/// # Errors
///
/// Never at set-up; each start reports its own failure.
pub fn process_cold_start(v: &'static ProcessVariant, start: StartMethod) -> Made {
    Ok(Box::new(move || cold_start_once(v, start)))
}

/// One cold start: build, first result, clock stopped; the pool is dropped afterwards.
fn cold_start_once(v: &ProcessVariant, method: StartMethod) -> Result<Duration, String> {
    let start = Instant::now();
    let pool = process_builder(v)
        .start_method(method)
        .build()
        .map_err(|e| format!("ProcessPool: {e}"))?;
    let got = pool
        .submit(noop, 7u64)
        .map_err(|e| e.to_string())
        .and_then(|f| f.result().map_err(|e| e.to_string()));
    let d = start.elapsed();
    drop(pool);
    match got {
        Ok(7) => Ok(d),
        Ok(v) => Err(format!("got {v}, expected 7")),
        Err(e) => Err(e),
    }
}

/// Set in the child of `process.cold_start.first`.
const FIRST_POOL_ENV: &str = "POOL_BENCH_FIRST_POOL";

/// `process.cold_start.first`: the first pool of a fresh process — with the default start
/// method that includes starting the process's fork server (an exec of this binary), which
/// later pools of the same process reuse. Each sample runs this binary anew as a child that
/// times its own first pool (`build()` to first result, as `process.cold_start`) and prints
/// the nanoseconds; the child's own start is not counted.
///
/// # Errors
///
/// Never at set-up; each sample reports its own failure.
pub fn process_cold_start_first() -> Made {
    Ok(Box::new(|| {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let out = std::process::Command::new(exe)
            .env(FIRST_POOL_ENV, "1")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot run the first-pool child: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        match (out.status.success(), text.trim().parse::<u64>()) {
            (true, Ok(nanos)) => Ok(Duration::from_nanos(nanos)),
            _ => Err(format!(
                "first-pool child failed ({}): {text} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    }))
}

/// In the child of [`process_cold_start_first`]: time the first pool, print the nanoseconds,
/// exit. Otherwise returns at once. Call it first thing in `main`.
pub fn run_first_pool_child_if_requested() {
    if std::env::var_os(FIRST_POOL_ENV).is_none() {
        return;
    }
    let code = match cold_start_once(&PROCESS_VARIANTS[0], StartMethod::default()) {
        Ok(d) => {
            println!("{}", d.as_nanos());
            0
        }
        Err(e) => {
            eprintln!("first pool: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// Our NATS pool as one subject: a [`NatsPool`] that submits, and a [`NatsWorker`] on a
/// thread of this process serving a local named-task [`ProcessPool`] of [`WORKERS`] (whose
/// workers are this binary), at most [`WORKERS`] tasks in hand.
///
/// Dropping it stops the worker (and waits for its thread), shuts both pools down and, on
/// an external server, deletes the streams it used; the server goes with the last holder.
pub struct NatsSubject {
    pool: NatsPool,
    local: ProcessPool,
    stop: Arc<AtomicBool>,
    worker: Option<std::thread::JoinHandle<Result<(), String>>>,
    prefix: String,
    server: Arc<nats::NatsServer>,
}

/// How long one operation of a NATS subject may wait for its result before it is a failure
/// (a worker that died would otherwise hang the run).
const NATS_WAIT: Duration = Duration::from_secs(60);
/// How long dropping a NATS subject waits for its worker's thread to stop.
const NATS_STOP_WAIT: Duration = Duration::from_secs(10);
/// How often a NATS subject waiting for a result looks whether its worker is still there.
const NATS_POLL: Duration = Duration::from_millis(100);

impl NatsSubject {
    fn start() -> Result<Self, String> {
        let server = nats::server()?;
        let prefix = nats::unique_prefix("bench");
        let local = ProcessPool::builder()
            .min_workers(WORKERS)
            .max_workers(WORKERS)
            .named_tasks([nats::NOOP_TASK, nats::DOUBLE_TASK])
            .build()
            .map_err(|e| format!("ProcessPool: {e}"))?;
        // The pool first: it creates the streams, so the worker only finds them.
        let pool = NatsPool::builder()
            .url(server.url())
            .prefix(prefix.as_str())
            .build()
            .map_err(|e| format!("NatsPool: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (local, stop, url, prefix) = (
                local.clone(),
                Arc::clone(&stop),
                server.url().to_owned(),
                prefix.clone(),
            );
            std::thread::Builder::new()
                .name("nats-worker".into())
                .spawn(move || {
                    NatsWorker::new(local)
                        .url(url)
                        .prefix(prefix)
                        .max_in_flight(WORKERS)
                        .prefetch(crate::nats::AHEAD)
                        .run_until(&stop)
                })
                .map_err(|e| format!("cannot start the NatsWorker's thread: {e}"))?
        };
        let mut me = NatsSubject {
            pool,
            local,
            stop,
            worker: Some(worker),
            prefix,
            server,
        };
        // Both local workers up and the whole path warm: a few tasks in flight together.
        let warm: Vec<_> = (0..WORKERS as u64 * 4)
            .map(|i| {
                me.pool
                    .submit_named::<u64, u64>(nats::NOOP_TASK, i)
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        for (i, f) in warm.into_iter().enumerate() {
            match me.wait(f) {
                Ok(v) if v == i as u64 => {}
                Ok(v) => return Err(format!("NatsPool warm-up: got {v}, expected {i}")),
                Err(e) => return Err(format!("NatsPool warm-up: {e}")),
            }
        }
        Ok(me)
    }

    /// The result of `f`, or why there is none: the worker's own error if it stopped (looked
    /// at every [`NATS_POLL`]), or no result within [`NATS_WAIT`].
    fn wait(&mut self, f: pool_core::Future<u64>) -> Result<u64, String> {
        let deadline = Instant::now() + NATS_WAIT;
        let mut f = f;
        loop {
            match f.result_timeout(NATS_POLL) {
                Ok(r) => return r.map_err(|e| e.to_string()),
                Err(pending) => f = pending,
            }
            if self.worker.as_ref().is_some_and(|w| w.is_finished()) {
                let ended = self.worker.take().map(std::thread::JoinHandle::join);
                return Err(match ended {
                    Some(Ok(Err(e))) => format!("the NatsWorker failed: {e}"),
                    _ => "the NatsWorker stopped".to_string(),
                });
            }
            if self.worker.is_none() {
                return Err("the NatsWorker stopped".to_string());
            }
            if Instant::now() >= deadline {
                return Err(format!("no result within {NATS_WAIT:?}"));
            }
        }
    }
}

impl Drop for NatsSubject {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(w) = self.worker.take() {
            // The worker answers the tasks it holds before `run_until` returns; with the
            // server gone that may not end, so it gets a bounded time and is otherwise left
            // behind (its local pool is killed below, and the thread ends with the process).
            let deadline = Instant::now() + NATS_STOP_WAIT;
            while !w.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if w.is_finished() {
                let _ = w.join();
            }
        }
        self.pool.shutdown(Shutdown::CancelPending);
        self.local.shutdown(Shutdown::Kill);
        nats::remove_streams(&self.server, &self.prefix);
    }
}

/// `nats.roundtrip`: `pool.submit_named::<u64, u64>(noop, x)` on a [`NatsPool`], then
/// `future.result()`; the task runs on a [`NatsWorker`] in this process.
///
/// # Errors
///
/// No server, or the pool or the worker could not be started.
pub fn nats_roundtrip() -> Made {
    let mut ours = NatsSubject::start()?;
    let mut i = 0u64;
    Ok(Box::new(move || {
        i += 1;
        let x = i;
        let (d, got) = timed(|| {
            ours.pool
                .submit_named::<u64, u64>(nats::NOOP_TASK, x)
                .map_err(|e| e.to_string())
                .and_then(|f| ours.wait(f))
        });
        echoed(d, got, x)
    }))
}

/// `nats.tasks_*`: `n` named tasks ([`double`]) submitted one by one on a [`NatsPool`],
/// every future kept, then every result collected in order.
///
/// # Errors
///
/// No server, or the pool or the worker could not be started.
pub fn nats_tasks(n: usize) -> Made {
    let mut ours = NatsSubject::start()?;
    // A handle of its own, so the submitting closure and `ours.wait` borrow apart.
    let pool = ours.pool.clone();
    Ok(Box::new(move || {
        let (d, out) = timed(|| {
            submit_all(
                0..n as u64,
                |i| {
                    pool.submit_named::<u64, u64>(nats::DOUBLE_TASK, i)
                        .map_err(|e| e.to_string())
                },
                |f| ours.wait(f),
            )
        });
        check_doubled(&out?, n as u64).map(|()| d)
    }))
}
