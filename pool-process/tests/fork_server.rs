//! The fork-server start method: forked workers run tasks over every transport, see the
//! parent's current environment and working directory, are killed on a task timeout, and fail
//! their tasks cleanly when the server itself is killed — after which the next start brings
//! up a new server. Every test checks that no worker outlives it and no descriptor leaks.

mod support;

use std::time::{Duration, Instant};

use pool_core::{Executor, ExitReason, Shutdown, TaskError};
use pool_process::{ProcessPool, StartMethod, TransportKind};

fn forked_pool(kind: TransportKind, workers: usize) -> ProcessPool {
    ProcessPool::builder()
        .max_workers(workers)
        .transport(kind)
        .start_method(StartMethod::ForkServer)
        .build()
        .unwrap()
}

fn pid_and_parent(_: ()) -> (u32, u32) {
    (
        std::process::id(),
        rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32),
    )
}

#[test]
fn forked_workers_run_tasks_over_every_transport() {
    let guard = support::start_for(
        "fork_transports",
        Duration::from_secs(60),
        StartMethod::ForkServer,
    );
    let server = support::fork_server_pid().expect("server");
    let mut pids = Vec::new();
    for kind in support::TRANSPORTS {
        let pool = forked_pool(kind, 2);
        let out: Vec<u64> = pool
            .map(support::slow_double, 0..40u64)
            .map(Result::unwrap)
            .collect();
        assert_eq!(out, (0..40).map(|i| i * 2).collect::<Vec<_>>(), "{kind:?}");
        for _ in 0..4 {
            let (pid, parent) = pool.submit(pid_and_parent, ()).unwrap().result().unwrap();
            assert_eq!(
                parent, server,
                "{kind:?}: worker {pid} is not a child of the server"
            );
            assert_ne!(pid, std::process::id());
            pids.push(pid);
        }
        pool.shutdown(Shutdown::Wait);
        drop(pool);
        support::assert_gone(&pids, Duration::from_secs(2));
    }
    // One server for all pools of the process, in a session of its own (a terminal's Ctrl-C
    // to the parent's foreground group must not reach it).
    assert_eq!(support::fork_server_pid(), Some(server));
    let stat = std::fs::read_to_string(format!("/proc/{server}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    assert_eq!(fields[2], server.to_string(), "process group");
    assert_eq!(fields[3], server.to_string(), "session");
    guard.finish(&pids);
}

fn hang(_: ()) -> u32 {
    std::thread::sleep(Duration::from_secs(60));
    0
}

#[test]
fn task_timeout_kills_a_forked_worker() {
    let guard = support::start_for(
        "fork_timeout",
        Duration::from_secs(60),
        StartMethod::ForkServer,
    );
    let pool = ProcessPool::builder()
        .max_workers(1)
        .start_method(StartMethod::ForkServer)
        .task_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let first = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    let started = Instant::now();
    let err = pool.submit(hang, ()).unwrap().result().unwrap_err();
    assert!(matches!(err, TaskError::TimedOut { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    support::assert_gone(&[first], Duration::from_secs(2));
    let second = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    assert_ne!(first, second, "the timed-out worker must be replaced");
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[first, second]);
}

fn env_of(key: String) -> Option<String> {
    std::env::var(key).ok()
}

fn cwd(_: ()) -> String {
    std::env::current_dir()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn forked_workers_see_the_parents_current_env_and_cwd() {
    let guard = support::start_for("fork_env", Duration::from_secs(60), StartMethod::ForkServer);
    // Set after the server started: it must still reach the worker, as with spawn.
    // SAFETY: tests of this binary run one at a time (the support guard), and no other thread
    // of this test reads the environment now.
    unsafe {
        std::env::set_var("POOL_FS_TEST_LATE", "late-value");
        std::env::set_var("POOL_FS_TEST_REMOVED", "should-not-arrive");
    }
    let dir = support::TempDir::new("fork_cwd");
    let old_cwd = std::env::current_dir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    let pool = ProcessPool::builder()
        .max_workers(1)
        .start_method(StartMethod::ForkServer)
        .env("POOL_FS_TEST_POOL", "pool-value")
        .env_remove("POOL_FS_TEST_REMOVED")
        .build()
        .unwrap();
    let got = |k: &str| pool.submit(env_of, k.to_owned()).unwrap().result().unwrap();
    let late = got("POOL_FS_TEST_LATE");
    let set = got("POOL_FS_TEST_POOL");
    let removed = got("POOL_FS_TEST_REMOVED");
    let worker_cwd = pool.submit(cwd, ()).unwrap().result().unwrap();
    let marker = got(pool_process_env_marker());
    let pid = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    std::env::set_current_dir(old_cwd).unwrap();
    // SAFETY: as above.
    unsafe {
        std::env::remove_var("POOL_FS_TEST_LATE");
        std::env::remove_var("POOL_FS_TEST_REMOVED");
    }
    assert_eq!(late.as_deref(), Some("late-value"));
    assert_eq!(set.as_deref(), Some("pool-value"));
    assert_eq!(removed, None);
    assert_eq!(
        std::fs::canonicalize(&worker_cwd).unwrap(),
        std::fs::canonicalize(dir.path()).unwrap()
    );
    // Neither the worker variable nor the server variable is left for a task's children.
    assert_eq!(marker, None);
    assert_eq!(got("POOL_PROCESS_WORKER"), None);
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[pid]);
}

fn pool_process_env_marker() -> &'static str {
    "POOL_PROCESS_FORKSERVER"
}

fn report_and_hang(path: String) -> u32 {
    std::fs::write(&path, std::process::id().to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(60));
    0
}

fn wait_for_pid(file: &std::path::Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = std::fs::read_to_string(file)
            && let Ok(p) = s.trim().parse()
        {
            return p;
        }
        assert!(Instant::now() < deadline, "the hanging task never started");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn killing_the_server_fails_in_flight_tasks_and_the_next_start_restarts_it() {
    let guard = support::start_for(
        "fork_server_killed",
        Duration::from_secs(60),
        StartMethod::ForkServer,
    );
    let server = support::fork_server_pid().expect("server");
    let dir = support::TempDir::new("fork_kill");
    let files = [dir.path().join("a"), dir.path().join("b")];
    let pool = forked_pool(TransportKind::Pipe, 2);
    let futures: Vec<_> = files
        .iter()
        .map(|f| {
            pool.submit(report_and_hang, f.to_string_lossy().into_owned())
                .unwrap()
        })
        .collect();
    let workers: Vec<u32> = files.iter().map(|f| wait_for_pid(f)).collect();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(server as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    for f in futures {
        match f.result() {
            Err(TaskError::WorkerDied(d)) => {
                assert!(
                    d.stderr_tail.contains("the fork server died"),
                    "{:?}",
                    d.stderr_tail
                );
                assert_eq!(
                    d.exit,
                    ExitReason::Signal {
                        number: 9,
                        name: "SIGKILL".into()
                    }
                );
            }
            other => panic!("expected WorkerDied, got {other:?}"),
        }
    }
    support::assert_gone(&workers, Duration::from_secs(2));
    support::assert_gone(&[server], Duration::from_secs(2));
    // The same pool goes on with new workers from a new server.
    let (pid, parent) = pool.submit(pid_and_parent, ()).unwrap().result().unwrap();
    let new_server = support::fork_server_pid().expect("a new server");
    assert_ne!(new_server, server);
    assert_eq!(parent, new_server);
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    let mut all = workers.to_vec();
    all.push(pid);
    guard.finish(&all);
}

#[test]
fn worker_program_pools_always_spawn() {
    let guard = support::start_for(
        "fork_program",
        Duration::from_secs(60),
        StartMethod::ForkServer,
    );
    let exe = std::env::current_exe().unwrap();
    let pool = ProcessPool::builder()
        .max_workers(1)
        .start_method(StartMethod::ForkServer)
        .worker_program(exe)
        .build()
        .unwrap();
    let (pid, parent) = pool.submit(pid_and_parent, ()).unwrap().result().unwrap();
    assert_eq!(parent, std::process::id());
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[pid]);
}

fn env_len(key: String) -> usize {
    std::env::var(key).map_or(0, |v| v.len())
}

#[test]
fn a_request_too_large_for_the_server_falls_back_to_spawn() {
    let guard = support::start_for(
        "fork_fallback",
        Duration::from_secs(60),
        StartMethod::ForkServer,
    );
    let server = support::fork_server_pid().expect("server");
    // ~300 KB of environment: more than one datagram to the server can carry (the socket's
    // send buffer), well within what exec accepts (each string below 128 KiB).
    let keys: Vec<String> = (0..3).map(|i| format!("POOL_FS_TEST_BIG_{i}")).collect();
    for k in &keys {
        // SAFETY: tests of this binary run one at a time (the support guard), and no other
        // thread of this test reads the environment now.
        unsafe { std::env::set_var(k, "x".repeat(100_000)) };
    }
    let pool = forked_pool(TransportKind::Pipe, 1);
    let (pid, parent) = pool.submit(pid_and_parent, ()).unwrap().result().unwrap();
    let len = pool
        .submit(env_len, keys[2].clone())
        .unwrap()
        .result()
        .unwrap();
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    for k in &keys {
        // SAFETY: as above.
        unsafe { std::env::remove_var(k) };
    }
    assert_eq!(
        parent,
        std::process::id(),
        "the worker must have been spawned"
    );
    assert_eq!(len, 100_000);
    // The server is still the same and still serves.
    assert_eq!(support::fork_server_pid(), Some(server));
    let pool = forked_pool(TransportKind::Pipe, 1);
    let (pid2, parent2) = pool.submit(pid_and_parent, ()).unwrap().result().unwrap();
    assert_eq!(parent2, server);
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[pid, pid2]);
}
