//! The pipe floor's child protocol, driven against the `compare` binary as the child.

use benches::floor::PipeChild;
use benches::work::{check_doubled, double};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// Runs `f` on a thread and fails the test if it takes longer than 30 s (a hung pipe).
fn with_watchdog(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(()) => t.join().expect("test body"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(t.join().expect_err("body panicked"))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("floor child hung for 30 s"),
    }
}

fn child() -> PipeChild {
    PipeChild::spawn_exe(Path::new(env!("CARGO_BIN_EXE_compare"))).expect("start floor child")
}

#[test]
fn ping_echoes_the_value() {
    with_watchdog(|| {
        let mut c = child();
        for v in [0, 1, 12345, (1 << 56) - 1] {
            c.send_ping(v).expect("send");
            assert_eq!(c.recv_ping().expect("recv"), v);
        }
    });
}

#[test]
fn double_and_sink_round_trip() {
    with_watchdog(|| {
        let mut c = child();
        let items: Vec<u64> = (0..10_000).collect();
        let mut out = Vec::new();
        for chunk in items.chunks(4096) {
            c.send_double(chunk).expect("send chunk");
            c.recv_double(chunk.len(), &mut out).expect("recv chunk");
        }
        check_doubled(&out, 10_000).expect("doubled");
        assert_eq!(out[9_999], double(9_999));
        let payload = vec![7u8; 3 << 20];
        assert_eq!(c.sink(&payload).expect("sink"), 3 << 20);
        assert_eq!(c.sink(&[]).expect("empty sink"), 0);
    });
}

#[test]
fn spawn_floor_child_answers_one_byte() {
    with_watchdog(|| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_compare"))
            .env(benches::floor::CHILD_ENV, "hello")
            .output()
            .expect("run hello child");
        assert!(out.status.success());
        assert_eq!(out.stdout, [1]);
    });
}
