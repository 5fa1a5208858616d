//! Dropping the last handle of a pool waits a short, bounded time for its idle workers to
//! stop: when `drop` returns, none of them is left (not even a zombie), with either start
//! method and every transport. A worker busy with a task that hangs is not waited for beyond
//! that bound: the drop returns, the task keeps its worker until it ends (its future still
//! resolves), and no process is left after that.

mod support;

use std::time::{Duration, Instant};

use pool_core::Executor;
use pool_process::{ProcessPool, StartMethod};

/// The processes named `pool-w<id>` (workers) whose parent is this process or its fork
/// server, in any state (zombies included).
fn workers_now() -> Vec<u32> {
    let me = std::process::id();
    let server = support::fork_server_pid();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid: Option<u32> = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok());
        if stat[open + 1..close].starts_with("pool-w")
            && (ppid == Some(me) || (ppid.is_some() && ppid == server))
            && let Ok(pid) = stat[..open].trim().parse()
        {
            found.push(pid);
        }
    }
    found
}

/// Is there a process `pid` in any state (a zombie too)?
fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn dropping_an_idle_pool_reaps_its_workers_before_returning() {
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        for kind in support::TRANSPORTS {
            let guard = support::start_for("drop_idle", Duration::from_secs(60), method);
            support::assert_gone(&workers_now(), Duration::from_secs(10));
            let pool = ProcessPool::builder()
                .max_workers(2)
                .min_workers(2)
                .start_method(method)
                .transport(kind)
                .build()
                .unwrap();
            // Both workers started and idle.
            let f: Vec<_> = (0..8)
                .map(|i| pool.submit(support::slow_double, i).unwrap())
                .collect();
            for (i, f) in f.into_iter().enumerate() {
                assert_eq!(
                    f.result_timeout(Duration::from_secs(20)).unwrap(),
                    Ok(2 * i as u64)
                );
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            while pool.stats().idle < 2 {
                assert!(
                    Instant::now() < deadline,
                    "{method:?} {kind:?}: {:?}",
                    pool.stats()
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            let pids = workers_now();
            assert_eq!(pids.len(), 2, "{method:?} {kind:?}: workers {pids:?}");
            let t = Instant::now();
            drop(pool);
            let took = t.elapsed();
            let left: Vec<u32> = pids.iter().copied().filter(|&p| exists(p)).collect();
            assert!(
                left.is_empty(),
                "{method:?} {kind:?}: workers {left:?} outlived drop (which took {took:?})"
            );
            eprintln!("{method:?} {kind:?}: drop took {took:?}");
            guard.finish(&pids);
        }
    }
}

/// Reports its pid through a file, then hangs (for far longer than any drop may take).
fn hang(path: String) -> u32 {
    std::fs::write(&path, std::process::id().to_string()).unwrap();
    std::thread::sleep(Duration::from_secs(5));
    9
}

#[test]
fn dropping_a_pool_with_a_hung_task_returns_within_the_bound() {
    let guard = support::start("drop_hung", Duration::from_secs(60));
    let dir = support::TempDir::new("drop_hung");
    let file = dir.path().join("pid");
    let pool = ProcessPool::builder()
        .max_workers(2)
        .min_workers(2)
        .build()
        .unwrap();
    let hung = pool
        .submit(hang, file.to_string_lossy().into_owned())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let busy: u32 = loop {
        if let Ok(s) = std::fs::read_to_string(&file)
            && let Ok(p) = s.trim().parse()
        {
            break p;
        }
        assert!(Instant::now() < deadline, "the task never started");
        std::thread::sleep(Duration::from_millis(5));
    };
    while pool.stats().idle < 1 {
        assert!(Instant::now() < deadline, "{:?}", pool.stats());
        std::thread::sleep(Duration::from_millis(2));
    }
    let idle: Vec<u32> = workers_now().into_iter().filter(|&p| p != busy).collect();
    assert_eq!(idle.len(), 1, "idle workers {idle:?} (busy {busy})");
    let t = Instant::now();
    drop(pool);
    let took = t.elapsed();
    // The bound is 200 ms; a wide margin for a loaded machine, far below the task's 4 s.
    assert!(
        took < Duration::from_secs(2),
        "drop waited {took:?} for a hung task"
    );
    assert!(!hung.is_done(), "drop waited for the hung task");
    assert!(
        !exists(idle[0]),
        "the idle worker {} outlived drop",
        idle[0]
    );
    assert!(
        support::alive(busy),
        "the busy worker was killed; its task should run on"
    );
    // The task still completes and its worker then stops: nothing is left.
    assert_eq!(hung.result_timeout(Duration::from_secs(20)).unwrap(), Ok(9));
    support::assert_gone(&[busy], Duration::from_secs(10));
    guard.finish(&[busy, idle[0]]);
}
