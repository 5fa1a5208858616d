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
        .known_bug("spawn_with_idle_worker", BUG_IDLE_RACE)
}

fn run_with<C: Codec>(codec: C, transport: TransportKind) -> Report {
    let name = format!("ProcessPool<{}> over {transport:?}", codec.name());
    let mut opts = options();
    if transport == TransportKind::Shm {
        opts = opts.known_bug("per_call_timeout", BUG_SHM_TIMEOUT);
    }
    conformance::run(&name, opts, move |workers| {
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

/// /work/contract-changes.md, "BUG for pool-core" 10:22, 10:39 and 11:43: back-to-back
/// submits while a worker is (about to be) idle do not all start — the second waits in the
/// queue or is pipelined behind a busy worker. Remove once fixed.
const BUG_IDLE_RACE: &str =
    "pool-core: a task waits behind a busy worker while another worker is idle";

/// /work/contract-changes.md, "BUG for pool-process (shm transport, minor)" 10:54: about one
/// run in three, a timeout over shared memory reports `after` 99.9 ms for a 100 ms limit.
const BUG_SHM_TIMEOUT: &str =
    "pool-process shm: TimedOut.after is a measured 99.9 ms, not the limit";

/// One test per codec × transport.
macro_rules! matrix {
    ($($name:ident: $codec:expr, $transport:ident;)*) => {
        $(
            #[test]
            fn $name() {
                check(run_with($codec, TransportKind::$transport));
            }
        )*
    };
}

matrix! {
    msgpack_over_pipe: MsgPack, Pipe;
    msgpack_over_local_socket: MsgPack, LocalSocket;
    msgpack_over_shm: MsgPack, Shm;
    postcard_over_pipe: Postcard, Pipe;
    postcard_over_local_socket: Postcard, LocalSocket;
    postcard_over_shm: Postcard, Shm;
    bincode_over_pipe: Bincode::default(), Pipe;
    bincode_over_local_socket: Bincode::default(), LocalSocket;
    bincode_over_shm: Bincode::default(), Shm;
    json_over_pipe: Json, Pipe;
    json_over_local_socket: Json, LocalSocket;
    json_over_shm: Json, Shm;
}
