//! The process mechanics behind the engine's policies: a timed-out task's worker (and its
//! children) is killed and replaced; recycling after N tasks and past a memory limit; idle
//! shrink. Checked by reading pids and stats, not by sleeping and hoping.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pool_core::{Call, Executor, Shutdown, Submit, SubmitOptions, TaskError};
use pool_process::ProcessPool;

/// Starts a `sleep 100` grandchild, reports both pids through a file, then hangs.
fn hang_with_child(path: String) -> u32 {
    #[allow(clippy::zombie_processes)]
    let child = Command::new("sleep")
        .arg("100")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::fs::write(&path, format!("{} {}", std::process::id(), child.id())).unwrap();
    std::thread::sleep(Duration::from_secs(60));
    0
}

#[test]
fn timeout_kills_the_workers_process_tree_and_replaces_it() {
    let guard = support::start("timeout", Duration::from_secs(60));
    let dir = support::TempDir::new("timeout");
    let file = dir.path().join("pids");
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let fut = Submit::submit_with(
        &pool,
        Call {
            f: hang_with_child,
            arg: file.to_string_lossy().into_owned(),
        },
        SubmitOptions::new()
            .timeout(Duration::from_millis(300))
            .label("runaway"),
    )
    .unwrap();
    let err = fut.result().unwrap_err();
    match &err {
        TaskError::TimedOut { task, pid, .. } => {
            assert!(task.contains("runaway"), "{err}");
            assert!(pid.is_some());
        }
        other => panic!("expected TimedOut, got {other:?}"),
    }
    let pids: Vec<u32> = std::fs::read_to_string(&file)
        .unwrap()
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    // Worker and grandchild are gone, promptly.
    support::assert_gone(&pids, Duration::from_secs(2));
    // A replacement serves the next task.
    let next = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    assert_ne!(next, pids[0]);
    assert!(pool.stats().timed_out >= 1);
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[next]);
}

#[test]
fn workers_are_recycled_after_max_tasks() {
    let guard = support::start("recycle_n", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(1)
        .max_tasks_per_worker(3)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..9)
        .map(|_| {
            pool.submit(support::worker_pid, ())
                .unwrap()
                .result()
                .unwrap()
        })
        .collect();
    for chunk in pids.chunks(3) {
        assert!(chunk.iter().all(|p| *p == chunk[0]), "{pids:?}");
    }
    assert!(pids[0] != pids[3] && pids[3] != pids[6], "{pids:?}");
    // Recycled workers exit (finalizer path), they are not left behind.
    support::assert_gone(&pids[..6], Duration::from_secs(2));
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&pids);
}

/// Grows this worker's resident memory by `mib` MiB (kept until the process exits).
fn leak(mib: usize) -> u32 {
    let v = vec![1u8; mib << 20];
    std::mem::forget(v);
    std::process::id()
}

#[test]
fn workers_are_recycled_past_the_memory_limit() {
    let guard = support::start("recycle_mem", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(1)
        .max_memory_per_worker(200 << 20)
        .build()
        .unwrap();
    let small = pool.submit(leak, 1).unwrap().result().unwrap();
    let again = pool.submit(leak, 1).unwrap().result().unwrap();
    assert_eq!(small, again, "no recycling below the limit");
    let big = pool.submit(leak, 300).unwrap().result().unwrap();
    assert_eq!(big, small);
    let after = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    assert_ne!(after, big, "the leaky worker must be replaced");
    support::assert_gone(&[big], Duration::from_secs(2));
    assert!(pool.stats().recycled >= 1);
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[after]);
}

#[test]
fn idle_workers_exit_and_the_next_submit_respawns() {
    let guard = support::start("idle", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(1)
        .idle_timeout(Some(Duration::from_millis(200)))
        .build()
        .unwrap();
    let first = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while support::alive(first) {
        assert!(
            Instant::now() < deadline,
            "idle worker {first} never exited"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    assert_ne!(first, second);
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[first, second]);
}

fn inc(x: u32) -> u32 {
    x + 1
}

#[test]
fn a_task_that_finished_before_its_timeout_holds_nothing_of_its_worker() {
    // Timed tasks that finish early must not keep their worker's handles (a pidfd, the
    // stderr pipe) open until their deadline: after shutdown and drop, nothing is left.
    let guard = support::start("timed_tasks_release", Duration::from_secs(60));
    let pool = ProcessPool::builder()
        .max_workers(2)
        .max_tasks_per_worker(3) // workers retire while watches of their tasks are pending
        .build()
        .unwrap();
    let opts = pool_core::MapOptions::default()
        .chunk_size(pool_core::ChunkSize::Fixed(10))
        .timeout(Duration::from_secs(600));
    let v: Vec<u32> = pool
        .map_with(inc, 0..100u32, opts)
        .map(Result::unwrap)
        .collect();
    assert_eq!(v[99], 100);
    let timed = SubmitOptions::default().timeout(Duration::from_secs(600));
    let mut futs: Vec<_> = (0..6)
        .map(|i| pool.submit_with(inc, i, timed.clone()).unwrap())
        .collect();
    // The futures are still held: they must not hold the workers either.
    for (i, f) in futs.iter_mut().enumerate() {
        assert!(f.wait_timeout(Duration::from_secs(20)));
        assert_eq!(f.try_result(), Some(Ok(i as u32 + 1)));
    }
    let pid = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[pid]);
    drop(futs);
}
