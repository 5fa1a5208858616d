//! Checks on the workers: parallelism up to `max_workers`, on-demand spawning, statistics.

use pool_core::{State, TaskError};

use super::{occupy, pending_marks};
use crate::conformance::tasks;
use crate::conformance::{Ctx, poll_until};
use crate::target::Target;

pub(super) fn parallel_up_to_max_workers<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
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

pub(super) fn spawn_with_idle_worker<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
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

pub(super) fn stats_consistent<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
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
