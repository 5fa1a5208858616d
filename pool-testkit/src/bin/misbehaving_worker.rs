//! A worker binary that misbehaves at the protocol level, for `tests/protocol_misbehaving.rs`.
//!
//! Started by a `ProcessPool` through `worker_program(..)` (pipe transport: the control
//! channel is stdin/stdout). `POOL_TESTKIT_MISBEHAVE` picks the misbehaviour:
//!
//! | mode | what it does |
//! |---|---|
//! | `garbage` | writes 4 KiB of random bytes instead of a HELLO, then waits |
//! | `huge_header` | a frame header claiming `u32::MAX` bytes, then waits |
//! | `over_max` | a frame header claiming 1 GiB + 1 (past the parent's limit), then waits |
//! | `cut_frame` | a header claiming 100 bytes, 10 of them, then exits |
//! | `cut_frame_hang` | a header claiming 100 bytes, 10 of them, then waits |
//! | `silent` | never says anything (a handshake that never comes) |
//! | `malformed_hello` | a HELLO frame cut after its kind byte |
//! | `wrong_version` | a well-formed HELLO with protocol version 999 |
//! | `reply_first` | a well-formed REPLY (a result for a task never sent, sequence 1) instead of HELLO |
//! | `wrong_codec` | a correct HELLO, then READY naming the codec `bogus-codec` |
//! | `double_reply` | a correct handshake; answers each task (echoing a msgpack `u64`) twice with the task's sequence number: the second is a duplicate |
//! | `huge_reply` | a correct handshake; answers the first task with a frame header claiming `u32::MAX` bytes, then waits |
//! | `stray_reply` | a correct handshake; answers each task (echoing a msgpack `u64`), then sends a reply with sequence 0, which no request has: a result for a task never sent |
//!
//! The protocol (`pool-process/src/protocol/`): a request is `kind, sequence
//! u64, target, argument`, a reply `REPLY, sequence u64, outcome, payload`.
//!
//! It echoes the parent's identity and code-layout values from `POOL_PROCESS_WORKER`, so its
//! HELLO passes the parent's same-build check where the mode wants it to.

use std::io::{Read, Write};
use std::time::Duration;

/// The protocol's numbers: pool-process's own file, included rather than linked (linking
/// pool-process would make this binary a real worker before `main`), so a protocol change
/// reaches this fixture at compile time.
#[allow(dead_code)]
mod protocol {
    include!("../../../pool-process/src/protocol/numbers.rs");
}
use protocol::{HELLO, PROTOCOL_VERSION, READY, REPLY, STOP, TASK, TASK_HEADER};

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u32(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn send(out: &mut impl Write, payload: &[u8]) {
    // A write error means the parent gave up on us: exit quietly.
    if out
        .write_all(&frame(payload))
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// One frame from the parent, or exit on end of file.
fn recv(input: &mut impl Read) -> Vec<u8> {
    let mut len = [0u8; 4];
    if input.read_exact(&mut len).is_err() {
        std::process::exit(0);
    }
    let n = u32::from_le_bytes(len) as usize;
    let mut buf = vec![0u8; n.min(64 << 20)];
    if input.read_exact(&mut buf).is_err() {
        std::process::exit(0);
    }
    buf
}

/// Wait until the parent closes our stdin (or kills us).
fn wait_for_eof(input: &mut impl Read) -> ! {
    let mut sink = [0u8; 4096];
    loop {
        match input.read(&mut sink) {
            Ok(0) | Err(_) => std::process::exit(0),
            Ok(_) => {}
        }
    }
}

fn hello(version: u32, identity: &str, anchor: i64) -> Vec<u8> {
    let mut h = vec![HELLO];
    put_u32(&mut h, version);
    put_u32(&mut h, std::process::id());
    put_str(&mut h, identity);
    h.extend_from_slice(&anchor.to_le_bytes());
    h.push(0); // no refusal
    put_u32(&mut h, 0); // no named tasks
    h
}

fn ready(codec: &str) -> Vec<u8> {
    let mut r = vec![READY];
    put_str(&mut r, codec);
    r.push(0); // initializer outcome: ok
    r
}

/// A REPLY with outcome "ok" for request `seq`.
fn reply_ok(seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![REPLY];
    r.extend_from_slice(&seq.to_le_bytes());
    r.push(0);
    r.extend_from_slice(payload);
    r
}

/// The sequence number of a request.
fn seq_of(request: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&request[1..9]);
    u64::from_le_bytes(b)
}

fn pseudo_random(n: usize) -> Vec<u8> {
    let mut x = u64::from(std::process::id()) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn main() {
    let Ok(spec) = std::env::var("POOL_PROCESS_WORKER") else {
        eprintln!("misbehaving_worker: run me through ProcessPool::worker_program");
        std::process::exit(2);
    };
    let mode = std::env::var("POOL_TESTKIT_MISBEHAVE").unwrap_or_default();
    eprintln!("misbehaving_worker: mode {mode:?}");
    // <version>;<parent pid>;<identity>;<anchor distance>;<worker id>;<named>;<transport>
    let fields: Vec<&str> = spec.splitn(7, ';').collect();
    // The spec carries the identity as `dev.ino.size.mtime.mtime_nsec`; HELLO carries its
    // display form.
    let identity = match fields.get(2).map(|s| s.split('.').collect::<Vec<_>>()) {
        Some(p) if p.len() == 5 => format!(
            "dev {} inode {} size {} mtime {}.{:09}",
            p[0],
            p[1],
            p[2],
            p[3],
            p[4].parse::<u32>().unwrap_or(0)
        ),
        _ => String::new(),
    };
    let identity = identity.as_str();
    let anchor: i64 = fields.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut input = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    match mode.as_str() {
        "garbage" => {
            let _ = out.write_all(&pseudo_random(4096));
            let _ = out.flush();
            wait_for_eof(&mut input)
        }
        "huge_header" => {
            let _ = out.write_all(&[0xff, 0xff, 0xff, 0xff, HELLO, 1, 2, 3]);
            let _ = out.flush();
            wait_for_eof(&mut input)
        }
        "over_max" => {
            let _ = out.write_all(&((1u32 << 30) + 1).to_le_bytes());
            let _ = out.write_all(&[HELLO; 16]);
            let _ = out.flush();
            wait_for_eof(&mut input)
        }
        "cut_frame" | "cut_frame_hang" => {
            let _ = out.write_all(&100u32.to_le_bytes());
            let _ = out.write_all(&hello(PROTOCOL_VERSION, identity, anchor)[..10]);
            let _ = out.flush();
            if mode == "cut_frame" {
                std::process::exit(0);
            }
            wait_for_eof(&mut input)
        }
        "silent" => wait_for_eof(&mut input),
        "malformed_hello" => {
            send(&mut out, &[HELLO]);
            wait_for_eof(&mut input)
        }
        "wrong_version" => {
            send(&mut out, &hello(999, identity, anchor));
            wait_for_eof(&mut input)
        }
        "reply_first" => {
            send(&mut out, &reply_ok(1, &[0x2a]));
            wait_for_eof(&mut input)
        }
        "wrong_codec" => {
            send(&mut out, &hello(PROTOCOL_VERSION, identity, anchor));
            let _setup = recv(&mut input);
            send(&mut out, &ready("bogus-codec"));
            wait_for_eof(&mut input)
        }
        "huge_reply" => {
            send(&mut out, &hello(PROTOCOL_VERSION, identity, anchor));
            let _setup = recv(&mut input);
            send(&mut out, &ready("msgpack"));
            let _task = recv(&mut input);
            let _ = out.write_all(&[0xff, 0xff, 0xff, 0xff, REPLY, 1, 0, 0]);
            let _ = out.flush();
            wait_for_eof(&mut input)
        }
        "double_reply" | "stray_reply" => {
            send(&mut out, &hello(PROTOCOL_VERSION, identity, anchor));
            let _setup = recv(&mut input);
            send(&mut out, &ready("msgpack"));
            loop {
                let task = recv(&mut input);
                match task.first() {
                    Some(&TASK) if task.len() >= TASK_HEADER => {
                        let seq = seq_of(&task);
                        // The argument is a msgpack u64; `faults::ok` returns it unchanged.
                        send(&mut out, &reply_ok(seq, &task[TASK_HEADER..]));
                        // 0xcd 0x03 0x09 is msgpack for 777: a reply nobody asked for.
                        let stray_seq = if mode == "double_reply" { seq } else { 0 };
                        send(&mut out, &reply_ok(stray_seq, &[0xcd, 0x03, 0x09]));
                    }
                    Some(&STOP) => std::process::exit(0),
                    _ => std::process::exit(3),
                }
            }
        }
        other => {
            eprintln!("misbehaving_worker: unknown mode {other:?}");
            std::thread::sleep(Duration::from_millis(10));
            std::process::exit(2)
        }
    }
}
