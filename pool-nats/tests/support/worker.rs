//! Worker processes of a test: the test binary again, running one `#[test] fn
//! worker_process` that calls [`serve_if_asked`], with the server's URL and the prefix in its
//! environment. `POOL_NATS_HOST_PID` holds the worker process's own pid (set by the shell
//! that `exec`s it), so a task can name — or kill — the worker host that runs it.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use pool_nats::NatsWorker;
use pool_process::ProcessPool;
use pool_testkit::{harness, leaks};

const URL: &str = "POOL_NATS_TEST_WORKER_URL";
const PREFIX: &str = "POOL_NATS_TEST_WORKER_PREFIX";
const HOST: &str = "POOL_NATS_HOST_PID";
const IN_FLIGHT: &str = "POOL_NATS_TEST_WORKER_IN_FLIGHT";

/// The pid of the worker process running this task.
fn host_pid() -> u32 {
    std::env::var(HOST)
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("a worker process's task knows its host")
}

/// Sleeps `ms` milliseconds, then answers the pid of the worker process that ran it.
fn host_of(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    host_pid()
}

/// Kills the worker process running it (SIGKILL): a poison task.
fn doom(_: u64) -> u64 {
    // SAFETY: kill(2) on a pid read from our own environment; no memory is involved.
    unsafe { libc::kill(host_pid() as i32, libc::SIGKILL) };
    std::thread::sleep(Duration::from_secs(60));
    0
}

/// `x * x` after 300 ms.
fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(300));
    x * x
}

pool_process::named_task!("host-of", host_of);
pool_process::named_task!("doom", doom);
pool_process::named_task!("slow-square", slow_square);

/// The names a worker process serves.
pub const TASKS: [&str; 3] = ["host-of", "doom", "slow-square"];

/// In a worker process, serves until killed; elsewhere returns at once.
pub fn serve_if_asked() {
    let (Ok(url), Ok(prefix)) = (std::env::var(URL), std::env::var(PREFIX)) else {
        return;
    };
    let local = ProcessPool::builder()
        .max_workers(2)
        .named_tasks(TASKS)
        .build()
        .unwrap();
    let in_flight = std::env::var(IN_FLIGHT)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    let never = AtomicBool::new(false);
    NatsWorker::new(local)
        .url(url)
        .prefix(prefix)
        .max_in_flight(in_flight)
        .run_until(&never)
        .unwrap();
}

/// Is this process a worker process (its `#[test]`s other than `worker_process` return)?
pub fn is_worker_process() -> bool {
    std::env::var(URL).is_ok()
}

/// A worker process, killed with its own processes when dropped.
pub struct WorkerProcess {
    child: Option<Child>,
}

impl WorkerProcess {
    /// A worker process holding up to two tasks at once.
    pub fn spawn(url: &str, prefix: &str) -> Self {
        Self::spawn_holding(url, prefix, 2)
    }

    /// A worker process holding up to `in_flight` tasks at once.
    pub fn spawn_holding(url: &str, prefix: &str, in_flight: usize) -> Self {
        // `exec` keeps the shell's pid, which the shell puts in the environment first.
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{HOST}=$$ exec \"$0\" \"$@\""))
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "worker_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(URL, url)
            .env(PREFIX, prefix)
            .env(IN_FLIGHT, in_flight.to_string())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        WorkerProcess { child: Some(child) }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits (bounded) for the process to die by itself (a task killed it), then checks its
    /// own processes died with it and reaps them.
    pub fn wait_death(mut self, within: Duration) {
        let mut child = self.child.take().unwrap();
        // Its processes, as seen while it lives (once it is dead they are no longer its).
        let mut family = Vec::new();
        let deadline = Instant::now() + within;
        while child.try_wait().unwrap().is_none() {
            for pid in self::family(&child) {
                if !family.contains(&pid) {
                    family.push(pid);
                }
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bury(&family);
                panic!(
                    "worker process {} did not die within {within:?}",
                    child.id()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        bury(&family);
    }

    /// SIGKILLs the process; its own processes must die with it.
    pub fn kill(mut self) {
        if let Some(child) = self.child.take() {
            kill(child);
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            kill(child);
        }
    }
}

fn family(child: &Child) -> Vec<u32> {
    leaks::descendants_of(child.id())
        .iter()
        .map(|p| p.pid)
        .collect()
}

fn kill(mut child: Child) {
    let family = family(&child);
    let _ = child.kill();
    let _ = child.wait();
    bury(&family);
}

/// The processes of a dead worker process must die with it; adopted by the test (a
/// subreaper), they are reaped here.
fn bury(family: &[u32]) {
    let mut family = family.to_vec();
    // A pool process forked just before its parent died may not have been seen as one of
    // its own: pool processes this test adopted are of a dead worker process (a test that
    // starts worker processes runs no process pool in the test process itself).
    let me = std::process::id();
    for p in leaks::all_processes() {
        if p.ppid == me && p.comm.starts_with("pool-") && !family.contains(&p.pid) {
            family.push(p.pid);
        }
    }
    let family = &family[..];
    let gone = leaks::wait_gone(family, Duration::from_secs(5));
    harness::reap(family);
    if let Err(left) = gone
        && !std::thread::panicking()
    {
        panic!("a dead worker process's own processes outlived it: {left:?}");
    }
}
