//! Checks on shutdown: each mode, and dropping the last handle.

use std::sync::{Arc, Mutex, mpsc};

use pool_core::{Shutdown, TaskError};

use super::{bounded, occupy, pending_marks, sub_on};
use crate::conformance::Ctx;
use crate::conformance::tasks;
use crate::target::Target;

pub(super) fn shutdown_wait<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
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

pub(super) fn shutdown_cancel_pending<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    shutdown_with_pending(cx, Shutdown::CancelPending)
}

pub(super) fn shutdown_kill<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
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

pub(super) fn drop_resolves_futures<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
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
