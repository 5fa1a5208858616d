//! Fault fixtures: everything that can go wrong, placeable in any phase of a task's life.
//!
//! - [`Fault`]: the fault kinds — an error, a panic, `abort()`, a segfault, `exit(n)`, SIGKILL
//!   to oneself, a hang, unbounded allocation.
//! - [`Faulty`]: a value whose `Serialize` or `Deserialize` commits a fault, on the side
//!   ([`Side::Parent`] or [`Side::Worker`]) and in the direction ([`Op`]) you choose. Passed
//!   through [`pass_through`], one value places a fault in each phase: the parent encodes the
//!   argument, the worker decodes it, the worker encodes the result, the parent decodes it.
//! - Tasks (plain `fn` items): [`run_fault`] commits a fault while the task runs;
//!   [`leak_kib`] leaks a little per call; [`spawn_grandchild`] leaves a process behind;
//!   [`hang_forever`]; [`worker_pid`].
//! - Hooks for `initializer` / `finalizer`: [`hook_fault`], [`hook_fault_in_worker`].
//!
//! A fault on the parent side that ends the process (abort, segfault, exit, SIGKILL, hang)
//! would end the test itself: [`Faulty`] refuses to commit those in the parent and fails
//! with an error instead, so a misplaced fixture shows up as a test failure, not a dead test
//! runner.

pub(crate) mod crash;

use std::fmt;
use std::time::Duration;

use pool_core::{Executor, RemoteError, Side};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A fault kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Fault {
    /// An error value (a serde error in a codec phase; `Err(RemoteError)` with a `source()`
    /// chain from a task; `Err` from a hook).
    Error,
    /// A panic.
    Panic,
    /// `abort()` (SIGABRT).
    Abort,
    /// A real invalid memory access (SIGSEGV).
    Segfault,
    /// `exit(code)`.
    Exit(i32),
    /// SIGKILL sent to its own process (what an OOM killer or an operator does).
    KillSelf,
    /// Never returns (sleeps forever); only a timeout or a kill ends it.
    Hang,
    /// Allocates without bound (under an address-space limit: ends in an allocation failure,
    /// SIGABRT, after at most a few hundred MiB).
    MemoryBlowUp,
}

impl Fault {
    /// Every kind, with exit code 3 for [`Fault::Exit`].
    pub const ALL: [Fault; 8] = [
        Fault::Error,
        Fault::Panic,
        Fault::Abort,
        Fault::Segfault,
        Fault::Exit(3),
        Fault::KillSelf,
        Fault::Hang,
        Fault::MemoryBlowUp,
    ];

    /// Does this fault end (or stall forever) the process it happens in?
    pub fn ends_process(self) -> bool {
        !matches!(self, Fault::Error | Fault::Panic)
    }

    /// A short name for test names and tables: `error`, `panic`, `abort`, `segfault`,
    /// `exit3`, `sigkill`, `hang`, `oom`.
    pub fn name(self) -> String {
        match self {
            Fault::Error => "error".into(),
            Fault::Panic => "panic".into(),
            Fault::Abort => "abort".into(),
            Fault::Segfault => "segfault".into(),
            Fault::Exit(n) => format!("exit{n}"),
            Fault::KillSelf => "sigkill".into(),
            Fault::Hang => "hang".into(),
            Fault::MemoryBlowUp => "oom".into(),
        }
    }

    /// The message of the error or panic this fault raises, mentioning `place`.
    pub fn message(self, place: &str) -> String {
        format!("injected {} in {place}", self.name())
    }
}

/// Address space a [`Fault::MemoryBlowUp`] may add before its allocation fails.
pub const MEMORY_BLOW_UP_HEADROOM: u64 = 256 << 20;

/// Commit a process-ending or stalling fault here. `Error` and `Panic` are handled by the
/// caller (their shape depends on the place); for them this panics.
fn commit(fault: Fault, place: &str) -> ! {
    eprintln!(
        "pool-testkit fault fixture: {} (pid {})",
        fault.message(place),
        std::process::id()
    );
    match fault {
        Fault::Error | Fault::Panic => panic!("{}", fault.message(place)),
        Fault::Abort => crash::abort(),
        Fault::Segfault => crash::segfault(),
        Fault::Exit(n) => crash::exit(n),
        Fault::KillSelf => crash::sigkill_self(),
        Fault::Hang => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        Fault::MemoryBlowUp => crash::exhaust_memory(MEMORY_BLOW_UP_HEADROOM),
    }
}

/// Which direction of (de)serialization a [`Faulty`] value misbehaves in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// While being serialized.
    Encode,
    /// While being deserialized.
    Decode,
}

/// The four codec phases of a task's life, each a (side, op) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The parent encodes the argument.
    ParentEncode,
    /// The worker decodes the argument.
    WorkerDecode,
    /// The worker encodes the result.
    WorkerEncode,
    /// The parent decodes the result.
    ParentDecode,
}

impl Phase {
    /// All four, in the order a task goes through them.
    pub const ALL: [Phase; 4] = [
        Phase::ParentEncode,
        Phase::WorkerDecode,
        Phase::WorkerEncode,
        Phase::ParentDecode,
    ];

    /// The side and direction.
    pub fn side_op(self) -> (Side, Op) {
        match self {
            Phase::ParentEncode => (Side::Parent, Op::Encode),
            Phase::WorkerDecode => (Side::Worker, Op::Decode),
            Phase::WorkerEncode => (Side::Worker, Op::Encode),
            Phase::ParentDecode => (Side::Parent, Op::Decode),
        }
    }

    /// `parent_encode`, `worker_decode`, `worker_encode`, `parent_decode`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::ParentEncode => "parent_encode",
            Phase::WorkerDecode => "worker_decode",
            Phase::WorkerEncode => "worker_encode",
            Phase::ParentDecode => "parent_decode",
        }
    }
}

/// A value that commits `fault` when it is serialized or deserialized (per `op`) on `side`,
/// and otherwise carries `payload` faithfully. The side is told apart by process id: the
/// parent is the process that created the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Faulty {
    /// What to commit.
    pub fault: Fault,
    /// Where.
    pub side: Side,
    /// In which direction.
    pub op: Op,
    /// The process that made the value (the parent).
    pub parent_pid: u32,
    /// Ordinary data carried along (checked by tests to see the value survived).
    pub payload: u64,
}

impl Faulty {
    /// A value that faults in `phase` with `fault`, created in this (the parent) process.
    pub fn new(fault: Fault, phase: Phase, payload: u64) -> Self {
        let (side, op) = phase.side_op();
        Faulty {
            fault,
            side,
            op,
            parent_pid: std::process::id(),
            payload,
        }
    }

    fn here(&self) -> Side {
        if std::process::id() == self.parent_pid {
            Side::Parent
        } else {
            Side::Worker
        }
    }

    fn armed(&self, op: Op) -> bool {
        self.op == op && self.side == self.here()
    }

    fn place(&self) -> String {
        let dir = match self.op {
            Op::Encode => "serialize",
            Op::Decode => "deserialize",
        };
        format!("Faulty::{dir} in the {}", self.here())
    }
}

#[derive(Serialize, Deserialize)]
struct Repr {
    fault: Fault,
    side: bool,
    op: Op,
    parent_pid: u32,
    payload: u64,
}

impl Serialize for Faulty {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.armed(Op::Encode) {
            let place = self.place();
            match self.fault {
                Fault::Error => return Err(serde::ser::Error::custom(self.fault.message(&place))),
                Fault::Panic => panic!("{}", self.fault.message(&place)),
                f if self.here() == Side::Parent => {
                    return Err(serde::ser::Error::custom(format!(
                        "refusing to commit {} in the parent (it would end the test)",
                        f.name()
                    )));
                }
                f => commit(f, &place),
            }
        }
        Repr {
            fault: self.fault,
            side: self.side == Side::Worker,
            op: self.op,
            parent_pid: self.parent_pid,
            payload: self.payload,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Faulty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = Repr::deserialize(d)?;
        let v = Faulty {
            fault: r.fault,
            side: if r.side { Side::Worker } else { Side::Parent },
            op: r.op,
            parent_pid: r.parent_pid,
            payload: r.payload,
        };
        if v.armed(Op::Decode) {
            let place = v.place();
            match v.fault {
                Fault::Error => return Err(serde::de::Error::custom(v.fault.message(&place))),
                Fault::Panic => panic!("{}", v.fault.message(&place)),
                f if v.here() == Side::Parent => {
                    return Err(serde::de::Error::custom(format!(
                        "refusing to commit {} in the parent (it would end the test)",
                        f.name()
                    )));
                }
                f => commit(f, &place),
            }
        }
        Ok(v)
    }
}

/// Returns its argument: the task that carries a [`Faulty`] through all four codec phases.
pub fn pass_through(v: Faulty) -> Faulty {
    v
}

/// The error a task returns for [`Fault::Error`]: a chain of two, like a real one.
#[derive(Debug)]
pub struct InjectedError {
    what: String,
    source: std::io::Error,
}

impl fmt::Display for InjectedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for InjectedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The text of the innermost error in [`run_fault`]'s chain.
pub const INNER_ERROR: &str = "injected I/O failure";

/// Commits `fault` while the task runs: `Error` returns `Err(RemoteError)` whose `source()`
/// is an I/O error ([`INNER_ERROR`]); `Panic` panics; the others end (or stall) the worker.
pub fn run_fault(fault: Fault) -> Result<u64, RemoteError> {
    match fault {
        Fault::Error => {
            let e = InjectedError {
                what: fault.message("the task"),
                source: std::io::Error::other(INNER_ERROR),
            };
            Err(RemoteError::from_typed(&e))
        }
        Fault::Panic => panic!("{}", fault.message("the task")),
        f => commit(f, "the task"),
    }
}

/// Returns `x` (a bystander task).
pub fn ok(x: u64) -> u64 {
    x
}

/// Returns `x` after `ms` milliseconds (a bystander that is running when a fault happens).
pub fn slow_ok((x, ms): (u64, u64)) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    x
}

/// The pid of the process running the task.
pub fn worker_pid(_: ()) -> u32 {
    std::process::id()
}

/// Never returns.
pub fn hang_forever(_: ()) -> u64 {
    commit(Fault::Hang, "the task")
}

/// Leaks `kib` KiB (touched, so resident) and returns this process's resident set in bytes.
pub fn leak_kib(kib: u64) -> u64 {
    let v = vec![1u8; (kib as usize) << 10];
    std::hint::black_box(&v);
    std::mem::forget(v);
    crate::leaks::rss_bytes().unwrap_or(0)
}

/// Starts `sleep <secs>` as a child of the worker and returns without waiting for it: a
/// grandchild of the test that outlives its task (and, unless the pool kills process trees,
/// its worker). Returns the grandchild's pid.
pub fn spawn_grandchild(secs: u64) -> u32 {
    match std::process::Command::new("sleep")
        .arg(secs.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
    {
        Ok(child) => {
            let pid = child.id();
            // Deliberately neither waited for nor killed.
            std::mem::forget(child);
            pid
        }
        Err(e) => panic!("cannot spawn the grandchild: {e}"),
    }
}

/// Spawns a grandchild (see [`spawn_grandchild`]) then commits `fault`: the worker dies with
/// a child of its own still running.
pub fn grandchild_then((secs, fault): (u64, Fault)) -> Result<u64, RemoteError> {
    let pid = spawn_grandchild(secs);
    eprintln!("pool-testkit fault fixture: spawned grandchild {pid}");
    run_fault(fault).map(|_| u64::from(pid))
}

/// An initializer or finalizer that commits `fault` (`Error` returns `Err`).
pub fn hook_fault(fault: Fault) -> Result<(), String> {
    match fault {
        Fault::Error => Err(fault.message("the hook")),
        Fault::Panic => panic!("{}", fault.message("the hook")),
        f => commit(f, "the hook"),
    }
}

/// Like [`hook_fault`], but only in a worker process (never in `parent_pid`), so a pool that
/// runs a hook on the caller's side too is not taken down.
pub fn hook_fault_in_worker((fault, parent_pid): (Fault, u32)) -> Result<(), String> {
    if std::process::id() == parent_pid {
        return Ok(());
    }
    hook_fault(fault)
}

/// A hook that succeeds (for bystander pools).
pub fn hook_ok(_: ()) -> Result<(), String> {
    Ok(())
}

/// Inside a worker: builds a nested `ProcessPool` of 2 and maps [`ok`] over `0..n` on it;
/// returns the sum. A pool inside a pool's worker.
pub fn nested_pool_sum(n: u64) -> u64 {
    let pool = pool_process::ProcessPool::builder()
        .max_workers(2)
        .build()
        .unwrap_or_else(|e| panic!("nested pool: {e}"));
    let sum = pool
        .map(ok, 0..n)
        .map(|r| r.unwrap_or_else(|e| panic!("nested task: {e}")))
        .sum();
    pool.shutdown(pool_core::Shutdown::Wait);
    sum
}

/// Inside a worker: builds a nested `ProcessPool` of 2, makes both of its workers hang, and
/// hangs itself — a tree three levels deep that only a kill can end.
pub fn nested_pool_hang(_: ()) -> u64 {
    let pool = pool_process::ProcessPool::builder()
        .max_workers(2)
        .build()
        .unwrap_or_else(|e| panic!("nested pool: {e}"));
    let _a = pool.submit(hang_forever, ());
    let _b = pool.submit(hang_forever, ());
    commit(Fault::Hang, "a worker with a nested pool")
}
