//! Checks on futures: states and timing, cancellation, `on_done` callbacks, `wait` /
//! `as_completed`, `.await`.

use std::collections::BTreeSet;
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use pool_core::{
    Future, ReturnWhen, State, SubmitOptions, TaskError, as_completed, as_completed_ordered,
    callback_panics, wait,
};

use super::{bounded, occupy, pending_marks};
use crate::conformance::tasks;
use crate::conformance::{Ctx, poll_until, state_of};
use crate::target::Target;

pub(super) fn cancel_pending<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
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

pub(super) fn future_states_and_timing<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("occupy every worker; one more is Pending");
    let running = occupy(cx)?;
    let w = cx.workers() as u32;
    let queued = cx
        .exec
        .submit_fn_with(
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

pub(super) fn on_done_callbacks<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
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

pub(super) fn wait_functions<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
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

pub(super) fn as_completed_each_once<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
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
pub(super) fn block_on<F: std::future::Future + Unpin>(
    mut f: F,
    bound: Duration,
) -> Option<F::Output> {
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

pub(super) fn await_future<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
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
