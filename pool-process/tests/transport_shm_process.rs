//! The shared-memory transport between two processes: the test binary re-executes itself in
//! a child mode (chosen by an environment variable, entered before `main` so the test harness
//! never starts in the child) and hands the child the memory file as its stdin.
//!
//! Covered: echo of every size class across processes, a SIGKILLed peer detected while
//! receiving and while blocked sending, and a child noticing that its parent died. The
//! ignored `measure_round_trip_and_bandwidth` prints figures (run it with `--release
//! --ignored --nocapture`); it checks only correctness.

mod support;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pool_process::transport::Transport;
use pool_process::transport::shm::{ShmOptions, ShmTransport};

const MODE_ENV: &str = "POOL_SHM_TEST_CHILD";

// ------------------------------------------------------------------ child side

#[ctor::ctor(unsafe)]
fn child_hook() {
    if let Ok(mode) = std::env::var(MODE_ENV) {
        let code = std::panic::catch_unwind(|| child(&mode)).unwrap_or(101);
        std::process::exit(code);
    }
}

/// The channel handed over as fd 0, watching the parent.
fn child_transport() -> ShmTransport {
    let file: OwnedFd = std::io::stdin().as_fd().try_clone_to_owned().unwrap();
    let mut t = ShmTransport::connect(file).unwrap();
    t.watch_parent(std::os::unix::process::parent_id()).unwrap();
    t
}

fn child(mode: &str) -> i32 {
    // Every child gives up on its own after a minute: nothing outlives a broken test.
    let limit = Instant::now() + Duration::from_secs(60);
    match mode {
        "echo" => {
            let mut t = child_transport();
            loop {
                match t.recv(Some(limit)) {
                    Ok(m) => {
                        let m = m.to_vec();
                        t.send(&[&m]).unwrap();
                    }
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => return 0,
                    Err(_) => return 3,
                }
            }
        }
        "ack" => {
            // Copies each message out (as a decoder would) and answers with its length.
            let mut t = child_transport();
            let mut keep = Vec::new();
            loop {
                match t.recv(Some(limit)) {
                    Ok(m) => {
                        keep.clear();
                        keep.extend_from_slice(m);
                        t.send(&[&(keep.len() as u64).to_le_bytes()]).unwrap();
                    }
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => return 0,
                    Err(_) => return 3,
                }
            }
        }
        "hang" => {
            let mut t = child_transport();
            t.send(&[b"ready"]).unwrap();
            std::thread::sleep(limit - Instant::now());
            4
        }
        "pipe-echo" => {
            let (mut i, mut o) = (std::io::stdin().lock(), std::io::stdout().lock());
            let mut b = [0u8; 8];
            while i.read_exact(&mut b).is_ok() {
                o.write_all(&b).unwrap();
                o.flush().unwrap();
            }
            0
        }
        "middle" => {
            // Creates a channel, starts a "report" grandchild on it, tells the test its pid,
            // then waits to be killed without ever closing the channel.
            let (t, file) = ShmTransport::create(&ShmOptions::new()).unwrap();
            let mut grandchild = Command::new(std::env::current_exe().unwrap())
                .env(MODE_ENV, "report")
                .stdin(Stdio::from(file))
                .spawn()
                .unwrap();
            println!("grandchild {}", grandchild.id());
            std::io::stdout().flush().unwrap();
            std::thread::sleep(limit - Instant::now());
            drop(t);
            let _ = grandchild.kill();
            let _ = grandchild.wait();
            5
        }
        "report" => {
            let mut t = child_transport();
            let e = t.recv(Some(limit)).unwrap_err();
            println!("ended {:?}", e.kind());
            0
        }
        _ => 2,
    }
}

// ------------------------------------------------------------------ parent side

fn spawn(mode: &str, file: OwnedFd) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(MODE_ENV, mode)
        .stdin(Stdio::from(file))
        .spawn()
        .unwrap()
}

fn start(mode: &str, opts: &ShmOptions) -> (ShmTransport, Child) {
    let (mut t, file) = ShmTransport::create(opts).unwrap();
    let child = spawn(mode, file);
    t.watch_process(child.id()).unwrap();
    (t, child)
}

/// Waits for `child` to exit, at most `within`.
fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {} did not exit within {within:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A child in "hang" mode that has said it is ready, and a thread that SIGKILLs it 200 ms
/// from now (join it for the child, to reap it).
fn hanging_peer_killed_soon(
    opts: &ShmOptions,
) -> (ShmTransport, u32, std::thread::JoinHandle<Child>) {
    let (mut t, mut child) = start("hang", opts);
    let pid = child.id();
    assert_eq!(
        t.recv(Some(Instant::now() + Duration::from_secs(20)))
            .unwrap(),
        b"ready"
    );
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        child.kill().unwrap();
        child
    });
    (t, pid, killer)
}

fn body(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((seed * 31 + i * 7) % 251) as u8)
        .collect()
}

#[test]
fn echo_across_processes() {
    let guard = support::start("shm_proc_echo", Duration::from_secs(60));
    let opts = ShmOptions::new().ring_capacity(8192);
    let (mut t, mut child) = start("echo", &opts);
    let pid = child.id();
    let sizes = [0, 1, 8, 8183, 8184, 8185, 8192, 100_000, 3 << 20, 17];
    for round in 0..3 {
        for (k, &len) in sizes.iter().enumerate() {
            let m = body(round * 100 + k, len);
            t.send(&[&m[..len / 2], &m[len / 2..]]).unwrap();
            let got = t
                .recv(Some(Instant::now() + Duration::from_secs(20)))
                .unwrap();
            assert_eq!(got, &m[..], "round {round}, {len} bytes");
        }
    }
    drop(t); // the child sees end of file and exits cleanly
    assert!(wait_exit(&mut child, Duration::from_secs(10)).success());
    guard.finish(&[pid]);
}

#[test]
fn killed_peer_ends_a_receive() {
    let guard = support::start("shm_proc_kill_recv", Duration::from_secs(60));
    let (mut t, pid, killer) = hanging_peer_killed_soon(&ShmOptions::new());
    // No deadline: only the death of the peer can end this wait.
    let t0 = Instant::now();
    let err = t.recv(None).unwrap_err();
    let took = t0.elapsed();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    assert!(
        took < Duration::from_secs(5),
        "noticed the death only after {took:?}"
    );
    let mut child = killer.join().unwrap();
    let _ = child.wait();
    drop(t);
    guard.finish(&[pid]);
}

#[test]
fn killed_peer_ends_a_blocked_send() {
    let guard = support::start("shm_proc_kill_send", Duration::from_secs(60));
    let (mut t, pid, killer) = hanging_peer_killed_soon(&ShmOptions::new().ring_capacity(4096));
    // The child never reads: the ring fills and the send blocks until the death is seen.
    let err = loop {
        if let Err(e) = t.send(&[&[1u8; 500]]) {
            break e;
        }
    };
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    let mut child = killer.join().unwrap();
    let _ = child.wait();
    drop(t);
    guard.finish(&[pid]);
}

#[test]
fn child_notices_its_parent_dying() {
    let guard = support::start("shm_proc_parent_dies", Duration::from_secs(60));
    let mut middle = Command::new(std::env::current_exe().unwrap())
        .env(MODE_ENV, "middle")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(middle.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let grandchild: u32 = first.strip_prefix("grandchild ").unwrap().parse().unwrap();
    // Give the grandchild time to connect and start waiting, then kill its parent.
    std::thread::sleep(Duration::from_millis(200));
    middle.kill().unwrap();
    let _ = middle.wait();
    // The grandchild inherited the stdout pipe: its report arrives, then end of file.
    let report = lines.next().unwrap().unwrap();
    assert_eq!(report, "ended UnexpectedEof");
    assert!(
        lines.next().is_none(),
        "the grandchild printed more than its report"
    );
    drop(lines);
    guard.finish(&[middle.id(), grandchild]);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
#[ignore = "measurement: run with --release --ignored --nocapture"]
fn measure_round_trip_and_bandwidth() {
    let guard = support::start("shm_measure", Duration::from_secs(300));
    const ROUNDS: usize = 20_000;
    const REPEATS: usize = 7;

    // Raw pipe ping-pong (the floor), 8 bytes.
    let mut pipe_child = Command::new(std::env::current_exe().unwrap())
        .env(MODE_ENV, "pipe-echo")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to = pipe_child.stdin.take().unwrap();
    let mut from = pipe_child.stdout.take().unwrap();
    let mut pipe_rt = Vec::new();
    for _ in 0..REPEATS {
        let t0 = Instant::now();
        for i in 0..ROUNDS as u64 {
            let mut b = i.to_le_bytes();
            to.write_all(&b).unwrap();
            from.read_exact(&mut b).unwrap();
            assert_eq!(u64::from_le_bytes(b), i);
        }
        pipe_rt.push(t0.elapsed().as_secs_f64() * 1e6 / ROUNDS as f64);
    }
    drop((to, from));
    wait_exit(&mut pipe_child, Duration::from_secs(10));

    // Shared-memory ping-pong, 8 bytes.
    let (mut t, mut child) = start("echo", &ShmOptions::new());
    let mut shm_rt = Vec::new();
    for _ in 0..REPEATS {
        let t0 = Instant::now();
        for i in 0..ROUNDS as u64 {
            t.send(&[&i.to_le_bytes()]).unwrap();
            let r = t
                .recv(Some(Instant::now() + Duration::from_secs(10)))
                .unwrap();
            assert_eq!(r, &i.to_le_bytes());
        }
        shm_rt.push(t0.elapsed().as_secs_f64() * 1e6 / ROUNDS as f64);
    }
    drop(t);
    wait_exit(&mut child, Duration::from_secs(10));

    // 64 MiB one way; the child copies it out and acknowledges.
    let (mut t, mut child) = start("ack", &ShmOptions::new());
    let big = body(3, 64 << 20);
    let mut gbps = Vec::new();
    for round in 0..REPEATS + 1 {
        let t0 = Instant::now();
        t.send(&[&big]).unwrap();
        let ack = t
            .recv(Some(Instant::now() + Duration::from_secs(30)))
            .unwrap();
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(ack, &(big.len() as u64).to_le_bytes());
        if round > 0 {
            // Round 0 pays for first-touching the shared pages; later rounds reuse them.
            gbps.push(big.len() as f64 / secs / 1e9);
        } else {
            println!(
                "64 MiB first transfer (fresh pages): {:.2} GB/s",
                big.len() as f64 / secs / 1e9
            );
        }
    }
    drop(t);
    wait_exit(&mut child, Duration::from_secs(10));

    let (p, s) = (median(pipe_rt), median(shm_rt));
    println!("pipe ping-pong 8 B: {p:.2} us (median of {REPEATS} x {ROUNDS})");
    println!("shm  ping-pong 8 B: {s:.2} us = {:.2}x the pipe", s / p);
    println!(
        "shm  64 MiB one way (reused segment, receiver copies out): {:.2} GB/s",
        median(gbps)
    );
    guard.finish(&[]);
}
