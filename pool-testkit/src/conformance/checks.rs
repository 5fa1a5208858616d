//! The checks themselves. Each returns `Err(what it saw)` on failure.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use pool_core::{
    ChunkSize, Future, MapOptions, ReturnWhen, Shutdown, State, SubmitOptions, TaskError,
    as_completed, as_completed_ordered, callback_panics, wait,
};

use super::tasks::{self, Payload, Shape};
use super::{Check, Ctx, Need, poll_until, state_of};
use crate::target::{Target, TaskFn, Value};

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

pub(crate) fn all<E: Target>() -> Vec<Check<E>> {
    macro_rules! c {
        ($name:ident) => {
            Check {
                name: stringify!($name),
                need: Need::Nothing,
                run: $name::<E>,
            }
        };
        ($name:ident, kill) => {
            Check {
                name: stringify!($name),
                need: Need::Kill,
                run: $name::<E>,
            }
        };
    }
    vec![
        c!(submit_results),
        c!(values_round_trip),
        c!(remote_error_chain),
        c!(parallel_up_to_max_workers),
        c!(map_ordered),
        c!(map_lazy_bounded),
        c!(map_unordered_complete),
        c!(map_all_values_and_errors),
        c!(map_item_panic),
        c!(map_timeout),
        c!(panic_is_data),
        c!(spawn_with_idle_worker),
        c!(cancel_pending),
        c!(future_states_and_timing),
        c!(on_done_callbacks),
        c!(per_call_timeout),
        c!(wait_functions),
        c!(as_completed_each_once),
        c!(await_future),
        c!(kill_running, kill),
        c!(shutdown_wait),
        c!(shutdown_cancel_pending),
        c!(shutdown_kill),
        c!(stats_consistent),
        c!(drop_resolves_futures),
    ]
}

fn submit_results<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("submit one");
    let f = cx.sub(tasks::square, 7u64)?;
    let v = cx.value(f, "square(7)")?;
    ensure!(v == 49, "square(7) returned {v}");
    cx.step("submit 200 at once");
    let mut futs = Vec::new();
    for i in 0..200u64 {
        futs.push(cx.sub(tasks::square, i)?);
    }
    for (i, f) in futs.into_iter().enumerate() {
        let v = cx.value(f, &format!("square({i})"))?;
        ensure!(v == (i as u64) * (i as u64), "square({i}) returned {v}");
    }
    Ok(())
}

fn values_round_trip<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    let p = Payload {
        name: "héllo".into(),
        bytes: vec![0, 1, 254, 255],
        maybe: Some(-5),
        shape: Shape::Rect { w: 3, h: 4 },
        nested: vec![(1, "a".into()), (65535, String::new())],
    };
    cx.step("transform a structured value");
    let got = cx.value(cx.sub(tasks::transform, p.clone())?, "transform")?;
    let want = tasks::transform(p);
    ensure!(got == want, "transform returned {got:?}, expected {want:?}");
    cx.step("other shapes");
    for shape in [Shape::Empty, Shape::Circle(1.5)] {
        let p = Payload {
            name: String::new(),
            bytes: Vec::new(),
            maybe: None,
            shape,
            nested: Vec::new(),
        };
        let got = cx.value(cx.sub(tasks::transform, p.clone())?, "transform")?;
        ensure!(
            got == tasks::transform(p.clone()),
            "transform({p:?}) returned {got:?}"
        );
    }
    cx.step("a large value");
    let big: Vec<u8> = (0..(1usize << 20)).map(|i| (i % 251) as u8).collect();
    let p = Payload {
        name: "big".into(),
        bytes: big,
        maybe: None,
        shape: Shape::Empty,
        nested: Vec::new(),
    };
    let got = cx.value(cx.sub(tasks::transform, p.clone())?, "transform(1 MiB)")?;
    ensure!(
        got == tasks::transform(p),
        "1 MiB payload came back different"
    );
    Ok(())
}

fn remote_error_chain<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("fail_odd(4) is Ok");
    let ok = cx.value(cx.sub(tasks::fail_odd, 4u64)?, "fail_odd(4)")?;
    ensure!(ok == Ok(4), "fail_odd(4) returned {ok:?}");
    cx.step("fail_odd(3) is a chained error");
    let err = cx.value(cx.sub(tasks::fail_odd, 3u64)?, "fail_odd(3)")?;
    let Err(e) = err else {
        return Err(format!("fail_odd(3) returned {err:?}"));
    };
    ensure!(
        e.message().contains("/etc/pool/3.toml"),
        "outer message is {:?}",
        e.message()
    );
    ensure!(
        e.type_name().contains("ConfigError"),
        "outer type name is {:?}",
        e.type_name()
    );
    let src = std::error::Error::source(&e).ok_or("the error lost its source()")?;
    ensure!(
        src.to_string().contains("no such file"),
        "source says {src}"
    );
    ensure!(
        src.source().is_none(),
        "the chain is longer than built: {:?}",
        src.source()
    );
    Ok(())
}

fn parallel_up_to_max_workers<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    let n = cx.workers() as u32;
    cx.step(format!("{n} gate tasks must all be running at once"));
    let futs: Vec<_> = (0..n)
        .map(|i| cx.sub(tasks::gate, cx.gate_arg(i)))
        .collect::<Result<_, _>>()?;
    cx.wait_started(0..n)?;
    let s = cx.exec.stats();
    ensure!(
        s.workers <= cx.workers(),
        "{} workers for max_workers {}",
        s.workers,
        cx.workers()
    );
    ensure!(
        s.busy == cx.workers(),
        "busy {} while {n} tasks are held running",
        s.busy
    );
    cx.step("one more must not run while all workers are held");
    let extra = cx.sub(tasks::gate, cx.gate_arg(n))?;
    ensure!(
        extra.state() == State::Pending,
        "a task beyond max_workers is {:?}",
        extra.state()
    );
    cx.release_all();
    for (i, f) in futs.into_iter().enumerate() {
        let v = cx.value(f, &format!("gate {i}"))?;
        ensure!(v == i as u32, "gate {i} returned {v}");
    }
    let v = cx.value(extra, "extra gate")?;
    ensure!(v == n, "extra gate returned {v}");
    Ok(())
}

fn map_ordered<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    let want: Vec<u64> = (0..300).map(tasks::square).collect();
    for chunk in [ChunkSize::Fixed(1), ChunkSize::Fixed(7), ChunkSize::Auto] {
        cx.step(format!("map square, chunk {chunk:?}"));
        let got: Result<Vec<u64>, _> = cx
            .exec
            .map_fn(
                tasks::square,
                0..300u64,
                MapOptions::default().chunk_size(chunk),
            )
            .collect();
        let got = got.map_err(|e| format!("map with {chunk:?} failed: {e}"))?;
        ensure!(
            got == want,
            "map with {chunk:?} returned {} items, out of order or wrong",
            got.len()
        );
    }
    cx.step("map where later items finish first, lookahead 3");
    let got: Result<Vec<u64>, _> = cx
        .exec
        .map_fn(
            tasks::slow_reverse,
            0..48u64,
            MapOptions::default()
                .chunk_size(ChunkSize::Fixed(1))
                .lookahead(3),
        )
        .collect();
    let got = got.map_err(|e| e.to_string())?;
    ensure!(
        got == (0..48).collect::<Vec<u64>>(),
        "reverse-finishing map came back as {got:?}"
    );
    cx.step("map of nothing");
    let got: Vec<_> = cx
        .exec
        .map_fn(tasks::square, Vec::<u64>::new(), MapOptions::default())
        .collect();
    ensure!(got.is_empty(), "empty map yielded {} items", got.len());
    Ok(())
}

fn map_lazy_bounded<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("map over an endless iterator, take 20");
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let endless = (0u64..).inspect(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    let lookahead = 4;
    let it = cx.exec.map_fn(
        tasks::square,
        endless,
        MapOptions::default()
            .chunk_size(ChunkSize::Fixed(2))
            .lookahead(lookahead),
    );
    let got: Vec<u64> = it
        .take(20)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    ensure!(
        got == (0..20).map(tasks::square).collect::<Vec<_>>(),
        "endless map gave {got:?}"
    );
    let n = pulled.load(Ordering::Relaxed);
    // 20 yielded + at most `lookahead` chunks of 2 in flight + one chunk being filled.
    let limit = 20 + 2 * lookahead + 2;
    ensure!(
        n <= limit,
        "map pulled {n} items from the input to yield 20 (limit {limit}): not lazy"
    );
    Ok(())
}

fn map_unordered_complete<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    for chunk in [ChunkSize::Fixed(1), ChunkSize::Fixed(5), ChunkSize::Auto] {
        cx.step(format!("map_unordered chunk {chunk:?}"));
        let got: Result<Vec<u64>, _> = cx
            .exec
            .map_fn(
                tasks::slow_reverse,
                0..64u64,
                MapOptions::default().ordered(false).chunk_size(chunk),
            )
            .collect();
        let mut got = got.map_err(|e| e.to_string())?;
        got.sort_unstable();
        ensure!(
            got == (0..64).collect::<Vec<u64>>(),
            "unordered map with {chunk:?} lost or duplicated items: {got:?}"
        );
    }
    Ok(())
}

fn map_all_values_and_errors<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("map_all of squares");
    let got = cx
        .exec
        .map_all_fn(tasks::square, 0..1000u64)
        .map_err(|e| e.to_string())?;
    ensure!(
        got == (0..1000).map(tasks::square).collect::<Vec<_>>(),
        "map_all returned wrong values"
    );
    cx.step("map_all with a panicking item");
    match cx.exec.map_all_fn(tasks::panic_on_13, 0..40u64) {
        Err(TaskError::Panicked(p)) => {
            ensure!(
                p.message.contains("unlucky"),
                "map_all panic message is {:?}",
                p.message
            )
        }
        other => return Err(format!("map_all with a panicking item returned {other:?}")),
    }
    cx.step("the executor still serves after that");
    let v = cx.value(cx.sub(tasks::square, 3u64)?, "square after map_all error")?;
    ensure!(v == 9, "square(3) = {v}");
    Ok(())
}

fn map_item_panic<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("ordered map, chunk 1, item 13 panics");
    let got: Vec<Result<u64, TaskError>> = cx
        .exec
        .map_fn(
            tasks::panic_on_13,
            0..30u64,
            MapOptions::default().chunk_size(ChunkSize::Fixed(1)),
        )
        .collect();
    ensure!(
        got.len() == 30,
        "map yielded {} items for 30 inputs",
        got.len()
    );
    for (i, r) in got.iter().enumerate() {
        let i = i as u64;
        match r {
            Ok(v) if i != tasks::PANIC_ITEM && *v == i + 1 => {}
            Err(TaskError::Panicked(_)) if i == tasks::PANIC_ITEM => {}
            other => return Err(format!("item {i} yielded {other:?}")),
        }
    }
    Ok(())
}

fn map_timeout<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("map with a per-chunk timeout; one item runs past it");
    let items = vec![0u64, 1, 1500, 2, 0];
    let got: Vec<Result<u64, TaskError>> = cx
        .exec
        .map_fn(
            tasks::sleep_ms,
            items.clone(),
            MapOptions::default()
                .chunk_size(ChunkSize::Fixed(1))
                .timeout(Duration::from_millis(150)),
        )
        .collect();
    ensure!(
        got.len() == items.len(),
        "map yielded {} items for {}",
        got.len(),
        items.len()
    );
    for (x, r) in items.iter().zip(&got) {
        match r {
            Ok(v) if *x != 1500 && v == x => {}
            Err(TaskError::TimedOut { .. }) if *x == 1500 => {}
            other => {
                return Err(format!(
                    "sleep_ms({x}) with a 150 ms timeout yielded {other:?}"
                ));
            }
        }
    }
    Ok(())
}

fn panic_is_data<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    let n = cx.workers() * 3;
    cx.step(format!("{n} panicking tasks"));
    for i in 0..n {
        let f = cx.sub(tasks::panic_with, format!("boom {i}"))?;
        match cx.resolve(f, "panic_with")? {
            Err(TaskError::Panicked(p)) => {
                ensure!(
                    p.message.contains(&format!("boom {i}")),
                    "panic message is {:?}",
                    p.message
                );
                ensure!(
                    p.location
                        .as_deref()
                        .is_some_and(|l| l.contains("tasks.rs")),
                    "panic location is {:?}",
                    p.location
                );
            }
            other => return Err(format!("a panicking task resolved as {other:?}")),
        }
    }
    cx.step("the workers survived the panics and still serve");
    let v = cx.value(cx.sub(tasks::square, 12u64)?, "square after panics")?;
    ensure!(v == 144, "square(12) = {v}");
    let s = cx.exec.stats();
    ensure!(
        s.died == 0 && s.replaced == 0,
        "panics killed or replaced workers: {s:?}"
    );
    Ok(())
}

fn spawn_with_idle_worker<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("warm up: one task, then wait until one worker is idle");
    let v = cx.value(cx.sub(tasks::square, 2u64)?, "warm-up")?;
    ensure!(v == 4, "square(2) = {v}");
    let mut last = cx.exec.stats();
    poll_until(cx.opts.bound, || {
        last = cx.exec.stats();
        last.busy == 0 && last.idle >= 1
    })
    .map_err(|_| format!("no idle worker after the warm-up: {last:?}"))?;
    let w = cx.workers() as u32;
    cx.step(format!(
        "{w} gate tasks back to back must all run at once (max_workers {w})"
    ));
    let futs: Vec<_> = (0..w)
        .map(|i| cx.sub(tasks::gate, cx.gate_arg(i)))
        .collect::<Result<_, _>>()?;
    cx.wait_started(0..w)?;
    cx.release_all();
    for f in futs {
        cx.value(f, "gate")?;
    }
    Ok(())
}

fn sub_on<E: Target, F: TaskFn<A, R>, A: Value, R: Value>(
    exec: &E,
    f: F,
    arg: A,
) -> Result<Future<R>, String> {
    exec.call(f, arg)
        .map_err(|e| format!("submit refused: {e}"))
}

/// Occupy every worker with a gate task (ids `0..workers`) and wait until all run.
fn occupy<E: Target>(cx: &Ctx<E>) -> Result<Vec<Future<u32>>, String> {
    let w = cx.workers() as u32;
    let futs: Vec<_> = (0..w)
        .map(|i| cx.sub(tasks::gate, cx.gate_arg(i)))
        .collect::<Result<_, _>>()?;
    cx.wait_started(0..w)?;
    Ok(futs)
}

/// Submit `n` `mark` tasks with ids starting at 1000.
fn pending_marks<E: Target>(cx: &Ctx<E>, n: u32) -> Result<Vec<Future<u32>>, String> {
    (1000..1000 + n)
        .map(|i| cx.sub(tasks::mark, cx.gate_arg(i)))
        .collect::<Result<_, _>>()
}

fn cancel_pending<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("occupy every worker");
    let running = occupy(cx)?;
    cx.step("queue 6 tasks and cancel 3 of them");
    let pending = pending_marks(cx, 6)?;
    for (i, f) in pending.iter().enumerate() {
        ensure!(
            f.state() == State::Pending,
            "queued task {i} is {:?}",
            f.state()
        );
    }
    for f in pending.iter().step_by(2) {
        ensure!(f.cancel(), "cancel() of a pending task returned false");
        ensure!(f.is_cancelled(), "cancelled task is {:?}", f.state());
        ensure!(!f.cancel(), "a second cancel() returned true");
    }
    cx.step("cancel() of a running task");
    ensure!(
        !running[0].cancel(),
        "cancel() of a running task returned true"
    );
    ensure!(
        running[0].is_running(),
        "after a refused cancel the task is {:?}",
        running[0].state()
    );
    cx.release_all();
    cx.step("collect");
    for f in running {
        cx.value(f, "gate")?;
    }
    let mut cancelled_ids = Vec::new();
    for (k, f) in pending.into_iter().enumerate() {
        let id = 1000 + k as u32;
        let r = cx.resolve(f, "pending mark")?;
        if k % 2 == 0 {
            ensure!(
                r == Err(TaskError::Cancelled),
                "cancelled task {id} resolved as {r:?}"
            );
            cancelled_ids.push(id);
        } else {
            ensure!(r == Ok(id), "kept task {id} resolved as {r:?}");
            ensure!(
                cx.has("ran", id),
                "kept task {id} resolved but left no mark"
            );
        }
    }
    cx.step("cancelled tasks never ran (checked after the pool drained)");
    let fence = cx.value(cx.sub(tasks::square, 2u64)?, "fence")?;
    ensure!(fence == 4, "fence square(2) = {fence}");
    for id in cancelled_ids {
        ensure!(!cx.has("ran", id), "cancelled task {id} ran anyway");
    }
    cx.step("cancel() of a finished task");
    let f = cx.sub(tasks::square, 5u64)?;
    ensure!(f.wait_timeout(cx.opts.bound), "square(5) did not finish");
    ensure!(!f.cancel(), "cancel() of a finished task returned true");
    ensure!(cx.value(f, "square(5)")? == 25, "square(5) wrong");
    Ok(())
}

fn future_states_and_timing<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("occupy every worker; one more is Pending");
    let running = occupy(cx)?;
    let w = cx.workers() as u32;
    let queued = cx
        .exec
        .submit_fn(
            tasks::gate,
            cx.gate_arg(w),
            SubmitOptions::new().timing(true),
        )
        .map_err(|e| e.to_string())?;
    ensure!(
        state_of(&queued) == State::Pending,
        "queued task is {:?}",
        queued.state()
    );
    ensure!(
        !queued.is_done() && !queued.is_running(),
        "queued predicates wrong"
    );
    for f in &running {
        ensure!(f.is_running(), "held task is {:?}", f.state());
    }
    cx.step("release the held tasks; the queued one starts");
    for i in 0..w {
        cx.release(i);
    }
    cx.wait_started([w])?;
    poll_until(cx.opts.bound, || queued.state() != State::Pending).map_err(|_| {
        "the queued task started (its file exists) but its future stayed Pending".to_owned()
    })?;
    ensure!(
        matches!(queued.state(), State::Running),
        "the started, unreleased task is {:?}",
        queued.state()
    );
    cx.release(w);
    ensure!(
        queued.wait_timeout(cx.opts.bound),
        "the released task did not finish"
    );
    ensure!(
        queued.state() == State::Done && queued.is_done(),
        "finished task is {:?}",
        queued.state()
    );
    let t = queued.timing();
    ensure!(
        t.queued_at.is_some() && t.started_at.is_some() && t.finished_at.is_some(),
        "timing incomplete: {t:?}"
    );
    ensure!(
        t.pending().is_some() && t.running().is_some(),
        "timing durations missing: {t:?}"
    );
    ensure!(
        t.queued_at <= t.started_at && t.started_at <= t.finished_at,
        "timing out of order: {t:?}"
    );
    let mut queued = queued;
    let r = queued.try_result();
    ensure!(r == Some(Ok(w)), "try_result gave {r:?}");
    for f in running {
        cx.value(f, "gate")?;
    }
    cx.step("a failed task is Failed");
    let f = cx.sub(tasks::panic_with, "x".to_owned())?;
    ensure!(
        f.wait_timeout(cx.opts.bound),
        "panicking task did not finish"
    );
    ensure!(
        f.state() == State::Failed,
        "panicked task is {:?}",
        f.state()
    );
    Ok(())
}

fn on_done_callbacks<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    let (tx, rx) = mpsc::channel::<(u32, String)>();
    cx.step("callback registered before completion");
    let held = cx.sub(tasks::gate, cx.gate_arg(0))?;
    cx.wait_started([0])?;
    let t = tx.clone();
    held.on_done(move |r| {
        let _ = t.send((1, format!("{r:?}")));
    });
    cx.step("a panicking callback, then another on the same future");
    let panics_before = callback_panics();
    held.on_done(|_| panic!("callback panics on purpose"));
    let t = tx.clone();
    held.on_done(move |r| {
        let _ = t.send((2, format!("{r:?}")));
    });
    cx.release(0);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let got = rx
            .recv_timeout(cx.opts.bound)
            .map_err(|_| format!("callbacks did not run within the bound; saw {seen:?}"))?;
        seen.push(got);
    }
    seen.sort();
    ensure!(
        seen == vec![(1, "Ok(0)".to_owned()), (2, "Ok(0)".to_owned())],
        "callbacks saw {seen:?}"
    );
    poll_until(cx.opts.bound, || callback_panics() > panics_before)
        .map_err(|_| "the panicking callback was not counted in callback_panics()".to_owned())?;
    cx.step("callback registered after completion runs at once, on this thread");
    ensure!(held.wait_timeout(cx.opts.bound), "held task not done");
    let here = std::thread::current().id();
    let t = tx.clone();
    held.on_done(move |r| {
        let _ = t.send((3, format!("{r:?} {}", std::thread::current().id() == here)));
    });
    let got = rx
        .try_recv()
        .map_err(|_| "a callback on a finished future did not run at once".to_owned())?;
    ensure!(
        got == (3, "Ok(0) true".to_owned()),
        "late callback saw {got:?}"
    );
    cx.step("callback of a failing task sees the error");
    let f = cx.sub(tasks::panic_with, "cb".to_owned())?;
    let t = tx.clone();
    f.on_done(move |r| {
        let _ = t.send((4, format!("{}", matches!(r, Err(TaskError::Panicked(_))))));
    });
    let got = rx
        .recv_timeout(cx.opts.bound)
        .map_err(|_| "error callback did not run".to_owned())?;
    ensure!(got == (4, "true".to_owned()), "error callback saw {got:?}");
    cx.step("the pool still serves after a panicking callback");
    let v = cx.value(cx.sub(tasks::square, 6u64)?, "square after callback panic")?;
    ensure!(v == 36, "square(6) = {v}");
    drop(held);
    Ok(())
}

fn per_call_timeout<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("sleep 1500 ms with a 100 ms timeout");
    let limit = Duration::from_millis(100);
    let slow = cx
        .exec
        .submit_fn(
            tasks::sleep_ms,
            1500u64,
            SubmitOptions::new().timeout(limit).label("slow one"),
        )
        .map_err(|e| e.to_string())?;
    let quick = cx
        .exec
        .submit_fn(
            tasks::square,
            9u64,
            SubmitOptions::new().timeout(Duration::from_secs(30)),
        )
        .map_err(|e| e.to_string())?;
    match cx.resolve(slow, "slow task")? {
        Err(TaskError::TimedOut { after, task, .. }) => {
            ensure!(
                after == limit,
                "TimedOut says after {after:?}, the limit was {limit:?}"
            );
            ensure!(
                task.contains("slow one"),
                "TimedOut names the task {task:?}, label was \"slow one\""
            );
        }
        other => return Err(format!("a task past its timeout resolved as {other:?}")),
    }
    ensure!(cx.value(quick, "bystander")? == 81, "bystander wrong");
    cx.step("the pool serves the next task");
    let v = cx.value(cx.sub(tasks::square, 4u64)?, "after timeout")?;
    ensure!(v == 16, "square(4) = {v}");
    cx.step("a task within its timeout is not affected");
    let f = cx
        .exec
        .submit_fn(
            tasks::sleep_ms,
            1u64,
            SubmitOptions::new().timeout(Duration::from_secs(30)),
        )
        .map_err(|e| e.to_string())?;
    ensure!(cx.value(f, "within timeout")? == 1, "sleep_ms(1) wrong");
    Ok(())
}

/// `wait` with no timeout, on a helper thread, bounded: a missed wake-up shows as a hang.
fn wait_unbounded(
    futs: &Arc<Vec<Future<u32>>>,
    when: ReturnWhen,
    bound: Duration,
) -> Result<pool_core::WaitResult, String> {
    let f = Arc::clone(futs);
    bounded(bound, move || wait(&f, when, None)).ok_or_else(|| {
        format!(
            "wait({when:?}, no timeout) did not return within {bound:?} although it should have"
        )
    })
}

fn wait_functions<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("FirstCompleted: a quick task and a held one");
    let held = cx.sub(tasks::gate, cx.gate_arg(0))?;
    cx.wait_started([0])?;
    let quick = cx.sub(tasks::gate, cx.gate_arg(1))?;
    let futs = Arc::new(vec![held, quick]);
    let opener = {
        let path = cx.dir.join("release-1");
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            let _ = std::fs::write(path, b"");
        })
    };
    let r = wait_unbounded(&futs, ReturnWhen::FirstCompleted, cx.opts.bound)?;
    let _ = opener.join();
    ensure!(
        r.done == vec![1] && r.not_done == vec![0],
        "FirstCompleted gave {r:?}"
    );
    cx.step("a timeout returns with the unfinished ones");
    let r = wait(
        &futs,
        ReturnWhen::AllCompleted,
        Some(Duration::from_millis(20)),
    );
    ensure!(
        r.not_done == vec![0],
        "AllCompleted with a short timeout gave {r:?}"
    );
    cx.step("AllCompleted");
    cx.release(0);
    let r = wait_unbounded(&futs, ReturnWhen::AllCompleted, cx.opts.bound)?;
    ensure!(
        r.done == vec![0, 1] && r.not_done.is_empty(),
        "AllCompleted gave {r:?}"
    );
    cx.step("FirstError: a failure returns before the held task");
    let held = cx.sub(tasks::gate, cx.gate_arg(2))?;
    cx.wait_started([2])?;
    let bad = cx.sub(tasks::panic_with, "fe".to_owned())?;
    let futs2 = Arc::new(vec![held, bad]);
    let r = wait_unbounded(&futs2, ReturnWhen::FirstError, cx.opts.bound)?;
    ensure!(
        r.done == vec![1] && r.not_done == vec![0],
        "FirstError gave {r:?}"
    );
    cx.release(2);
    let r = wait_unbounded(&futs2, ReturnWhen::AllCompleted, cx.opts.bound)?;
    ensure!(
        r.not_done.is_empty(),
        "AllCompleted after release gave {r:?}"
    );
    Ok(())
}

fn as_completed_each_once<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("as_completed over 20 tasks finishing out of order");
    let futs: Vec<_> = (0..20u64)
        .map(|i| cx.sub(tasks::slow_reverse, i))
        .collect::<Result<_, _>>()?;
    let mut seen = BTreeSet::new();
    let deadline = std::time::Instant::now() + cx.opts.bound;
    for (i, r) in as_completed(futs).with_deadline(deadline) {
        ensure!(r == Ok(i as u64), "as_completed gave ({i}, {r:?})");
        ensure!(seen.insert(i), "as_completed yielded index {i} twice");
    }
    ensure!(
        seen.len() == 20,
        "as_completed yielded {} of 20 within the bound",
        seen.len()
    );
    cx.step("as_completed_ordered keeps submission order");
    let futs: Vec<_> = (0..20u64)
        .map(|i| cx.sub(tasks::slow_reverse, i))
        .collect::<Result<_, _>>()?;
    let order: Vec<usize> = as_completed_ordered(futs)
        .with_deadline(deadline)
        .map(|(i, _)| i)
        .collect();
    ensure!(
        order == (0..20).collect::<Vec<_>>(),
        "as_completed_ordered gave {order:?}"
    );
    Ok(())
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal `block_on` with a deadline: the suite must not depend on an async runtime.
fn block_on<F: std::future::Future + Unpin>(mut f: F, bound: Duration) -> Option<F::Output> {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let until = std::time::Instant::now() + bound;
    loop {
        if let Poll::Ready(v) = std::pin::Pin::new(&mut f).poll(&mut cx) {
            return Some(v);
        }
        let now = std::time::Instant::now();
        if now >= until {
            return None;
        }
        std::thread::park_timeout(until - now);
    }
}

fn await_future<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("await a held task, released later");
    let f = cx.sub(tasks::gate, cx.gate_arg(0))?;
    cx.wait_started([0])?;
    let dir_release = cx.dir.join("release-0");
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let _ = std::fs::write(dir_release, b"");
    });
    let r = block_on(f, cx.opts.bound)
        .ok_or("awaiting the future did not complete within the bound")?;
    let _ = opener.join();
    ensure!(r == Ok(0), "awaited {r:?}");
    cx.step("await a failing task");
    let f = cx.sub(tasks::panic_with, "aw".to_owned())?;
    let r = block_on(f, cx.opts.bound).ok_or("awaiting a failing task did not complete")?;
    ensure!(matches!(r, Err(TaskError::Panicked(_))), "awaited {r:?}");
    Ok(())
}

fn kill_running<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("kill a running task");
    let f = cx.sub(tasks::gate, cx.gate_arg(0))?;
    cx.wait_started([0])?;
    ensure!(f.kill(), "kill() of a running task returned false");
    let r = cx.resolve(f, "killed task")?;
    ensure!(
        r == Err(TaskError::Cancelled),
        "a killed task resolved as {r:?}"
    );
    ensure!(!cx.has("finished", 0), "the killed task went on to finish");
    cx.step("the pool serves the next task");
    let v = cx.value(cx.sub(tasks::square, 11u64)?, "after kill")?;
    ensure!(v == 121, "square(11) = {v}");
    Ok(())
}

fn shutdown_wait<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    let n = cx.workers() as u64 * 3;
    cx.step(format!("{n} short tasks then shutdown(Wait)"));
    let futs: Vec<_> = (0..n)
        .map(|i| cx.sub(tasks::sleep_ms, 20 + i))
        .collect::<Result<_, _>>()?;
    let report = bounded(cx.opts.bound, {
        let e = Arc::clone(&cx.exec);
        move || e.shutdown(Shutdown::Wait)
    })
    .ok_or("shutdown(Wait) did not return within the bound")?;
    ensure!(
        report.cancelled == 0,
        "shutdown(Wait) cancelled {} tasks",
        report.cancelled
    );
    for (i, f) in futs.into_iter().enumerate() {
        ensure!(
            f.is_done(),
            "task {i} not finished when shutdown(Wait) returned: {:?}",
            f.state()
        );
        ensure!(
            cx.value(f, "task under Wait")? == 20 + i as u64,
            "task {i} wrong value"
        );
    }
    cx.step("submit after shutdown is refused and hands the task back");
    match cx.exec.call(tasks::square, 1u64) {
        Ok(f) => {
            return Err(format!(
                "submit after shutdown was accepted ({:?})",
                f.state()
            ));
        }
        Err(e) => {
            ensure!(
                e.is_shutdown(),
                "refusal after shutdown is {e}, not Shutdown"
            );
            let task = e
                .into_task()
                .ok_or("the refused task was not handed back")?;
            ensure!(task.arg == 1, "the handed-back task carries {}", task.arg);
        }
    }
    cx.step("a second shutdown returns");
    bounded(cx.opts.bound, {
        let e = Arc::clone(&cx.exec);
        move || e.shutdown(Shutdown::Wait)
    })
    .ok_or("a second shutdown did not return")?;
    Ok(())
}

fn bounded<T: Send + 'static>(
    bound: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(bound).ok()
}

fn shutdown_cancel_pending<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    shutdown_with_pending(cx, Shutdown::CancelPending)
}

fn shutdown_kill<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    shutdown_with_pending(cx, Shutdown::Kill)
}

fn shutdown_with_pending<E: Target>(cx: &Ctx<E>, mode: Shutdown) -> Result<(), String> {
    cx.step("occupy every worker, queue 5");
    let running = occupy(cx)?;
    let pending = pending_marks(cx, 5)?;
    cx.step(format!("shutdown({mode:?}) on another thread"));
    let (tx, rx) = mpsc::channel();
    let e = Arc::clone(&cx.exec);
    std::thread::spawn(move || {
        let _ = tx.send(e.shutdown(mode));
    });
    cx.step("pending tasks resolve Cancelled while the running ones still run");
    for (k, f) in pending.iter().enumerate() {
        ensure!(
            f.wait_timeout(cx.opts.bound),
            "pending task {k} not resolved within the bound after shutdown({mode:?}): {:?}",
            f.state()
        );
    }
    let kills = mode == Shutdown::Kill && cx.opts.kill;
    if !kills {
        for (i, f) in running.iter().enumerate() {
            ensure!(
                f.is_running(),
                "held task {i} is {:?} during shutdown({mode:?})",
                f.state()
            );
        }
        cx.release_all();
    }
    let report = rx
        .recv_timeout(cx.opts.bound)
        .map_err(|_| format!("shutdown({mode:?}) did not return within the bound"))?;
    ensure!(
        report.cancelled == 5,
        "report.cancelled = {} for 5 pending tasks ({report:?})",
        report.cancelled
    );
    for (k, f) in pending.into_iter().enumerate() {
        let r = cx.resolve(f, "pending")?;
        ensure!(
            r == Err(TaskError::Cancelled),
            "pending task {k} resolved as {r:?}"
        );
        ensure!(
            !cx.has("ran", 1000 + k as u32),
            "pending task {k} ran despite shutdown({mode:?})"
        );
    }
    for (i, f) in running.into_iter().enumerate() {
        let r = cx.resolve(f, "running")?;
        if kills {
            ensure!(
                r.is_err(),
                "running task {i} survived shutdown(Kill): {r:?}"
            );
        } else {
            ensure!(
                r == Ok(i as u32),
                "running task {i} resolved as {r:?} under shutdown({mode:?})"
            );
        }
    }
    if kills {
        ensure!(
            report.killed == cx.workers(),
            "report.killed = {} with {} held tasks",
            report.killed,
            cx.workers()
        );
    }
    ensure!(
        report.unfinished_workers == 0,
        "shutdown left {} workers unfinished",
        report.unfinished_workers
    );
    let s = cx.exec.stats();
    ensure!(
        s.workers == 0,
        "after shutdown the stats show {} workers",
        s.workers
    );
    Ok(())
}

fn stats_consistent<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    let s0 = cx.exec.stats();
    ensure!(
        s0.submitted == 0 && s0.completed == 0,
        "a fresh executor has stats {s0:?}"
    );
    cx.step("10 ok, 3 panics, 2 cancelled behind held workers");
    let held = occupy(cx)?;
    let cancelled = pending_marks(cx, 2)?;
    for f in &cancelled {
        ensure!(f.cancel(), "cancel of a queued task failed");
    }
    let during = cx.exec.stats();
    ensure!(
        during.busy == cx.workers(),
        "busy = {} with every worker held ({during:?})",
        during.busy
    );
    ensure!(
        during.workers <= cx.workers(),
        "workers {} > max ({during:?})",
        during.workers
    );
    cx.release_all();
    let oks: Vec<_> = (0..10u64)
        .map(|i| cx.sub(tasks::square, i))
        .collect::<Result<_, _>>()?;
    let bads: Vec<_> = (0..3)
        .map(|i| cx.sub(tasks::panic_with, format!("s{i}")))
        .collect::<Result<_, _>>()?;
    for f in held {
        cx.value(f, "held")?;
    }
    for f in oks {
        cx.value(f, "ok")?;
    }
    for f in bads {
        ensure!(cx.resolve(f, "bad")?.is_err(), "a panic succeeded");
    }
    for f in cancelled {
        ensure!(
            cx.resolve(f, "cancelled")? == Err(TaskError::Cancelled),
            "cancelled task not Cancelled"
        );
    }
    let w = cx.workers() as u64;
    let submitted = w + 2 + 10 + 3;
    cx.step("stats settle");
    let mut last = cx.exec.stats();
    let settled = poll_until(cx.opts.bound, || {
        last = cx.exec.stats();
        last.pending == 0
            && last.busy == 0
            && last.completed + last.failed + last.cancelled == last.submitted
    });
    ensure!(
        settled.is_ok(),
        "stats did not settle (pending 0, busy 0, completed + failed + cancelled = submitted): {last:?}"
    );
    let s = last;
    ensure!(
        s.submitted == submitted,
        "submitted = {}, expected {submitted} ({s:?})",
        s.submitted
    );
    ensure!(
        s.completed == w + 10,
        "completed = {}, expected {} ({s:?})",
        s.completed,
        w + 10
    );
    ensure!(s.failed == 3, "failed = {}, expected 3 ({s:?})", s.failed);
    ensure!(
        s.cancelled == 2,
        "cancelled = {}, expected 2 ({s:?})",
        s.cancelled
    );
    ensure!(
        s.workers <= cx.workers() && s.idle <= s.workers,
        "workers {} idle {} ({s:?})",
        s.workers,
        s.idle
    );
    ensure!(
        s.spawned >= 1 && s.spawned >= s.workers as u64,
        "spawned = {} ({s:?})",
        s.spawned
    );
    ensure!(
        s.executor_id == cx.exec.executor_id(),
        "stats executor_id {} != executor_id() {}",
        s.executor_id,
        cx.exec.executor_id()
    );
    ensure!(
        s.timed_out == 0 && s.died == 0,
        "unexpected timeouts or deaths: {s:?}"
    );
    Ok(())
}

fn drop_resolves_futures<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("build a second executor, hold its workers, queue 3, drop it");
    let exec = cx.fresh();
    let w = cx.workers() as u32;
    let running: Vec<_> = (0..w)
        .map(|i| sub_on(&exec, tasks::gate, cx.gate_arg(i)))
        .collect::<Result<_, _>>()?;
    cx.wait_started(0..w)?;
    let pending: Vec<_> = (0..3u32)
        .map(|i| sub_on(&exec, tasks::mark, cx.gate_arg(2000 + i)))
        .collect::<Result<_, _>>()?;
    let dropped = {
        let (tx, rx) = mpsc::channel();
        let cell = Arc::new(Mutex::new(Some(exec)));
        let c = Arc::clone(&cell);
        std::thread::spawn(move || {
            drop(c.lock().unwrap_or_else(|p| p.into_inner()).take());
            let _ = tx.send(());
        });
        rx
    };
    cx.step("queued futures resolve without a result");
    for (k, f) in pending.into_iter().enumerate() {
        let r = cx.resolve(f, "queued on a dropped executor")?;
        ensure!(
            matches!(r, Err(TaskError::Cancelled | TaskError::Shutdown)),
            "a queued task of a dropped executor resolved as {r:?}"
        );
        ensure!(
            !cx.has("ran", 2000 + k as u32),
            "a queued task ran after its executor was dropped"
        );
    }
    cx.release_all();
    for f in running {
        // Ok (let finish) or an error (killed): either way, resolved within the bound.
        let _ = cx.resolve(f, "running on a dropped executor")?;
    }
    dropped
        .recv_timeout(cx.opts.bound)
        .map_err(|_| "dropping the executor did not return within the bound".to_owned())?;
    Ok(())
}
