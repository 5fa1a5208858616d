//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`; not a public API).
//!
//! Each function hands bytes to one of the crate's own parsers, unchanged, and returns what a
//! target can check without seeing the internal types: mostly the message encoded again from
//! what was parsed, `None` when the parser refused the bytes. The checks themselves live in
//! the targets.

use crate::forkserver::{Answer, Request};
use crate::protocol::{
    self, Hello, MAX_REQUEST_HEADER, Outcome, PanicRecord, Ready, Setup, WorkerSpec,
};
use crate::supervisor::describe_hook_failure;

/// HELLO (worker → parent) parsed, then encoded again.
pub fn hello(frame: &[u8]) -> Option<Vec<u8>> {
    Hello::decode(frame).map(|h| h.encode())
}

/// SETUP (parent → worker) parsed, then encoded again.
pub fn setup(frame: &[u8]) -> Option<Vec<u8>> {
    Setup::decode(frame).map(|s| s.encode())
}

/// READY (worker → parent) parsed, then encoded again.
pub fn ready(frame: &[u8]) -> Option<Vec<u8>> {
    Ready::decode(frame).map(|r| r.encode())
}

/// The worker's start-up environment variable parsed, then encoded again.
pub fn worker_spec(text: &str) -> Option<String> {
    WorkerSpec::decode(text).map(|s| s.encode())
}

/// A panic record (a reply's or a hook's detail) parsed, then written again.
pub fn panic_record(detail: &[u8]) -> Option<Vec<u8>> {
    PanicRecord::read(detail).map(|p| {
        let mut out = Vec::new();
        p.write(&mut out);
        out
    })
}

/// The parent's description of a hook's failure (READY's or STOPPED's outcome and detail);
/// `None` for an outcome byte that names no outcome.
pub fn hook_failure(outcome: u8, detail: &[u8]) -> Option<String> {
    Outcome::from_u8(outcome).map(|o| describe_hook_failure(o, detail))
}

/// A request header stamped with sequence number `seq` (`None`: not a request header).
pub fn stamp_seq(header: &[u8], seq: u64) -> Option<Vec<u8>> {
    let mut buf = [0u8; MAX_REQUEST_HEADER];
    protocol::stamp_seq(header, seq, &mut buf).map(<[u8]>::to_vec)
}

/// The sequence number of a request or reply frame (0 if it is too short).
pub fn seq_of(frame: &[u8]) -> u64 {
    protocol::request::seq_of(frame)
}

/// A request's kind byte without the poll flag, and the flag.
pub fn request_kind(kind: u8) -> (u8, bool) {
    protocol::request::request_kind(kind)
}

/// The real request and reply headers, for seeds: a task header for function reference `f`,
/// a named task header for registry index `index`, a reply header.
pub fn headers(f: i64, index: u32, seq: u64, outcome: u8) -> [Vec<u8>; 3] {
    [
        protocol::task_header(crate::transfer::FnRef(f)).to_vec(),
        protocol::named_header(index).to_vec(),
        protocol::reply_header(seq, outcome).to_vec(),
    ]
}

/// A fork server request (parent → server) parsed, then encoded again; `None` when the
/// server would ignore it or answer FORK_FAILED (malformed).
pub fn forkserver_request(msg: &[u8]) -> Option<Vec<u8>> {
    Request::decode(msg).encode()
}

/// A fork server answer (server → parent) parsed, then encoded again.
pub fn forkserver_answer(msg: &[u8]) -> Option<Vec<u8>> {
    Answer::decode(msg).map(|a| a.encode())
}

/// Real fork server messages, for the seed corpus: `(name, bytes)`.
pub fn forkserver_samples() -> Vec<(&'static str, Vec<u8>)> {
    use crate::forkserver::ForkRequest;
    use std::ffi::OsString;

    let fork = ForkRequest {
        spec: "4;100;2049.1234567.9876543.1700000000.123456789;64;3;0;pipe;101".into(),
        env: vec![
            (OsString::from("PATH"), OsString::from("/usr/bin:/bin")),
            (OsString::from("RUST_BACKTRACE"), OsString::from("1")),
        ],
        cwd: OsString::from("/work"),
    };
    let answers = [
        (
            "ready",
            Answer::Ready {
                pid: 4000,
                refusal: None,
            },
        ),
        (
            "ready-refused",
            Answer::Ready {
                pid: 4000,
                refusal: Some("the fork server is not single-threaded before main".into()),
            },
        ),
        (
            "forked",
            Answer::Forked {
                request: 1,
                pid: 4001,
            },
        ),
        (
            "fork-failed",
            Answer::ForkFailed {
                request: 2,
                why: "fork failed: Resource temporarily unavailable".into(),
            },
        ),
        (
            "exited-signal",
            Answer::Exited {
                pid: 4001,
                status: 0x8b,
            },
        ),
        (
            "exited-code",
            Answer::Exited {
                pid: 4001,
                status: 3 << 8,
            },
        ),
        ("reaped", Answer::Reaped { pid: 4001 }),
    ];
    let requests = [
        ("fork", Request::Fork(1, Some(fork))),
        ("kill", Request::Kill(4001)),
        ("release", Request::Release(4001)),
    ];
    let mut out = Vec::new();
    for (name, r) in requests {
        out.extend(r.encode().map(|m| (name, m)));
    }
    for (name, a) in answers {
        out.push((name, a.encode()));
    }
    out
}

/// Real handshake messages made by the crate's encoders, for the seed corpus:
/// `(name, bytes)` for HELLO, SETUP, READY, a worker spec and a panic record.
pub fn handshake_samples() -> Vec<(&'static str, Vec<u8>)> {
    use crate::protocol::{HookCall, PROTOCOL_VERSION};
    use crate::sys::exe::BuildIdentity;
    use crate::transfer::FnRef;
    use crate::transport::{Flavor, SocketAddress};

    let identity = BuildIdentity {
        dev: 2049,
        ino: 1_234_567,
        size: 9_876_543,
        mtime: 1_700_000_000,
        mtime_nsec: 123_456_789,
    };
    let hello = Hello {
        version: PROTOCOL_VERSION,
        pid: 4242,
        identity: identity.encode(),
        anchor_delta: -4096,
        refusal: None,
        tasks: vec![
            ("square".into(), "msgpack".into()),
            ("sum".into(), "json".into()),
        ],
    };
    let refusing = Hello {
        refusal: Some("the worker is another build".into()),
        tasks: Vec::new(),
        ..hello.clone()
    };
    let setup = Setup {
        probe: FnRef(-1024),
        codec_config: vec![7, 7],
        codec_name: "msgpack".into(),
        max_frame: pool_codec::DEFAULT_MAX_FRAME,
        init: Some(HookCall {
            f: FnRef(2048),
            arg: vec![0x93, 1, 2, 3],
        }),
        fin: None,
    };
    let bare = Setup {
        probe: FnRef(7),
        codec_config: Vec::new(),
        codec_name: "msgpack".into(),
        max_frame: pool_codec::DEFAULT_MAX_FRAME,
        init: None,
        fin: Some(HookCall {
            f: FnRef(-8),
            arg: Vec::new(),
        }),
    };
    let record = PanicRecord {
        message: "index out of bounds: the len is 3 but the index is 7".into(),
        location: Some("src/main.rs:12:5".into()),
        backtrace: None,
    };
    let mut panic = Vec::new();
    record.write(&mut panic);
    let ready = Ready {
        codec: "msgpack".into(),
        outcome: Outcome::Ok,
        detail: &[],
    };
    let init_panicked = Ready {
        codec: "msgpack".into(),
        outcome: Outcome::Panicked,
        detail: &panic,
    };
    let spec = WorkerSpec {
        version: PROTOCOL_VERSION,
        parent: 100,
        ppid: 101,
        identity,
        anchor_delta: 64,
        worker_id: 3,
        named_only: false,
        transport: Flavor::Socket(SocketAddress {
            name: "pool-100-3-ab".into(),
            token: vec![0x00, 0xff],
        }),
    };
    let spawned = WorkerSpec {
        ppid: 100,
        transport: Flavor::Pipe,
        ..spec.clone()
    };
    vec![
        ("hello", hello.encode()),
        ("hello-refusal", refusing.encode()),
        ("setup", setup.encode()),
        ("setup-bare", bare.encode()),
        ("ready", ready.encode()),
        ("ready-init-panicked", init_panicked.encode()),
        ("spec-forked", spec.encode().into_bytes()),
        ("spec-spawned", spawned.encode().into_bytes()),
        ("panic-record", panic),
    ]
}

/// Plays a script of steps (a hostile shared-memory peer's writes and both sides' sends and
/// receives) against a real channel; panics when a property does not hold.
pub fn shm_script(script: &[u8]) {
    crate::transport::shm::hostile::play(script);
}

/// Scripts for the seed corpus: `(name, bytes)`.
pub fn shm_samples() -> Vec<(&'static str, Vec<u8>)> {
    crate::transport::shm::hostile::samples()
}
