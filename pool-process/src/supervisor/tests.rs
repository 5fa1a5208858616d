use std::io;
use std::time::{Duration, Instant};

use crate::forkserver;
use crate::protocol::Outcome;
use crate::protocol::{STOP, Setup};
use crate::sys::proc;
use crate::transfer;
use crate::transport::TransportKind;

use super::handshake::*;
use super::*;
use crate::protocol::task_header;
use pool_codec::{Codec, DefaultCodec};

fn double(x: u64) -> u64 {
    x * 2
}

/// A worker of this test binary with the default codec and no hooks.
pub(super) fn config_with(transport: TransportKind, start_method: StartMethod) -> StartConfig {
    StartConfig {
        env: Vec::new(),
        transport,
        program: None,
        setup: Setup {
            probe: transfer::probe_ref::<DefaultCodec>(),
            codec_config: Vec::new(),
            codec_name: "msgpack".into(),
            max_frame: pool_codec::DEFAULT_MAX_FRAME,
            init: None,
            fin: None,
        },
        codec_name: DefaultCodec::default().name().into_owned(),
        start_timeout: Duration::from_secs(20),
        start_method,
        named: None,
    }
}

fn call_u64(w: &mut WorkerProcess, f: transfer::FnRef, x: u64) -> Result<u64, String> {
    let codec = DefaultCodec::default();
    let mut arg = Vec::new();
    codec.encode(&x, &mut arg).unwrap();
    let reply = w.call(
        &[&task_header(f), &arg],
        Some(Instant::now() + Duration::from_secs(20)),
        |o, bytes| (o, bytes.to_vec()),
    );
    match reply {
        Ok((Outcome::Ok, bytes)) => Ok(codec.decode(&bytes).unwrap()),
        Ok((Outcome::Panicked, bytes)) => Err(describe_panic(&bytes)),
        Ok((o, _)) => Err(format!("{o:?}")),
        Err(CallFailure::Died(d) | CallFailure::TimedOut(d)) => Err(d.exit.to_string()),
    }
}

#[test]
fn start_call_and_stop_over_both_transports() {
    for (kind, method) in [
        TransportKind::Pipe,
        TransportKind::LocalSocket,
        TransportKind::Shm,
    ]
    .into_iter()
    .flat_map(|k| [(k, StartMethod::Spawn), (k, StartMethod::ForkServer)])
    {
        let mut w = WorkerProcess::start(&config_with(kind, method), 1)
            .unwrap_or_else(|e| panic!("{kind:?} {method:?}: {e:?}"));
        let pid = w.pid();
        let f = transfer::task_ref::<_, u64, u64, DefaultCodec>(&double, true);
        for i in 0..100 {
            assert_eq!(call_u64(&mut w, f, i), Ok(i * 2));
        }
        let boom = |x: u64| -> u64 { if x > 0 { panic!("boom {x}") } else { 0 } };
        let pf = transfer::task_ref::<_, u64, u64, DefaultCodec>(&boom, true);
        let err = call_u64(&mut w, pf, 7).unwrap_err();
        assert!(
            err.contains("boom 7") && err.contains("supervisor/tests.rs"),
            "{err}"
        );
        assert!(w.alive());
        assert!(w.memory_bytes().unwrap() > 0);
        w.stop(Instant::now() + Duration::from_secs(5)).unwrap();
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}

#[test]
fn pipelined_requests_are_numbered_and_answered_in_order() {
    let mut w =
        WorkerProcess::start(&config_with(TransportKind::Pipe, StartMethod::Spawn), 4).unwrap();
    let f = transfer::task_ref::<_, u64, u64, DefaultCodec>(&double, true);
    let codec = DefaultCodec::default();
    let deadline = Some(Instant::now() + Duration::from_secs(20));
    for round in 0..3u64 {
        for i in 0..5u64 {
            let mut arg = Vec::new();
            codec.encode(&(round * 10 + i), &mut arg).unwrap();
            w.send_request(&[&task_header(f), &arg]).unwrap();
        }
        assert_eq!((w.oldest, w.next_seq), (round * 5 + 1, round * 5 + 6));
        for i in 0..5u64 {
            let got = w.recv_reply(deadline, |o, bytes| (o, codec.decode::<u64>(bytes)));
            let Ok((Outcome::Ok, Ok(v))) = got else {
                panic!("round {round} task {i}: no reply");
            };
            assert_eq!(v, 2 * (round * 10 + i));
        }
        assert_eq!(w.oldest, w.next_seq);
    }
    // Not a request header: refused, nothing sent.
    assert_eq!(
        w.send_request(&[&[STOP]]).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(w.next_seq, 16);
    w.stop(Instant::now() + Duration::from_secs(5)).unwrap();
}

#[test]
fn a_pipelined_task_dying_before_its_turn_is_read_keeps_its_stderr_lines() {
    // The worker answers the first task and runs the second at once: its line is drained
    // before the parent reads the first answer. The quote must still hold it.
    let mut w =
        WorkerProcess::start(&config_with(TransportKind::Pipe, StartMethod::Spawn), 5).unwrap();
    let f = transfer::task_ref::<_, u64, u64, DefaultCodec>(&double, true);
    let dies = transfer::task_ref::<_, u64, u64, DefaultCodec>(
        &|_x: u64| -> u64 {
            eprintln!("about to abort, pipelined");
            std::process::abort()
        },
        true,
    );
    let codec = DefaultCodec::default();
    let mut arg = Vec::new();
    codec.encode(&1u64, &mut arg).unwrap();
    w.send_request(&[&task_header(f), &arg]).unwrap();
    w.send_request(&[&task_header(dies), &arg]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !w.stderr.is_closed() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let first = w.recv_reply(Some(deadline), |o, bytes| (o, codec.decode::<u64>(bytes)));
    assert!(matches!(first, Ok((Outcome::Ok, Ok(2)))), "first reply");
    let second = w.recv_reply(Some(deadline), |o, _| o);
    let Err(CallFailure::Died(death)) = second else {
        panic!("the second task must die");
    };
    assert!(
        death.stderr_tail.contains("about to abort, pipelined"),
        "{:?}",
        death.stderr_tail
    );
}

#[test]
fn a_refused_fork_server_falls_back_to_spawn() {
    forkserver::testing::set_refused(Some("test: pretend another thread runs"));
    let started = WorkerProcess::start(
        &config_with(TransportKind::Pipe, StartMethod::ForkServer),
        3,
    );
    forkserver::testing::set_refused(None);
    let mut w = started.unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", w.pid())).unwrap();
    let ppid: u32 = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(ppid, proc::own_pid(), "the worker must be spawned by us");
    let f = transfer::task_ref::<_, u64, u64, DefaultCodec>(&double, true);
    assert_eq!(call_u64(&mut w, f, 21), Ok(42));
    w.stop(Instant::now() + Duration::from_secs(5)).unwrap();
}

#[test]
fn abort_is_reported_by_signal_name() {
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        let mut w = WorkerProcess::start(&config_with(TransportKind::Pipe, method), 2).unwrap();
        let f = transfer::task_ref::<_, u64, u64, DefaultCodec>(
            &|_x: u64| -> u64 {
                eprintln!("about to abort");
                std::process::abort()
            },
            true,
        );
        let err = call_u64(&mut w, f, 1).unwrap_err();
        assert_eq!(err, "SIGABRT (signal 6)", "{method:?}");
        assert!(w.bury().stderr_tail.contains("about to abort"));
        assert!(!w.alive());
    }
}
