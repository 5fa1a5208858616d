//! User code that panics around a process task — `Serialize` in the caller, `Deserialize` in
//! the worker or in the parent, an argument's `Drop` after encoding, a discarded result's
//! `Drop` on the pool's thread — fails at most its own task (a panicking `Serialize` in the
//! caller is refused at submit as an encode error), never unwinds into the caller, never
//! kills a pool thread or a worker, and is reported through `tracing`.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pool_codec::{Codec, DefaultCodec};
use pool_core::{CodecFailure, Executor, Shutdown, Side, SubmitErrorKind, TaskError};
use pool_process::ProcessPool;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `Serialize` panics (in whichever process encodes it); decodes fine.
#[derive(Debug)]
struct SerBomb;
impl Serialize for SerBomb {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("SerBomb went off in Serialize");
    }
}
impl<'de> Deserialize<'de> for SerBomb {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| SerBomb)
    }
}

/// Encodes fine; `Deserialize` panics (in whichever process decodes it).
#[derive(Debug)]
struct DeBomb;
impl Serialize for DeBomb {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}
impl<'de> Deserialize<'de> for DeBomb {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("DeBomb went off in Deserialize");
    }
}

/// Crosses as a unit; its `Drop` panics when armed. Values the caller makes are armed (the
/// argument the parent drops after encoding); values a worker decodes are not.
#[derive(Debug)]
struct ArgDropBomb {
    armed: bool,
}
impl Serialize for ArgDropBomb {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}
impl<'de> Deserialize<'de> for ArgDropBomb {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| ArgDropBomb { armed: false })
    }
}
impl Drop for ArgDropBomb {
    fn drop(&mut self) {
        if self.armed {
            panic!("ArgDropBomb went off in Drop");
        }
    }
}

/// Crosses as a unit; the value the *parent* decodes is armed (its `Drop` panics), the one a
/// worker makes and encodes is not.
#[derive(Debug)]
struct ResultDropBomb {
    armed: bool,
}
impl Serialize for ResultDropBomb {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}
impl<'de> Deserialize<'de> for ResultDropBomb {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| ResultDropBomb { armed: true })
    }
}
impl Drop for ResultDropBomb {
    fn drop(&mut self) {
        if self.armed {
            panic!("ResultDropBomb went off in Drop");
        }
    }
}

fn take_ser_bomb(_: SerBomb) -> u32 {
    1
}
fn take_de_bomb(_: DeBomb) -> u32 {
    2
}
fn give_ser_bomb(_: ()) -> SerBomb {
    SerBomb
}
fn give_de_bomb(_: ()) -> DeBomb {
    DeBomb
}
fn take_arg_drop_bomb(b: ArgDropBomb) -> bool {
    b.armed
}
fn give_result_drop_bomb(_: ()) -> ResultDropBomb {
    ResultDropBomb { armed: false }
}
fn hook_with_ser_bomb(_: SerBomb) {}

/// Blocks the worker until `path` exists (at most 20 s).
fn wait_for_file(path: String) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < end {
        if std::path::Path::new(&path).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// The codec failure inside `e`, checked for side, type, codec and a message naming the
/// panic.
fn codec_failure<'a>(e: &'a TaskError, side: Side, ty: &str, panic: &str) -> &'a CodecFailure {
    let f = match e {
        TaskError::Encode(f) | TaskError::Decode(f) => f,
        other => panic!("expected a codec failure, got {other:?}"),
    };
    assert_eq!(f.side, side, "{e}");
    assert!(f.type_name.contains(ty), "{e}");
    assert_eq!(f.codec, DefaultCodec::default().name(), "{e}");
    assert!(f.message.contains("panicked"), "{e}");
    assert!(f.message.contains(panic), "{e}");
    f
}

/// Waits for a future (bounded): a hang fails the test instead of blocking.
fn result_of<T>(f: pool_core::Future<T>) -> Result<T, TaskError> {
    f.result_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("a task hung"))
}

/// The pool still runs tasks on the same worker, and shuts down with `Wait` in bounded time.
fn still_serves_and_stops(pool: ProcessPool, pid: u32) {
    let again = result_of(pool.submit(support::worker_pid, ()).unwrap()).unwrap();
    assert_eq!(again, pid, "the worker was not replaced");
    assert_eq!(pool.stats().died, 0);
    let report = pool.shutdown(Shutdown::Wait);
    assert_eq!(report.unfinished_workers, 0);
}

#[test]
fn a_panicking_serialize_in_the_caller_is_refused_at_submit_and_apply() {
    let guard = support::start("ser_panic_refused", Duration::from_secs(60));
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let pid = result_of(pool.submit(support::worker_pid, ()).unwrap()).unwrap();
    let submitted = pool.stats().submitted;

    // submit: refused with an encode error naming the type, the codec and the panic; the
    // task comes back.
    let err = pool.submit(take_ser_bomb, SerBomb).unwrap_err();
    match err.kind() {
        SubmitErrorKind::Encode(_) => {
            let e = err.to_task_error();
            assert!(matches!(e, TaskError::Encode(_)), "{e:?}");
            codec_failure(&e, Side::Parent, "SerBomb", "SerBomb went off in Serialize");
        }
        other => panic!("expected an encode refusal, got {other:?}"),
    }
    assert!(err.into_task().is_some(), "the task is handed back");

    // apply: the same refusal, as the task's error.
    let e = pool.apply(take_ser_bomb, SerBomb).unwrap_err();
    assert!(matches!(e, TaskError::Encode(_)), "{e:?}");
    codec_failure(&e, Side::Parent, "SerBomb", "SerBomb went off in Serialize");

    // map: the chunk is refused, every item gets the encode error.
    let items: Vec<Result<u32, TaskError>> = pool.map(take_ser_bomb, vec![SerBomb]).collect();
    assert_eq!(items.len(), 1);
    let e = items[0].as_ref().unwrap_err();
    assert!(matches!(e, TaskError::Encode(_)), "{e:?}");
    codec_failure(
        e,
        Side::Parent,
        "Vec<panics_contained::SerBomb>",
        "SerBomb went off",
    );

    // Nothing reached a worker.
    assert_eq!(pool.stats().submitted, submitted);

    // A hook argument whose `Serialize` panics is a build error, not a panic.
    let built = ProcessPool::builder()
        .max_workers(1)
        .initializer(hook_with_ser_bomb, SerBomb)
        .build();
    let msg = built.unwrap_err().to_string();
    assert!(msg.contains("SerBomb went off in Serialize"), "{msg}");

    still_serves_and_stops(pool, pid);
    guard.finish(&[pid]);
}

#[test]
fn a_panicking_serialize_or_deserialize_fails_only_its_task() {
    let guard = support::start("codec_panics", Duration::from_secs(60));
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let pid = result_of(pool.submit(support::worker_pid, ()).unwrap()).unwrap();

    // In the worker a panicking Deserialize or Serialize is the task's panic, as one in the
    // task itself (the testkit's matrix holds the same): message and location, and the worker
    // lives on.
    let e = result_of(pool.submit(take_de_bomb, DeBomb).unwrap()).unwrap_err();
    let TaskError::Panicked(p) = &e else {
        panic!("expected Panicked, got {e:?}")
    };
    assert!(p.message.contains("DeBomb went off in Deserialize"), "{e}");
    assert!(p.location.is_some(), "{e:?}");
    let e = result_of(pool.submit(give_ser_bomb, ()).unwrap()).unwrap_err();
    let TaskError::Panicked(p) = &e else {
        panic!("expected Panicked, got {e:?}")
    };
    assert!(p.message.contains("SerBomb went off in Serialize"), "{e}");

    // The parent cannot decode the result, queued or on a borrowed worker.
    let e = result_of(pool.submit(give_de_bomb, ()).unwrap()).unwrap_err();
    assert!(matches!(e, TaskError::Decode(_)), "{e:?}");
    codec_failure(&e, Side::Parent, "DeBomb", "DeBomb went off in Deserialize");
    let e = pool.apply(give_de_bomb, ()).unwrap_err();
    assert!(matches!(e, TaskError::Decode(_)), "{e:?}");
    codec_failure(&e, Side::Parent, "DeBomb", "DeBomb went off in Deserialize");

    still_serves_and_stops(pool, pid);
    guard.finish(&[pid]);
}

#[test]
fn an_argument_that_panics_in_drop_after_encoding_does_not_unwind_out_of_submit() {
    let guard = support::start("arg_drop_panics", Duration::from_secs(60));
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let pid = result_of(pool.submit(support::worker_pid, ()).unwrap()).unwrap();
    let before = contained_events("argument");

    let f = pool
        .submit(take_arg_drop_bomb, ArgDropBomb { armed: true })
        .unwrap();
    assert_eq!(result_of(f), Ok(false));
    assert_eq!(
        pool.apply(take_arg_drop_bomb, ArgDropBomb { armed: true }),
        Ok(false)
    );
    // One armed item per chunk at most: a second panic while the first unwinds through a
    // `Vec`'s drop would abort the process, wherever that `Vec` was dropped.
    let all: Vec<bool> = pool
        .map_all(
            take_arg_drop_bomb,
            (0..3).map(|i| ArgDropBomb { armed: i == 1 }),
        )
        .unwrap();
    assert_eq!(all, [false, false, false]);
    // Each drop that panicked was reported.
    assert_eq!(contained_events("argument"), before + 3);

    still_serves_and_stops(pool, pid);
    guard.finish(&[pid]);
}

#[test]
fn a_discarded_result_that_panics_in_drop_does_not_kill_the_pools_thread() {
    let guard = support::start("result_drop_panics", Duration::from_secs(60));
    let dir = support::TempDir::new("result-drop");
    let go = dir.path().join("go");
    let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    let pid = result_of(pool.submit(support::worker_pid, ()).unwrap()).unwrap();
    let before = contained_events("finished task");

    // The worker is held until `go` exists, so the next task's future is dropped before
    // its result arrives: the pool's thread decodes it and drops it.
    let blocker = pool
        .submit(wait_for_file, go.to_string_lossy().into_owned())
        .unwrap();
    let discarded = pool.submit(give_result_drop_bomb, ()).unwrap();
    drop(discarded);
    std::fs::write(&go, b"").unwrap();
    assert_eq!(result_of(blocker), Ok(true));
    support_eventually(20, "the discarded result dropped and reported", || {
        contained_events("finished task") > before
    });

    still_serves_and_stops(pool, pid);
    guard.finish(&[pid]);
}

fn support_eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// How many "contained" events so far whose `what` mentions `what`.
fn contained_events(what: &str) -> usize {
    events()
        .lock()
        .unwrap()
        .iter()
        .filter(|e| {
            e.get("message").map(String::as_str) == Some("user code panicked; contained")
                && e.get("what").is_some_and(|w| w.contains(what))
        })
        .count()
}

type Fields = HashMap<String, String>;

/// Every `tracing` event of this test binary (a global subscriber keeps them).
fn events() -> &'static Arc<Mutex<Vec<Fields>>> {
    static SEEN: OnceLock<Arc<Mutex<Vec<Fields>>>> = OnceLock::new();
    SEEN.get_or_init(|| {
        let seen = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::set_global_default(Collector(seen.clone()))
            .expect("no other global subscriber in this test binary");
        seen
    })
}

/// A minimal `tracing::Subscriber` that keeps every event's fields in memory.
struct Collector(Arc<Mutex<Vec<Fields>>>);

struct Visit<'a>(&'a mut Fields);

impl tracing::field::Visit for Visit<'_> {
    fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
        self.0.insert(f.name().to_owned(), format!("{v:?}"));
    }
    fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
        self.0.insert(f.name().to_owned(), v.to_owned());
    }
}

impl tracing::Subscriber for Collector {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        let mut fields = Fields::new();
        e.record(&mut Visit(&mut fields));
        self.0.lock().unwrap().push(fields);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
