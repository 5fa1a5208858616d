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
}

fn run_with<C: Codec>(codec: C, transport: TransportKind) -> Report {
    let name = format!("ProcessPool<{}> over {transport:?}", codec.name());
    let opts = options();
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
