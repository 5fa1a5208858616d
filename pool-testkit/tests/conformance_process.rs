//! The conformance suite on `ProcessPool`, for every transport and every codec it offers.
//! Workers are this test binary, re-executed (no setup call needed).

use std::time::Duration;

use pool_codec::{Bincode, Codec, Json, MsgPack, Postcard};
use pool_process::{ProcessPool, TransportKind};
use pool_testkit::conformance::{self, Options, Report};

fn options() -> Options {
    Options::new()
        .workers(2)
        .kill(true)
        .bound(Duration::from_secs(10))
        .known_bug("wait_functions", BUG_ON_DONE_BEFORE_TERMINAL)
        .known_bug("as_completed_each_once", BUG_ON_DONE_BEFORE_TERMINAL)
        .known_bug("spawn_with_idle_worker", BUG_IDLE_UNDERCOUNT)
}

/// See /work/contract-changes.md ("BUG for pool-core", 10:18).
const BUG_ON_DONE_BEFORE_TERMINAL: &str =
    "pool-core wait()/as_completed() race with on_done (callbacks run before the terminal state)";
/// See /work/contract-changes.md ("BUG for pool-core", 10:22).
const BUG_IDLE_UNDERCOUNT: &str =
    "pool-core spawn-on-demand counts one idle worker for several submits";

fn run_with<C: Codec>(codec: C, transport: TransportKind) -> Report {
    let name = format!("ProcessPool<{}> over {transport:?}", codec.name());
    conformance::run(&name, options(), move |workers| {
        ProcessPool::builder()
            .transport(transport)
            .codec(codec.clone())
            .max_workers(workers)
            .build()
            .expect("valid process pool")
    })
}

fn check(report: Report) {
    println!("{report}");
    report.assert_passed();
}

#[test]
fn msgpack_over_pipe() {
    check(run_with(MsgPack, TransportKind::Pipe));
}

#[test]
fn msgpack_over_local_socket() {
    check(run_with(MsgPack, TransportKind::LocalSocket));
}

#[test]
fn postcard_over_pipe() {
    check(run_with(Postcard, TransportKind::Pipe));
}

#[test]
fn bincode_over_pipe() {
    check(run_with(Bincode::default(), TransportKind::Pipe));
}

#[test]
fn json_over_pipe() {
    check(run_with(Json, TransportKind::Pipe));
}
