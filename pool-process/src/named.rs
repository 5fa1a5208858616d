//! Named tasks: functions registered under a stable name, so a worker that is a *different*
//! binary (one that links pool-process and registers the same names, typically calling
//! [`crate::worker_main`]) can serve a pool.
//!
//! Registration is link-time (`linkme` distributed slice): [`crate::named_task!`] adds an
//! entry to [`NAMED_TASKS`] in whatever binary it is compiled into. No offsets travel for
//! named tasks: the worker looks the name up in its own registry, so they need no
//! same-build check — only the names and their codecs, compared at the handshake.

use pool_codec::Codec;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::transfer::{self, Trampoline};

/// One registered task. Made by [`crate::named_task!`]; fields are private.
pub struct NamedTask {
    pub(crate) name: &'static str,
    pub(crate) codec: fn() -> String,
    /// Builds the task's codec from the pool's configuration, as this worker's codec.
    pub(crate) configure: fn(&[u8]) -> Result<(), String>,
    pub(crate) run: Trampoline,
}

impl std::fmt::Debug for NamedTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedTask")
            .field("name", &self.name)
            .field("codec", &(self.codec)())
            .finish()
    }
}

/// Every named task linked into this binary.
#[doc(hidden)]
#[linkme::distributed_slice]
pub static NAMED_TASKS: [NamedTask] = [..];

fn codec_name<C: Codec>() -> String {
    C::default().name().into_owned()
}

fn configure<C: Codec>(configuration: &[u8]) -> Result<(), String> {
    crate::worker::codec::install::<C>(configuration)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A named-tasks worker's codec: its registered tasks' codec named `codec` (the pool's),
/// built from the pool's configuration. `Err`: why it could not be built.
pub(crate) fn configure_codec(codec: &str, configuration: &[u8]) -> Result<(), String> {
    match registry().iter().find(|t| (t.codec)() == codec) {
        Some(task) => (task.configure)(configuration)
            .map_err(|why| format!("the codec {codec:?} of named task {:?}: {why}", task.name)),
        // No task of this codec: the parent refuses the names at the handshake.
        None => Ok(()),
    }
}

/// Builds a registry entry for `f` with codec `C` (used by [`crate::named_task!`]).
#[doc(hidden)]
pub const fn entry<F, A, R, C>(name: &'static str, f: F) -> NamedTask
where
    F: Fn(A) -> R + Copy + Send + Sync + 'static,
    A: DeserializeOwned,
    R: Serialize,
    C: Codec,
{
    let _ = f;
    NamedTask {
        name,
        codec: codec_name::<C>,
        configure: configure::<C>,
        run: transfer::named_trampoline::<F, A, R, C>(),
    }
}

/// The names (and codec names) registered in this binary, in registry order.
pub(crate) fn registry() -> &'static [NamedTask] {
    &NAMED_TASKS
}

/// Registers a function as a named task, so pools whose workers are a separately built
/// binary can run it by name with [`ProcessPool::submit_named`](crate::ProcessPool::submit_named).
///
/// `named_task!("name", path::to::function)` uses the default codec;
/// `named_task!("name", function, CodecType)` another one. The function must be a fn item
/// (or capture-free closure) `Fn(A) -> R` with serde `A` and `R`. Register the same names in
/// the worker binary and, if it also runs tasks itself, in the parent.
///
/// # Examples
///
/// ```
/// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// pool::named_task!("square", square);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! named_task {
    ($name:literal, $f:expr) => {
        $crate::named_task!($name, $f, $crate::__private::DefaultCodec);
    };
    ($name:literal, $f:expr, $codec:ty) => {
        const _: () = {
            #[$crate::__private::linkme::distributed_slice($crate::__private::NAMED_TASKS)]
            #[linkme(crate = $crate::__private::linkme)]
            static ENTRY: $crate::__private::NamedTask =
                $crate::__private::entry::<_, _, _, $codec>($name, $f);
        };
    };
}

#[cfg(test)]
mod tests {
    fn triple(x: u32) -> u32 {
        x * 3
    }
    crate::named_task!("pool-process-unit-triple", triple);

    #[test]
    fn registered_tasks_are_found_and_run() {
        let t = super::registry()
            .iter()
            .find(|t| t.name == "pool-process-unit-triple")
            .expect("registered");
        assert_eq!((t.codec)(), "msgpack");
        let codec = pool_codec::DefaultCodec::default();
        let mut input = Vec::new();
        pool_codec::Codec::encode(&codec, &5u32, &mut input).unwrap();
        let mut out = Vec::new();
        assert_eq!((t.run)(&input, &mut out), crate::protocol::Outcome::Ok);
        let back: u32 = pool_codec::Codec::decode(&codec, &out).unwrap();
        assert_eq!(back, 15);
    }
}
