//! Checks on time limits and kills: per-call timeouts, killing a running task.

use std::time::Duration;

use pool_core::{SubmitOptions, TaskError};

use crate::conformance::Ctx;
use crate::conformance::tasks;
use crate::target::Target;

pub(super) fn per_call_timeout<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
    cx.step("sleep 1500 ms with a 100 ms timeout");
    let limit = Duration::from_millis(100);
    let slow = cx
        .exec
        .submit_fn_with(
            tasks::sleep_ms,
            1500u64,
            SubmitOptions::new().timeout(limit).label("slow one"),
        )
        .map_err(|e| e.to_string())?;
    let quick = cx
        .exec
        .submit_fn_with(
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
        .submit_fn_with(
            tasks::sleep_ms,
            1u64,
            SubmitOptions::new().timeout(Duration::from_secs(30)),
        )
        .map_err(|e| e.to_string())?;
    ensure!(cx.value(f, "within timeout")? == 1, "sleep_ms(1) wrong");
    Ok(())
}

pub(super) fn kill_running<E: Target>(cx: &Ctx<E>) -> Result<(), String> {
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
