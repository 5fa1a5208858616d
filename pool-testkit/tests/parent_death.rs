//! Parent death: a process with a pool (busy workers, one of them with a grandchild, and an
//! idle worker) is SIGKILLed; every one of its descendants must be gone within 1 s.
//!
//! The "parent" is this test binary re-run with the ignored test `parent_role`, which
//! builds the pool, prints `READY` once everything is in place, and then waits to be killed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pool_core::State;
use pool_process::{ProcessPool, TransportKind};
use pool_testkit::faults::{self, Fault};
use pool_testkit::harness;
use pool_testkit::leaks;

/// DESIGN §5: workers die with their parent, also when it is killed with SIGKILL.
const GONE_WITHIN: Duration = Duration::from_secs(1);

#[test]
#[ignore = "a role, run by `parent_killed_takes_every_descendant_along`"]
fn parent_role() {
    let transport = match std::env::var("POOL_TESTKIT_TRANSPORT").as_deref() {
        Ok("LocalSocket") => TransportKind::LocalSocket,
        Ok("Shm") => TransportKind::Shm,
        _ => TransportKind::Pipe,
    };
    let pool = ProcessPool::builder()
        .transport(transport)
        .max_workers(3)
        .min_workers(3)
        .build()
        .expect("valid pool");
    // Two busy workers, one of them with a grandchild; the third stays idle.
    let busy = pool.submit(faults::hang_forever, ()).expect("submit");
    let with_child = pool
        .submit(faults::grandchild_then, (120u64, Fault::Hang))
        .expect("submit");
    let until = Instant::now() + Duration::from_secs(30);
    while busy.state() != State::Running || with_child.state() != State::Running {
        assert!(Instant::now() < until, "tasks did not start");
        std::thread::sleep(Duration::from_millis(2));
    }
    // Wait until the grandchild exists and the idle worker is up.
    let me = std::process::id();
    loop {
        let d = leaks::descendants_of(me);
        let sleepers = d.iter().filter(|p| p.comm == "sleep").count();
        let workers = d.iter().filter(|p| p.comm != "sleep").count();
        if sleepers >= 1 && workers >= 3 {
            break;
        }
        assert!(Instant::now() < until, "pool not in place: {d:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
    let ready = std::env::var("POOL_TESTKIT_READY_FILE").expect("run by the outer test");
    std::fs::write(ready, b"READY").expect("write the ready file");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn parent_killed_takes_every_descendant_along() {
    parent_killed_over("Pipe");
}

#[test]
fn parent_killed_over_local_sockets() {
    parent_killed_over("LocalSocket");
}

#[test]
fn parent_killed_over_shared_memory() {
    parent_killed_over("Shm");
}

fn parent_killed_over(transport: &str) {
    let guard = harness::start(
        &format!("parent_killed_over {transport}"),
        Duration::from_secs(90),
    );
    let exe = std::env::current_exe().expect("test binary");
    let ready = std::env::temp_dir().join(format!("pool-parent-death-{}", std::process::id()));
    let _ = std::fs::remove_file(&ready);
    let parent = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "parent_role",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("POOL_TESTKIT_READY_FILE", &ready)
        .env("POOL_TESTKIT_TRANSPORT", transport)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the parent");
    // Whatever happens below, the parent does not outlive the test.
    let mut parent = KillOnDrop(parent);
    let pid = parent.0.id();
    let until = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        assert!(
            Instant::now() < until,
            "the parent did not report its pool ready"
        );
        if let Ok(Some(st)) = parent.0.try_wait() {
            panic!("the parent exited early: {st}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = std::fs::remove_file(&ready);
    let family: Vec<u32> = leaks::descendants_of(pid).iter().map(|p| p.pid).collect();
    eprintln!("parent {pid} family: {family:?}");
    let grandchildren = leaks::descendants_of(pid)
        .iter()
        .filter(|p| p.comm == "sleep")
        .count();
    assert!(
        family.len() >= 4,
        "3 workers and a grandchild expected: {family:?}"
    );
    assert!(grandchildren >= 1, "no grandchild: {family:?}");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid as i32).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("SIGKILL the parent");
    let killed_at = Instant::now();
    parent.0.wait().expect("reap the parent");
    let gone = leaks::wait_gone(&family, GONE_WITHIN.saturating_sub(killed_at.elapsed()));
    if let Err(left) = gone {
        let info: Vec<String> = leaks::all_processes()
            .into_iter()
            .filter(|p| left.contains(&p.pid))
            .map(|p| p.to_string())
            .collect();
        panic!("still alive {GONE_WITHIN:?} after the parent was killed: {info:?}");
    }
    // They were adopted by this process (a subreaper): reap them.
    harness::reap(&family);
    guard.finish();
}

/// Kills (SIGKILL) and reaps the child when dropped, unless it was reaped already.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
