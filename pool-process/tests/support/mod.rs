//! Shared test helpers: a watchdog, leak checks (worker pids, open descriptors) and fault
//! fixtures. Note what is *not* here: any setup call — workers start through the pre-`main`
//! hook alone.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pool_process::{ProcessPool, StartMethod, TransportKind};

/// Serializes the tests of one binary, so descriptor counts are not disturbed by a neighbour.
static SERIAL: Mutex<()> = Mutex::new(());

/// Held for the duration of a test: serializes tests, arms the watchdog, and checks on
/// `finish` that the descriptor count is back where it started.
pub struct Guard {
    _serial: MutexGuard<'static, ()>,
    fds_before: usize,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Starts a test: a watchdog that aborts the whole test process after `limit` (a hang fails
/// instead of blocking CI), plus the baseline for the descriptor check.
pub fn start(name: &'static str, limit: Duration) -> Guard {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = armed.clone();
    std::thread::spawn(move || {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if !flag.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("WATCHDOG: test {name} exceeded {limit:?}; aborting");
        std::process::abort();
    });
    Guard {
        _serial: serial,
        fds_before: fd_count(),
        armed,
    }
}

/// Like [`start`], for a test of pools with start method `method`. For the fork server, the
/// process's server is started first, so that the test can find it.
pub fn start_for(name: &'static str, limit: Duration, method: StartMethod) -> Guard {
    let guard = start(name, limit);
    if method == StartMethod::ForkServer {
        warm_fork_server();
    }
    guard
}

/// Makes sure this process's fork server runs (a throw-away pool forks one worker).
pub fn warm_fork_server() {
    let pool = ProcessPool::builder()
        .max_workers(1)
        .start_method(StartMethod::ForkServer)
        .build()
        .unwrap();
    let pid = pool.submit(worker_pid, ()).unwrap().result().unwrap();
    pool_core::Executor::shutdown(&pool, pool_core::Shutdown::Wait);
    drop(pool);
    assert_gone(&[pid], Duration::from_secs(2));
    assert!(
        fork_server_pid().is_some(),
        "the fork server is not running"
    );
}

/// The pid of this process's fork server (a child named `pool-fs`), if one runs.
pub fn fork_server_pid() -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(Result::ok)
        .find_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let open = stat.find('(')?;
            let close = stat.rfind(')')?;
            let mut rest = stat[close + 1..].split_whitespace();
            let state = rest.next()?;
            let ppid: u32 = rest.next()?.parse().ok()?;
            (&stat[open + 1..close] == "pool-fs" && ppid == me && state != "Z")
                .then(|| stat[..open].trim().parse().ok())
                .flatten()
        })
}

/// The live (not zombie) workers of this process's pools: the processes named `pool-w<id>`
/// whose parent is this process or its fork server, sorted.
pub fn worker_pids() -> Vec<u32> {
    let me = std::process::id();
    let server = fork_server_pid();
    let mut found: Vec<u32> = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
                    let open = stat.find('(')?;
                    let close = stat.rfind(')')?;
                    let mut rest = stat[close + 1..].split_whitespace();
                    let state = rest.next()?;
                    let ppid: u32 = rest.next()?.parse().ok()?;
                    (stat[open + 1..close].starts_with("pool-w")
                        && (ppid == me || Some(ppid) == server)
                        && state != "Z"
                        && state != "X")
                        .then(|| stat[..open].trim().parse().ok())
                        .flatten()
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort_unstable();
    found
}

/// The parent pid of `pid` (from `/proc/<pid>/stat`).
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.rfind(')')?;
    stat[close + 1..].split_whitespace().nth(1)?.parse().ok()
}

impl Guard {
    /// Checks that every pid in `pids` is gone and the descriptor count is back, within 2 s.
    pub fn finish(self, pids: &[u32]) {
        assert_gone(pids, Duration::from_secs(2));
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let now = fd_count();
            if now <= self.fds_before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "descriptor leak: {} open before, {now} after:\n{}",
                self.fds_before,
                fd_list()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.armed.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

fn exe_target() -> Option<std::path::PathBuf> {
    std::fs::read_link("/proc/self/exe").ok()
}

/// Open descriptors of this process, not counting descriptors on our own executable (the
/// pool holds one for its whole life, by design, to exec workers from).
/// Nor the process's fork server's socket (it lives as long as the process, by design).
pub fn fd_count() -> usize {
    let exe = exe_target();
    let server_fd = pool_process::__private::fork_server().map(|(_, fd)| fd.to_string());
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| std::fs::read_link(e.path()).ok() != exe)
                .filter(|e| Some(e.file_name().to_string_lossy().into_owned()) != server_fd)
                .count()
        })
        .unwrap_or(0)
}

fn fd_list() -> String {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| format!("{:?} -> {:?}", e.file_name(), std::fs::read_link(e.path())))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Is `pid` a live (non-zombie) process?
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // State is the field after the parenthesised command name.
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// Fails unless every pid is gone within `within`.
pub fn assert_gone(pids: &[u32], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes still alive after {within:?}: {left:?}\n{}",
            left.iter()
                .map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("")
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The pid of whichever worker runs it.
pub fn worker_pid(_: ()) -> u32 {
    std::process::id()
}

/// Doubles slowly enough that several workers take part.
pub fn slow_double(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(2));
    x * 2
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(
            format!(
                "pool-process-test-{tag}-{}-{:?}",
                std::process::id(),
                Instant::now()
            )
            .replace([' ', '.'], "_"),
        );
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every built-in transport, in the order the per-transport tests walk them.
pub const TRANSPORTS: [TransportKind; 3] = [
    TransportKind::Pipe,
    TransportKind::LocalSocket,
    TransportKind::Shm,
];

/// A pool of `workers` workers talking over `kind`, defaults otherwise.
pub fn pool_over(kind: TransportKind, workers: usize) -> ProcessPool {
    ProcessPool::builder()
        .max_workers(workers)
        .transport(kind)
        .build()
        .unwrap()
}
