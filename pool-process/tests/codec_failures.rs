//! Encode and decode failures on each side fail only their task, naming side, type and codec;
//! an encode failure in the parent is returned by `submit` itself.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pool_codec::{Codec, DefaultCodec};
use pool_core::{Executor, Shutdown, Side, SubmitErrorKind, TaskError};
use pool_process::ProcessPool;
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Cannot be serialized anywhere.
#[derive(Debug)]
struct NoSer;
impl Serialize for NoSer {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(S::Error::custom("NoSer refuses to serialize"))
    }
}
impl<'de> Deserialize<'de> for NoSer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| NoSer)
    }
}

/// Serializes fine, never deserializes.
#[derive(Debug)]
struct NoDe;
impl Serialize for NoDe {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}
impl<'de> Deserialize<'de> for NoDe {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(D::Error::custom("NoDe refuses to deserialize"))
    }
}

fn take_no_ser(_: NoSer) -> u32 {
    1
}
fn take_no_de(_: NoDe) -> u32 {
    2
}
fn give_no_ser(_: ()) -> NoSer {
    NoSer
}
fn give_no_de(_: ()) -> NoDe {
    NoDe
}

static NEVER_RAN: AtomicBool = AtomicBool::new(true);

fn check_failure(err: &TaskError, side: Side, ty: &str) {
    let f = match err {
        TaskError::Encode(f) | TaskError::Decode(f) => f,
        other => panic!("expected a codec failure, got {other:?}"),
    };
    assert_eq!(f.side, side, "{err}");
    assert!(f.type_name.ends_with(ty), "{err}");
    assert_eq!(f.codec, DefaultCodec::default().name(), "{err}");
    assert!(f.message.contains("refuses"), "{err}");
}

#[test]
fn codec_failures_on_each_side_fail_one_task() {
    let guard = support::start("codec", Duration::from_secs(60));
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let pid = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();

    // Parent cannot encode the argument: submit itself fails, the task comes back.
    let err = pool.submit(take_no_ser, NoSer).unwrap_err();
    match err.kind() {
        SubmitErrorKind::Encode(_) => {
            let e = err.to_task_error();
            assert!(matches!(e, TaskError::Encode(_)));
            check_failure(&e, Side::Parent, "NoSer");
        }
        other => panic!("expected an encode error, got {other:?}"),
    }
    assert!(err.into_task().is_some());
    assert!(NEVER_RAN.load(Ordering::SeqCst));

    // Worker cannot decode the argument.
    let e = pool.submit(take_no_de, NoDe).unwrap().result().unwrap_err();
    assert!(matches!(e, TaskError::Decode(_)));
    check_failure(&e, Side::Worker, "NoDe");

    // Worker cannot encode the result.
    let e = pool.submit(give_no_ser, ()).unwrap().result().unwrap_err();
    assert!(matches!(e, TaskError::Encode(_)));
    check_failure(&e, Side::Worker, "NoSer");

    // Parent cannot decode the result.
    let e = pool.submit(give_no_de, ()).unwrap().result().unwrap_err();
    assert!(matches!(e, TaskError::Decode(_)));
    check_failure(&e, Side::Parent, "NoDe");

    // None of that cost the worker.
    let again = pool
        .submit(support::worker_pid, ())
        .unwrap()
        .result()
        .unwrap();
    assert_eq!(again, pid);
    pool.shutdown(Shutdown::Wait);
    drop(pool);
    guard.finish(&[pid]);
}
