//! The plain `fn` items the conformance suite submits. They only use serde values and the
//! file system (a gate is a directory: tasks create `started-<id>` and wait for `release` or
//! `release-<id>`), so they behave the same in a thread and in a worker process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pool_core::RemoteError;
use serde::{Deserialize, Serialize};

/// The longest a gated task waits for its release before giving up (it then returns
/// [`GATE_GAVE_UP`]), so a failed check never leaves a worker blocked forever.
pub const GATE_CAP: Duration = Duration::from_secs(60);

/// What a gated task returns when nobody released it within [`GATE_CAP`] (or its gate
/// directory is gone).
pub const GATE_GAVE_UP: u32 = u32::MAX;

/// `x * x`.
pub fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

/// Sleeps `ms` milliseconds, returns `ms`.
pub fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Returns `x` after a delay that is longest for small `x`, so a batch finishes in roughly
/// reverse order (for ordering checks).
pub fn slow_reverse(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(16u64.saturating_sub(x % 16)));
    x
}

/// Panics with `msg`.
pub fn panic_with(msg: String) -> u32 {
    panic!("{msg}")
}

/// The item on which [`panic_on_13`] panics.
pub const PANIC_ITEM: u64 = 13;

/// `x + 1`, but panics on [`PANIC_ITEM`].
pub fn panic_on_13(x: u64) -> u64 {
    if x == PANIC_ITEM {
        panic!("item {x} is unlucky");
    }
    x + 1
}

/// A structured value with a bit of everything serde has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    /// Text.
    pub name: String,
    /// Bytes.
    pub bytes: Vec<u8>,
    /// An option.
    pub maybe: Option<i64>,
    /// An enum.
    pub shape: Shape,
    /// A nested sequence.
    pub nested: Vec<(u16, String)>,
}

/// An enum with every variant shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Shape {
    /// Unit.
    Empty,
    /// Newtype.
    Circle(f64),
    /// Struct.
    Rect {
        /// Width.
        w: u32,
        /// Height.
        h: u32,
    },
}

/// Returns its argument with `name` reversed and every byte incremented.
pub fn transform(p: Payload) -> Payload {
    Payload {
        name: p.name.chars().rev().collect(),
        bytes: p.bytes.iter().map(|b| b.wrapping_add(1)).collect(),
        ..p
    }
}

/// An error with a source, to build chains from.
#[derive(Debug)]
pub struct ConfigError {
    path: String,
    source: std::io::Error,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot load config {}", self.path)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `Ok(x)` for even `x`; otherwise an error whose `source()` is an I/O error.
pub fn fail_odd(x: u64) -> Result<u64, RemoteError> {
    if x.is_multiple_of(2) {
        return Ok(x);
    }
    let e = ConfigError {
        path: format!("/etc/pool/{x}.toml"),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
    };
    Err(RemoteError::from_typed(&e))
}

fn touch(path: &Path) {
    // The file's existence is the signal; a failure shows up as a missing file in the check.
    let _ = std::fs::write(path, b"");
}

/// A gate argument: the gate directory and this task's id.
pub type GateArg = (String, u32);

fn released(dir: &Path, id: u32) -> bool {
    dir.join("release").exists() || dir.join(format!("release-{id}")).exists()
}

/// Creates `<dir>/started-<id>`, waits (polling) until `<dir>/release` or
/// `<dir>/release-<id>` exists, creates `<dir>/finished-<id>`, returns `id` — or
/// [`GATE_GAVE_UP`] after [`GATE_CAP`], or as soon as `<dir>` is gone (the check that made
/// it has ended and nobody can release the gate: an executor that still runs the task after
/// the check, or missed the release before the directory was removed, is not held up).
pub fn gate((dir, id): GateArg) -> u32 {
    let dir = PathBuf::from(dir);
    touch(&dir.join(format!("started-{id}")));
    let until = Instant::now() + GATE_CAP;
    while !released(&dir, id) {
        if Instant::now() > until || !dir.is_dir() {
            return GATE_GAVE_UP;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    touch(&dir.join(format!("finished-{id}")));
    id
}

/// Creates `<dir>/ran-<id>` and returns `id`: proof that the task ran.
pub fn mark((dir, id): GateArg) -> u32 {
    touch(&Path::new(&dir).join(format!("ran-{id}")));
    id
}
