//! The conformance suite for executors of named tasks: the checks of the main suite that
//! apply to a task known by its name only (a pool whose workers are other binaries, or other
//! machines), run by [`run_named`] on any [`NamedTarget`].
//!
//! The suite submits the tasks this module registers with `pool_process::named_task!`
//! (listed in [`TASKS`], each also a constant: [`SQUARE`], [`GATE`], ...), with the default
//! codec. Whatever runs the tasks must serve these names: a `ProcessPool` built with
//! `.named_tasks(TASKS)` does, in any binary that links this crate (its workers are that
//! binary).
//!
//! # Linking
//!
//! `named_task!` adds an entry to a `linkme` distributed slice: a `#[used]` static in a link
//! section. A library is linked as an archive, whose members a linker takes only to resolve a
//! reference, and nothing refers to these statics; but rustc hands the linker a synthetic
//! object that refers to every `#[used]` static of the crates it links, so every binary that
//! links this crate — naming [`TASKS`] or any other item of it is enough — has the
//! registrations, and its workers serve the tasks. `tests/named_linked.rs` checks it in a
//! binary that names two tasks through `const`s only (inlined: no reference to this crate's
//! code or data).
//!
//! # Examples
//!
//! ```no_run
//! use pool_testkit::conformance::{Options, named};
//!
//! let report = named::run_named("ProcessPool", Options::new(), |workers| {
//!     pool_process::ProcessPool::builder()
//!         .max_workers(workers)
//!         .named_tasks(named::TASKS)
//!         .build()
//!         .unwrap()
//! });
//! report.assert_passed();
//! ```

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::tasks;
use super::{Options, Report, checks, run_checks};
use crate::target::NamedTarget;

/// [`tasks::square`]: `u64 -> u64`.
pub const SQUARE: &str = "conformance-square";
/// [`echo_string`]: `String -> String`.
pub const ECHO_STRING: &str = "conformance-echo-string";
/// [`echo_bytes`]: `Vec<u8> -> Vec<u8>`.
pub const ECHO_BYTES: &str = "conformance-echo-bytes";
/// [`tasks::transform`]: [`Payload`](tasks::Payload) `->` [`Payload`](tasks::Payload) (a struct with nested values).
pub const TRANSFORM: &str = "conformance-transform";
/// [`tasks::panic_with`]: `String -> u32`, panics with the string.
pub const PANIC: &str = "conformance-panic";
/// [`abort`]: `u32 -> u32`, aborts the process that runs it (SIGABRT).
pub const ABORT: &str = "conformance-abort";
/// [`tasks::gate`]: [`GateArg`](tasks::GateArg) `-> u32`, waits at a file-system gate.
pub const GATE: &str = "conformance-gate";
/// [`tasks::mark`]: [`GateArg`](tasks::GateArg) `-> u32`, leaves a file that says it ran.
pub const MARK: &str = "conformance-mark";

/// Every named task the suite submits: what a worker's pool must declare
/// (`ProcessPoolBuilder::named_tasks(TASKS)`); this crate registers them.
pub const TASKS: [&str; 8] = [
    SQUARE,
    ECHO_STRING,
    ECHO_BYTES,
    TRANSFORM,
    PANIC,
    ABORT,
    GATE,
    MARK,
];

// `named_task!` takes a literal: the names are spelled again here, and the unit test below
// checks them against the constants.
pool_process::named_task!("conformance-square", tasks::square);
pool_process::named_task!("conformance-echo-string", echo_string);
pool_process::named_task!("conformance-echo-bytes", echo_bytes);
pool_process::named_task!("conformance-transform", tasks::transform);
pool_process::named_task!("conformance-panic", tasks::panic_with);
pool_process::named_task!("conformance-abort", abort);
pool_process::named_task!("conformance-gate", tasks::gate);
pool_process::named_task!("conformance-mark", tasks::mark);

/// Returns its argument.
pub fn echo_string(s: String) -> String {
    s
}

/// Returns its argument.
pub fn echo_bytes(b: Vec<u8>) -> Vec<u8> {
    b
}

/// Aborts the process that runs it (SIGABRT, no core file).
pub fn abort(_: u32) -> u32 {
    crate::faults::crash::abort()
}

/// A value whose `Serialize` always fails (with [`Unencodable::MESSAGE`]), whatever the
/// codec: an argument no executor can send. It deserializes from a `u64`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Unencodable(pub u64);

impl Unencodable {
    /// What its `Serialize` fails with.
    pub const MESSAGE: &'static str = "Unencodable refuses to be encoded";
}

impl Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(Self::MESSAGE))
    }
}

/// A name no worker registers.
pub const UNKNOWN: &str = "conformance-no-such-task";

/// The names of the named suite's checks, in run order.
pub fn check_names() -> Vec<&'static str> {
    checks::named::all::<pool_process::ProcessPool>()
        .iter()
        .map(|c| c.name)
        .collect()
}

/// Run every named check (or those matching [`Options::filter`]) on executors built by
/// `make`, which is called with [`Options::workers`] and must build an executor that runs at
/// most that many tasks at once and serves [`TASKS`]. As with [`run`](super::run), each check
/// gets a fresh executor, runs on its own thread under a watchdog, and the executor must shut
/// down within the bound afterwards. Never panics on a failed check: see
/// [`Report::assert_passed`].
pub fn run_named<E, M>(executor: &str, opts: Options, make: M) -> Report
where
    E: NamedTarget,
    M: Fn(usize) -> E + Send + Sync + 'static,
{
    run_checks(executor, opts, Arc::new(make), checks::named::all::<E>())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// A pool that declares [`TASKS`](super::TASKS) refuses at the handshake any name its
    /// worker (this binary) does not register: the constants and the literals agree.
    #[test]
    fn the_constants_name_the_registered_tasks() {
        let mut unique = super::TASKS.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), super::TASKS.len(), "a name is listed twice");
        let guard = crate::harness::start("named tasks registered", Duration::from_secs(60));
        let pool = pool_process::ProcessPool::builder()
            .max_workers(1)
            .named_tasks(super::TASKS)
            .build()
            .expect("a named pool");
        let nine = pool
            .submit_named::<u64, u64>(super::SQUARE, 3)
            .map(|f| f.result());
        assert_eq!(nine.ok(), Some(Ok(9)));
        pool_core::Executor::shutdown(&pool, pool_core::Shutdown::Wait);
        drop(pool);
        guard.finish();
    }
}
