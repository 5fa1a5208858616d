//! The checks of the named suite ([`crate::conformance::named`]): those of the main suite
//! that apply to a task known by its name only, on any [`NamedTarget`].
//!
//! A named executor may keep its tasks anywhere (a queue on a server, workers on other
//! machines), so these checks assume only what the contract promises: at most
//! `Options::workers` tasks run at once, tasks start in the order they were submitted, and
//! the gate and mark files of a task are on this machine's file system (its workers share
//! it). Whether a task ran is read from its mark file after a [`fence`].

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use pool_core::{
    ExitReason, Future, ReturnWhen, Shutdown, ShutdownReport, State, SubmitErrorKind, TaskError,
    as_completed, wait,
};

use super::futures::block_on;
use super::{FIRST_MARK, bounded, marks_with, occupy_with};
use crate::conformance::named::{self as n, Unencodable};
use crate::conformance::tasks::{self, Payload, Shape};
use crate::conformance::{Check, Ctx, Need, poll_until};
use crate::target::NamedTarget;

pub(crate) fn all<E: NamedTarget>() -> Vec<Check<E>> {
    macro_rules! c {
        ($name:ident) => {
            Check {
                name: stringify!($name),
                need: Need::Nothing,
                run: $name::<E>,
            }
        };
    }
    vec![
        c!(named_results_of_several_types),
        c!(named_many_tasks_each_once),
        c!(named_await_future),
        c!(named_panic_is_data),
        c!(named_abort_is_worker_died),
        c!(named_unknown_name),
        c!(named_unencodable_argument),
        c!(named_cancel_pending),
        c!(named_running_task_not_cancellable),
        c!(named_submit_after_shutdown),
        c!(named_shutdown_wait),
        c!(named_shutdown_cancel_pending),
        c!(named_stats_counts),
    ]
}

/// Every worker held at a named gate (ids `0..workers`), all started.
fn occupy<E: NamedTarget>(cx: &Ctx<E>) -> Result<Vec<Future<u32>>, String> {
    occupy_with(cx, |arg| cx.named(n::GATE, arg))
}

/// `count` named mark tasks, ids from [`FIRST_MARK`].
fn marks<E: NamedTarget>(cx: &Ctx<E>, count: u32) -> Result<Vec<Future<u32>>, String> {
    marks_with(cx, count, |arg| cx.named(n::MARK, arg))
}

/// The ids of the gate tasks [`fence`] submits.
const FENCE: u32 = 500;

/// Wait until every task submitted before now has finished or will never run: `workers`
/// gate tasks are submitted and must all be running at once — since tasks start in the
/// order they were submitted and at most `workers` run at once, a task submitted earlier
/// that ever starts has finished by then. Then they are released and must return their ids.
fn fence<E: NamedTarget>(cx: &Ctx<E>) -> Result<(), String> {
    let w = cx.workers() as u32;
    let futs: Vec<Future<u32>> = (FENCE..FENCE + w)
        .map(|i| cx.named(n::GATE, cx.gate_arg(i)))
        .collect::<Result<_, _>>()?;
    cx.wait_started(FENCE..FENCE + w)?;
    for i in FENCE..FENCE + w {
        cx.release(i);
    }
    for (i, f) in (FENCE..).zip(futs) {
        let got = cx.value(f, &format!("fence gate {i}"))?;
        ensure!(got == i, "fence gate {i} returned {got}");
    }
    Ok(())
}

/// `square(x)` must come back right: the executor still serves.
fn serves<E: NamedTarget>(cx: &Ctx<E>, x: u64, after: &str) -> Result<(), String> {
    let got: u64 = cx.value(cx.named(n::SQUARE, x)?, &format!("square({x}) {after}"))?;
    ensure!(got == x * x, "square({x}) {after} returned {got}");
    Ok(())
}

pub(super) fn named_results_of_several_types<E: NamedTarget>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("a number");
    serves(cx, 7, "as the first task")?;
    cx.step("strings");
    for s in ["héllo, wörld ✓", "", "a\0b\nc"] {
        let got: String = cx.value(cx.named(n::ECHO_STRING, s.to_owned())?, "echo a string")?;
        ensure!(got == s, "echo of the string {s:?} returned {got:?}");
    }
    cx.step("bytes (empty, every value, 256 KiB)");
    let every: Vec<u8> = (0..=255).collect();
    let big: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
    for b in [Vec::new(), every, big] {
        let got: Vec<u8> = cx.value(cx.named(n::ECHO_BYTES, b.clone())?, "echo bytes")?;
        ensure!(
            got == b,
            "echo of {} bytes returned {} bytes{}",
            b.len(),
            got.len(),
            if got.len() == b.len() {
                " with different contents"
            } else {
                ""
            }
        );
    }
    cx.step("a struct of every shape serde has");
    for shape in [Shape::Empty, Shape::Circle(1.5), Shape::Rect { w: 3, h: 4 }] {
        let p = Payload {
            name: "héllo".into(),
            bytes: vec![0, 1, 254, 255],
            maybe: Some(-5),
            shape,
            nested: vec![(1, "a".into()), (65535, String::new())],
        };
        let want = tasks::transform(p.clone());
        let got: Payload = cx.value(cx.named(n::TRANSFORM, p.clone())?, "transform")?;
        ensure!(
            got == want,
            "transform({p:?}) returned {got:?}, expected {want:?}"
        );
    }
    Ok(())
}

pub(super) fn named_many_tasks_each_once<E: NamedTarget>(cx: &Ctx<E>) -> Result<(), String> {
    const N: usize = 300;
    cx.step(format!(
        "{N} squares with a callback each, through as_completed"
    ));
    let calls: Arc<Vec<AtomicU32>> = Arc::new((0..N).map(|_| AtomicU32::new(0)).collect());
    let mut futs = Vec::with_capacity(N);
    for i in 0..N {
        let f = cx.named::<u64, u64>(n::SQUARE, i as u64)?;
        let calls = Arc::clone(&calls);
        f.on_done(move |_| {
            calls[i].fetch_add(1, Ordering::SeqCst);
        });
        futs.push(f);
    }
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + cx.opts.bound;
    for (i, r) in as_completed(futs).with_deadline(deadline) {
        let x = i as u64;
        ensure!(r == Ok(x * x), "as_completed gave task {i} as {r:?}");
        ensure!(seen.insert(i), "as_completed yielded task {i} twice");
    }
    ensure!(
        seen.len() == N,
        "as_completed yielded {} of {N} tasks within {:?}; missing (first 10): {:?}",
        seen.len(),
        cx.opts.bound,
        (0..N)
            .filter(|i| !seen.contains(i))
            .take(10)
            .collect::<Vec<_>>()
    );
    let twice: Vec<usize> = (0..N)
        .filter(|&i| calls[i].load(Ordering::SeqCst) != 1)
        .collect();
    ensure!(
        twice.is_empty(),
        "callbacks of tasks {twice:?} ran {:?} times, not once",
        twice
            .iter()
            .map(|&i| calls[i].load(Ordering::SeqCst))
            .collect::<Vec<_>>()
    );
    cx.step(format!("wait(AllCompleted) with no timeout over {N} more"));
    let futs: Arc<Vec<Future<u64>>> = Arc::new(
        (0..N as u64)
            .map(|i| cx.named(n::SQUARE, i + 1000))
            .collect::<Result<_, _>>()?,
    );
    let all = Arc::clone(&futs);
    let r = bounded(cx.opts.bound, move || {
        wait(&all, ReturnWhen::AllCompleted, None)
    })
    .ok_or_else(|| {
        format!(
            "wait(AllCompleted) did not return within {:?}; {} of {N} done",
            cx.opts.bound,
            futs.iter().filter(|f| f.is_done()).count()
        )
    })?;
    ensure!(
        r.done.len() == N && r.not_done.is_empty(),
        "wait(AllCompleted) returned {} done, not done: {:?}",
        r.done.len(),
        r.not_done
    );
    for (i, f) in (1000u64..).zip(futs.iter()) {
        let got = f.peek(|r| r.map(|r| r.copied().map_err(Clone::clone)));
        ensure!(
            got == Some(Ok(i * i)),
            "square({i}) after wait(AllCompleted) is {got:?}"
        );
    }
    if cx.workers() < 2 {
        return Ok(());
    }
    cx.step("wait(FirstCompleted): a held gate and a released one");
    let held = cx.named(n::GATE, cx.gate_arg(0))?;
    cx.wait_started([0])?;
    cx.release(1);
    let open = cx.named(n::GATE, cx.gate_arg(1))?;
    let pair: Arc<Vec<Future<u32>>> = Arc::new(vec![held, open]);
    let both = Arc::clone(&pair);
    let r = bounded(cx.opts.bound, move || {
        wait(&both, ReturnWhen::FirstCompleted, None)
    })
    .ok_or("wait(FirstCompleted) did not return although the released gate could finish")?;
    ensure!(
        r.done == vec![1] && r.not_done == vec![0],
        "wait(FirstCompleted) over a held gate and a released one gave {r:?}"
    );
    cx.release(0);
    let both = Arc::clone(&pair);
    let r = bounded(cx.opts.bound, move || {
        wait(&both, ReturnWhen::AllCompleted, None)
    })
    .ok_or("wait(AllCompleted) did not return after both gates were released")?;
    ensure!(
        r.not_done.is_empty(),
        "wait(AllCompleted) after both gates were released gave {r:?}"
    );
    Ok(())
}

pub(super) fn named_await_future<E: NamedTarget>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("await a held gate, released from another thread");
    let f = cx.named::<_, u32>(n::GATE, cx.gate_arg(0))?;
    cx.wait_started([0])?;
    let release = cx.dir.join("release-0");
    let opener = std::thread::spawn(move || {
        // Give the await a chance to park first; nothing depends on it.
        std::thread::sleep(Duration::from_millis(20));
        let _ = std::fs::write(release, b"");
    });
    let r = block_on(f, cx.opts.bound)
        .ok_or("awaiting the gate did not complete within the bound after its release")?;
    let _ = opener.join();
    ensure!(r == Ok(0), "awaiting the gate gave {r:?}");
    cx.step("await a square");
    let r = block_on(cx.named::<u64, u64>(n::SQUARE, 11)?, cx.opts.bound)
        .ok_or("awaiting square(11) did not complete within the bound")?;
    ensure!(r == Ok(121), "awaiting square(11) gave {r:?}");
    cx.step("await a panicking task");
    let r = block_on(
        cx.named::<_, u32>(n::PANIC, "awaited".to_owned())?,
        cx.opts.bound,
    )
    .ok_or("awaiting a panicking task did not complete within the bound")?;
    ensure!(
        matches!(&r, Err(TaskError::Panicked(p)) if p.message.contains("awaited")),
        "awaiting a panicking task gave {r:?}"
    );
    Ok(())
}

pub(super) fn named_panic_is_data<E: NamedTarget>(cx: &Ctx<E>) -> Result<(), String> {
    let count = cx.workers() * 2 + 1;
    cx.step(format!("{count} panicking tasks"));
    for i in 0..count {
        let msg = format!("named boom {i}");
        match cx.resolve(cx.named::<_, u32>(n::PANIC, msg.clone())?, "a panic")? {
            Err(TaskError::Panicked(p)) => {
                ensure!(
                    p.message.contains(&msg),
                    "the panic of {msg:?} came back with the message {:?}",
                    p.message
                );
                ensure!(
                    p.location
                        .as_deref()
                        .is_some_and(|l| l.contains("tasks.rs")),
                    "the panic of {msg:?} came back with the location {:?}",
                    p.location
                );
            }
            other => {
                return Err(format!(
                    "a task that panics with {msg:?} resolved as {other:?}"
                ));
            }
        }
    }
    cx.step("the executor still serves");
    serves(cx, 12, "after the panics")
}

pub(super) fn named_abort_is_worker_died<E: NamedTarget>(cx: &Ctx<E>) -> Result<(), String> {
    for round in 1..=2 {
        cx.step(format!("a task that aborts its process (round {round})"));
        match cx.resolve(cx.named::<u32, u32>(n::ABORT, round)?, "an abort")? {
            Err(TaskError::WorkerDied(d)) => {
                ensure!(
                    matches!(&d.exit, ExitReason::Signal { name, .. } if name == "SIGABRT"),
                    "an aborting task's worker died with {:?}, not SIGABRT ({d})",
                    d.exit
                );
                ensure!(
                    d.to_string().contains("SIGABRT"),
                    "the death report does not name the signal: {d}"
                );
            }
            other => return Err(format!("an aborting task resolved as {other:?}")),
        }
        cx.step(format!("the executor still serves (round {round})"));
        for x in 0..cx.workers() as u64 * 2 {
            serves(cx, x, "after an abort")?;
        }
    }
    Ok(())
}

pub(super) fn named_unknown_name<E: NamedTarget>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step(format!("submit to the name {:?}", n::UNKNOWN));
    match cx.exec.submit_named::<u64, u64>(n::UNKNOWN, 5) {
        Err(e) => {
            let text = e.to_string();
            ensure!(
                text.contains(n::UNKNOWN),
                "the refusal of an unknown name does not name it: {text}"
            );
            let back = e.into_task();
            ensure!(
                back == Some(5),
                "the refusal of an unknown name handed back {back:?}, not the argument 5"
            );
        }
        Ok(f) => match cx.resolve(f, "a task of an unknown name")? {
            Ok(v) => return Err(format!("a task of an unknown name returned {v}")),
            Err(e) => ensure!(
                e.to_string().contains(n::UNKNOWN),
                "a task of an unknown name failed without naming it: {e:?}"
            ),
        },
    }
    cx.step("the executor still serves");
    serves(cx, 4, "after an unknown name")
}

pub(super) fn named_unencodable_argument<E: NamedTarget>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("submit an argument whose Serialize fails");
    match cx
        .exec
        .submit_named::<Unencodable, u64>(n::SQUARE, Unencodable(7))
    {
        Ok(f) => {
            let r = cx.resolve(f, "a task whose argument cannot be encoded");
            return Err(format!(
                "an argument that cannot be encoded was accepted; its future: {r:?}"
            ));
        }
        Err(e) => {
            match e.kind() {
                SubmitErrorKind::Encode(c) => ensure!(
                    c.message.contains(Unencodable::MESSAGE),
                    "the encode failure does not carry the serializer's message: {c}"
                ),
                other => return Err(format!("the refusal is {other:?}, not Encode")),
            }
            let back = e.into_task();
            ensure!(
                back == Some(Unencodable(7)),
                "the refusal handed back {back:?}, not the argument"
            );
        }
    }
    cx.step("the executor still serves");
    serves(cx, 5, "after a refused argument")
}

pub(super) fn named_cancel_pending<E: NamedTarget>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("hold every worker at a gate");
    let held = occupy(cx)?;
    cx.step("queue 4 marks behind them; cancel the 1st and the 3rd");
    let queued = marks(cx, 4)?;
    for (k, f) in queued.iter().enumerate().step_by(2) {
        let id = FIRST_MARK + k as u32;
        ensure!(
            f.cancel(),
            "cancel() of queued task {id} returned false (state {:?})",
            f.state()
        );
        ensure!(f.is_cancelled(), "cancelled task {id} is {:?}", f.state());
        ensure!(!f.cancel(), "a second cancel() of task {id} returned true");
    }
    cx.step("open the gates");
    cx.release_all();
    for (i, f) in held.into_iter().enumerate() {
        let got = cx.value(f, &format!("gate {i}"))?;
        ensure!(got == i as u32, "gate {i} returned {got}");
    }
    let mut cancelled = Vec::new();
    for (k, f) in queued.into_iter().enumerate() {
        let id = FIRST_MARK + k as u32;
        let r = cx.resolve(f, &format!("mark {id}"))?;
        if k % 2 == 0 {
            ensure!(
                r == Err(TaskError::Cancelled),
                "cancelled task {id} resolved as {r:?}"
            );
            cancelled.push(id);
        } else {
            ensure!(r == Ok(id), "kept task {id} resolved as {r:?}");
            ensure!(
                cx.has("ran", id),
                "kept task {id} returned but left no mark"
            );
        }
    }
    cx.step("after a fence, the cancelled tasks never ran");
    fence(cx)?;
    let ran: Vec<u32> = cancelled
        .into_iter()
        .filter(|&id| cx.has("ran", id))
        .collect();
    ensure!(
        ran.is_empty(),
        "cancelled tasks {ran:?} ran anyway (their futures said Cancelled)"
    );
    Ok(())
}

pub(super) fn named_running_task_not_cancellable<E: NamedTarget>(
    cx: &Ctx<E>,
) -> Result<(), String> {
    cx.step("a gate task that has started");
    let f = cx.named::<_, u32>(n::GATE, cx.gate_arg(0))?;
    cx.wait_started([0])?;
    poll_until(cx.opts.bound, || f.state() != State::Pending).map_err(|_| {
        format!(
            "a task that has started (its gate file exists) still says {:?} after {:?}",
            f.state(),
            cx.opts.bound
        )
    })?;
    ensure!(
        f.state() == State::Running,
        "a task held at its gate is {:?}, not Running",
        f.state()
    );
    cx.step("cancel() of the running task");
    ensure!(
        !f.cancel(),
        "cancel() of a running task returned true (state now {:?}); it runs on regardless",
        f.state()
    );
    ensure!(
        f.is_running(),
        "after a refused cancel() the task is {:?}",
        f.state()
    );
    cx.release(0);
    let got = cx.value(f, "the gate after a refused cancel")?;
    ensure!(got == 0, "the gate returned {got}");
    Ok(())
}

pub(super) fn named_submit_after_shutdown<E: NamedTarget>(cx: &Ctx<E>) -> Result<(), String> {
    serves(cx, 2, "before the shutdown")?;
    cx.step("shutdown(Wait) of an idle executor");
    bounded(cx.opts.bound, {
        let e = Arc::clone(&cx.exec);
        move || e.shutdown(Shutdown::Wait)
    })
    .ok_or("shutdown(Wait) of an idle executor did not return within the bound")?;
    cx.step("submit after shutdown");
    let arg = "handed back".to_owned();
    match cx
        .exec
        .submit_named::<String, String>(n::ECHO_STRING, arg.clone())
    {
        Ok(f) => {
            let r = cx.resolve(f, "a task submitted after shutdown");
            return Err(format!(
                "a submit after shutdown was accepted; its future: {r:?}"
            ));
        }
        Err(e) => {
            ensure!(
                e.kind() == &SubmitErrorKind::Shutdown,
                "a submit after shutdown was refused with {:?}, not Shutdown",
                e.kind()
            );
            let back = e.into_task();
            ensure!(
                back.as_ref() == Some(&arg),
                "the refusal handed back {back:?}, not the argument"
            );
        }
    }
    cx.step("a second shutdown returns");
    bounded(cx.opts.bound, {
        let e = Arc::clone(&cx.exec);
        move || e.shutdown(Shutdown::CancelPending)
    })
    .ok_or("a second shutdown did not return within the bound")?;
    Ok(())
}

pub(super) fn named_shutdown_wait<E: NamedTarget>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("hold every worker at a gate, queue 3 marks");
    let held = occupy(cx)?;
    let queued = marks(cx, 3)?;
    cx.step("shutdown(Wait) on another thread");
    let stopping = Stopping::start(cx, Shutdown::Wait);
    let before_release = (|| {
        cx.step("wait until the shutdown has begun: a submit is refused");
        let probes = shutdown_begun(cx)?;
        cx.step("while the gates are closed, nothing has resolved");
        if let Some(report) = stopping.returned() {
            return Err(format!(
                "shutdown(Wait) returned while every worker was held at a gate: {report:?}"
            ));
        }
        for (k, f) in queued.iter().enumerate() {
            ensure!(
                !f.is_done(),
                "queued mark {} resolved during shutdown(Wait) before it could run: {:?}",
                FIRST_MARK + k as u32,
                f.state()
            );
        }
        Ok(probes)
    })();
    if before_release.is_ok() {
        // Otherwise the step that failed stays the one reported.
        cx.step("open the gates; shutdown(Wait) returns once everything ran");
    }
    cx.release_all();
    let report = stopping.report(cx, "after the gates opened");
    let probes = before_release?;
    let report = report?;
    ensure!(
        report.cancelled == 0,
        "shutdown(Wait) cancelled {} tasks ({report:?})",
        report.cancelled
    );
    for (i, f) in held.into_iter().enumerate() {
        ensure!(
            f.is_done(),
            "gate {i} is {:?} after shutdown(Wait) returned",
            f.state()
        );
        let got = cx.value(f, &format!("gate {i}"))?;
        ensure!(got == i as u32, "gate {i} returned {got}");
    }
    for (k, f) in queued.into_iter().enumerate() {
        let id = FIRST_MARK + k as u32;
        ensure!(
            f.is_done(),
            "mark {id} is {:?} after shutdown(Wait) returned",
            f.state()
        );
        let got = cx.value(f, &format!("mark {id}"))?;
        ensure!(got == id, "mark {id} returned {got}");
        ensure!(cx.has("ran", id), "mark {id} returned but left no mark");
    }
    for (x, f) in probes {
        let got = cx.value(
            f,
            &format!("square({x}), accepted just before shutdown(Wait)"),
        )?;
        ensure!(
            got == x * x,
            "square({x}), accepted just before shutdown(Wait), returned {got}"
        );
    }
    Ok(())
}

/// `shutdown(mode)` running on another thread. Once its report is received the thread's
/// handle on the executor is gone, so a check that waits for the report (also when it fails)
/// leaves the executor to be dropped where the runner drops it.
struct Stopping {
    mode: Shutdown,
    report: mpsc::Receiver<ShutdownReport>,
}

impl Stopping {
    fn start<E: NamedTarget>(cx: &Ctx<E>, mode: Shutdown) -> Self {
        let (tx, report) = mpsc::channel();
        let exec = Arc::clone(&cx.exec);
        std::thread::spawn(move || {
            let report = exec.shutdown(mode);
            drop(exec);
            let _ = tx.send(report);
        });
        Stopping { mode, report }
    }

    /// The report if the shutdown has returned.
    fn returned(&self) -> Option<ShutdownReport> {
        self.report.try_recv().ok()
    }

    /// The report, waited for (bounded); `when` says since when it is due.
    fn report<E: NamedTarget>(&self, cx: &Ctx<E>, when: &str) -> Result<ShutdownReport, String> {
        self.report.recv_timeout(cx.opts.bound).map_err(|_| {
            format!(
                "shutdown({:?}) did not return within {:?} {when}",
                self.mode, cx.opts.bound
            )
        })
    }
}

/// Submit squares until one is refused as shut down (bounded): the shutdown another thread
/// started has begun. Returns the squares that were accepted before, which it must treat as
/// any other task (their arguments: 100, 101, ...).
fn shutdown_begun<E: NamedTarget>(cx: &Ctx<E>) -> Result<Vec<(u64, Future<u64>)>, String> {
    let mut accepted = Vec::new();
    let mut refusal = None;
    let begun = poll_until(cx.opts.bound, || {
        let x = 100 + accepted.len() as u64;
        match cx.exec.submit_named::<u64, u64>(n::SQUARE, x) {
            Ok(f) => {
                accepted.push((x, f));
                false
            }
            Err(e) if e.is_shutdown() => true,
            Err(e) => {
                refusal = Some(e.to_string());
                false
            }
        }
    });
    match (begun, refusal) {
        (Ok(()), _) => Ok(accepted),
        (Err(()), Some(why)) => Err(format!(
            "a submit during the shutdown was refused, but not as shut down: {why}"
        )),
        (Err(()), None) => Err(format!(
            "submits were still accepted {:?} after shutdown was called ({} accepted)",
            cx.opts.bound,
            accepted.len()
        )),
    }
}

pub(super) fn named_shutdown_cancel_pending<E: NamedTarget>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("hold every worker at a gate, queue 5 marks");
    let held = occupy(cx)?;
    let queued = marks(cx, 5)?;
    cx.step("shutdown(CancelPending) on another thread");
    let stopping = Stopping::start(cx, Shutdown::CancelPending);
    let before_release = (|| {
        cx.step("the queued tasks resolve Cancelled while the gates are still closed");
        for (k, f) in queued.iter().enumerate() {
            let id = FIRST_MARK + k as u32;
            ensure!(
                f.wait_timeout(cx.opts.bound),
                "queued mark {id} did not resolve within {:?} of shutdown(CancelPending): {:?}",
                cx.opts.bound,
                f.state()
            );
        }
        for (i, f) in held.iter().enumerate() {
            ensure!(
                !f.is_done(),
                "gate {i}, held running, resolved during shutdown(CancelPending) as {}",
                f.peek(|r| format!("{r:?}"))
            );
        }
        Ok(())
    })();
    if before_release.is_ok() {
        // Otherwise the step that failed stays the one reported.
        cx.step("open the gates; the running tasks finish");
    }
    cx.release_all();
    let report = stopping.report(cx, "after the gates opened");
    before_release?;
    let report = report?;
    for (i, f) in held.into_iter().enumerate() {
        let r = cx.resolve(f, &format!("gate {i}"))?;
        ensure!(
            r == Ok(i as u32),
            "gate {i}, running during shutdown(CancelPending), resolved as {r:?}"
        );
    }
    let mut ran = Vec::new();
    for (k, f) in queued.into_iter().enumerate() {
        let id = FIRST_MARK + k as u32;
        let r = cx.resolve(f, &format!("mark {id}"))?;
        ensure!(
            r == Err(TaskError::Cancelled),
            "queued mark {id} resolved as {r:?} under shutdown(CancelPending)"
        );
        if cx.has("ran", id) {
            ran.push(id);
        }
    }
    ensure!(
        ran.is_empty(),
        "marks {ran:?}, cancelled by shutdown(CancelPending), ran anyway"
    );
    ensure!(
        report.cancelled == 5,
        "shutdown(CancelPending) reports {} cancelled for 5 queued tasks ({report:?})",
        report.cancelled
    );
    Ok(())
}

pub(super) fn named_stats_counts<E: NamedTarget>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("the stats of a fresh executor");
    let s0 = cx.exec.stats();
    ensure!(
        s0.submitted == 0 && s0.completed == 0 && s0.failed == 0,
        "a fresh executor has the stats {s0:?}"
    );
    cx.step("10 squares and 3 panics");
    let oks: Vec<Future<u64>> = (0..10u64)
        .map(|x| cx.named(n::SQUARE, x))
        .collect::<Result<_, _>>()?;
    let bads: Vec<Future<u32>> = (0..3)
        .map(|i| cx.named(n::PANIC, format!("stats {i}")))
        .collect::<Result<_, _>>()?;
    for f in oks {
        cx.value(f, "a square")?;
    }
    for f in bads {
        let r = cx.resolve(f, "a panic")?;
        ensure!(r.is_err(), "a panicking task returned {r:?}");
    }
    cx.step("the stats settle");
    let mut last = cx.exec.stats();
    let settled = poll_until(cx.opts.bound, || {
        last = cx.exec.stats();
        last.pending == 0 && last.completed + last.failed >= last.submitted
    });
    ensure!(
        settled.is_ok(),
        "the stats did not settle (pending 0, completed + failed = submitted) within {:?}: {last:?}",
        cx.opts.bound
    );
    ensure!(
        (last.submitted, last.completed, last.failed) == (13, 10, 3),
        "after 10 squares and 3 panics the stats count submitted {}, completed {}, failed {} \
         (expected 13, 10, 3): {last:?}",
        last.submitted,
        last.completed,
        last.failed
    );
    Ok(())
}
