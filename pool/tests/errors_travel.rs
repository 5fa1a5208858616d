//! Every task error is a serde type: each variant, through each built-in codec, comes back
//! equal and prints the same.

use std::time::Duration;

use pool::codec::{Codec, Json, MsgPack, Postcard};
use pool::{
    BrokenReason, CodecFailure, ExitReason, PanicInfo, Side, TaskError, WorkerDied, WorkerId,
};

fn every_error() -> Vec<TaskError> {
    vec![
        TaskError::Panicked(PanicInfo {
            message: "boom".into(),
            location: Some("src/lib.rs:1:2".into()),
            backtrace: None,
            item: Some(7),
        }),
        TaskError::WorkerDied(WorkerDied {
            worker: WorkerId(2),
            pid: None,
            exit: ExitReason::Code(78),
            task: "task #9".into(),
            stderr_tail: String::new(),
        }),
        TaskError::WorkerDied(WorkerDied {
            worker: WorkerId(3),
            pid: Some(1),
            exit: ExitReason::Unknown,
            task: "t".into(),
            stderr_tail: "line 1\nline 2".into(),
        }),
        TaskError::TimedOut {
            after: Duration::from_millis(1500),
            worker: WorkerId(1),
            pid: Some(77),
            task: "slow".into(),
        },
        TaskError::Cancelled,
        TaskError::Encode(CodecFailure {
            side: Side::Parent,
            type_name: "my::Thing".into(),
            codec: "msgpack".into(),
            message: "no".into(),
        }),
        TaskError::Decode(CodecFailure {
            side: Side::Worker,
            type_name: "u8".into(),
            codec: "json".into(),
            message: "eof".into(),
        }),
        TaskError::Broken(BrokenReason::new("initializer failed: no config")),
        TaskError::Shutdown,
    ]
}

fn round_trip<C: Codec>(codec: C) {
    for e in every_error() {
        let mut wire = Vec::new();
        codec.encode(&e, &mut wire).unwrap();
        let back: TaskError = codec
            .decode(&wire)
            .unwrap_or_else(|err| panic!("{}: {e:?}: {err}", codec.name()));
        assert_eq!(back, e, "{}", codec.name());
        assert_eq!(back.to_string(), e.to_string());
    }
}

#[test]
fn every_task_error_crosses_every_codec() {
    round_trip(MsgPack);
    round_trip(Postcard);
    round_trip(Json);
}
