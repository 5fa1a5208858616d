//! The checks themselves. Each returns `Err(what it saw)` on failure.
//!
//! By kind: `results.rs` (values, errors, panics), `workers.rs` (parallelism, spawning,
//! statistics), `map.rs` (the `map` family), `futures.rs` (states, cancellation, callbacks,
//! `wait`, `.await`), `timeouts.rs` (time limits, kills), `shutdown.rs` (shutdown modes,
//! dropping the pool). This file holds the list of checks in the order they run and the
//! helpers several kinds share.

use std::sync::mpsc;
use std::time::Duration;

use pool_core::{Executor, Future};

use super::tasks::{self, GateArg};
use super::{Check, Ctx, Need};
use crate::target::{Target, TaskFn, Value};

// Declared before the check modules, which use it.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

mod futures;
mod map;
pub(crate) mod named;
mod results;
mod shutdown;
mod timeouts;
mod workers;

use futures::{
    as_completed_each_once, await_future, cancel_pending, future_states_and_timing,
    on_done_callbacks, wait_functions,
};
use map::{
    map_all_values_and_errors, map_item_panic, map_lazy_bounded, map_ordered, map_timeout,
    map_unordered_complete,
};
use results::{panic_is_data, remote_error_chain, submit_results, values_round_trip};
use shutdown::{drop_resolves_futures, shutdown_cancel_pending, shutdown_kill, shutdown_wait};
use timeouts::{kill_running, per_call_timeout};
use workers::{parallel_up_to_max_workers, spawn_with_idle_worker, stats_consistent};

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
    occupy_with(cx, |arg| cx.sub(tasks::gate, arg))
}

/// [`occupy`] with gate tasks submitted by `gate` (given each task's gate argument).
fn occupy_with<E: Executor>(
    cx: &Ctx<E>,
    gate: impl Fn(GateArg) -> Result<Future<u32>, String>,
) -> Result<Vec<Future<u32>>, String> {
    let w = cx.workers() as u32;
    let futs: Vec<_> = (0..w)
        .map(|i| gate(cx.gate_arg(i)))
        .collect::<Result<_, _>>()?;
    cx.wait_started(0..w)?;
    Ok(futs)
}

/// Submit `n` `mark` tasks with ids starting at [`FIRST_MARK`].
fn pending_marks<E: Target>(cx: &Ctx<E>, n: u32) -> Result<Vec<Future<u32>>, String> {
    marks_with(cx, n, |arg| cx.sub(tasks::mark, arg))
}

/// The id of the first task [`pending_marks`] submits.
const FIRST_MARK: u32 = 1000;

/// [`pending_marks`] with mark tasks submitted by `mark` (given each task's gate argument).
fn marks_with<E: Executor>(
    cx: &Ctx<E>,
    n: u32,
    mark: impl Fn(GateArg) -> Result<Future<u32>, String>,
) -> Result<Vec<Future<u32>>, String> {
    (FIRST_MARK..FIRST_MARK + n)
        .map(|i| mark(cx.gate_arg(i)))
        .collect::<Result<_, _>>()
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
