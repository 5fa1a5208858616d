//! When the parent is SIGKILLed, its workers and their children are gone within a second.
//!
//! The test re-executes its own binary in "parent mode" (an environment variable): that
//! parent builds a pool, runs a task that starts a `sleep 100` grandchild, prints the worker's
//! and the grandchild's pids, and waits. The test kills it with SIGKILL and polls `/proc`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pool_process::{ProcessPool, StartMethod};

const PARENT_MODE: &str = "POOL_PROCESS_TEST_ORPHAN_PARENT";

fn start_grandchild(_: ()) -> (u32, u32) {
    // Deliberately left running (never waited for): the test checks that it dies with the
    // worker's process group when the pool's parent is killed.
    #[allow(clippy::zombie_processes)]
    let child = Command::new("sleep")
        .arg("100")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    (std::process::id(), child.id())
}

fn parent_mode(method: StartMethod) {
    let pool = ProcessPool::builder()
        .max_workers(2)
        .start_method(method)
        .build()
        .unwrap();
    let (a, b) = pool.submit(start_grandchild, ()).unwrap().result().unwrap();
    let (c, d) = pool.submit(start_grandchild, ()).unwrap().result().unwrap();
    // With the fork server, the server itself must die too.
    let server = support::fork_server_pid()
        .map(|p| format!(" {p}"))
        .unwrap_or_default();
    println!("PIDS {a} {b} {c} {d}{server}");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn workers_and_grandchildren_die_with_a_sigkilled_parent() {
    orphan_check(
        "workers_and_grandchildren_die_with_a_sigkilled_parent",
        StartMethod::Spawn,
        4,
    );
}

#[test]
fn forked_workers_grandchildren_and_the_server_die_with_a_sigkilled_parent() {
    orphan_check(
        "forked_workers_grandchildren_and_the_server_die_with_a_sigkilled_parent",
        StartMethod::ForkServer,
        5,
    );
}

fn orphan_check(test_name: &str, method: StartMethod, expected_pids: usize) {
    if std::env::var_os(PARENT_MODE).is_some() {
        parent_mode(method);
        return;
    }
    let guard = support::start("orphans", Duration::from_secs(60));
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut parent = Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(PARENT_MODE, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pids = Vec::new();
    let stdout = parent.stdout.take().unwrap();
    let mut parent = KillOnDrop(parent);
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids.is_empty() {
        assert!(Instant::now() < deadline, "parent never reported its pids");
        let line = lines.next().expect("parent exited early").unwrap();
        // The harness may print its own text before ours on the same line.
        if let Some(rest) = line.split("PIDS ").nth(1) {
            pids = rest.split(' ').map(|p| p.parse::<u32>().unwrap()).collect();
        }
    }
    assert_eq!(pids.len(), expected_pids);
    for p in &pids {
        assert!(
            support::alive(*p),
            "pid {p} should be running before the kill"
        );
    }
    parent.0.kill().unwrap(); // SIGKILL
    parent.0.wait().unwrap();
    support::assert_gone(&pids, Duration::from_secs(1));
    drop(lines);
    guard.finish(&pids);
}

const EXIT_MODE: &str = "POOL_PROCESS_TEST_EXIT_PARENT";

/// A program that ends normally (here: the test harness returning from `main`) leaves no
/// fork server behind — not even a zombie waiting for `init` to reap it: the exiting
/// process kills and reaps its server itself. (Its workers die by their parent-death signal.)
#[test]
fn a_normal_exit_reaps_the_fork_server() {
    if std::env::var_os(EXIT_MODE).is_some() {
        let pool = ProcessPool::builder()
            .max_workers(1)
            .start_method(StartMethod::ForkServer)
            .build()
            .unwrap();
        let worker = pool
            .submit(support::worker_pid, ())
            .unwrap()
            .result()
            .unwrap();
        let server = support::fork_server_pid().expect("the fork server runs");
        println!("PIDS {worker} {server}");
        // Neither shut down nor dropped: the process just ends.
        std::mem::forget(pool);
        return;
    }
    let guard = support::start("exit reaps the server", Duration::from_secs(60));
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "a_normal_exit_reaps_the_fork_server",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(EXIT_MODE, "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // The child has been waited for: everything it did at exit is done.
    let exists = |pid: u32| std::path::Path::new(&format!("/proc/{pid}")).exists();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed ({}): {text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let pids: Vec<u32> = text
        .split("PIDS ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .expect("the child reported its pids")
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    let server = pids[1];
    assert!(
        !exists(server),
        "the fork server {server} outlived its program's exit: {:?}",
        std::fs::read_to_string(format!("/proc/{server}/stat"))
    );
    support::assert_gone(&pids[..1], Duration::from_secs(1));
    guard.finish(&pids);
}
