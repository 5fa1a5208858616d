//! The one door through which the future state machine and the engine's queue, sleep/wake
//! and lending protocols get their synchronization primitives:
//! `std` in normal builds, [loom](https://docs.rs/loom) under `--cfg pool_loom` so the state
//! machine can be model-checked. (A project-specific cfg: a global `--cfg loom` changes the
//! build of some dependencies.)
//!
//! Model-check with:
//!
//! ```text
//! RUSTFLAGS="--cfg pool_loom" cargo test -p pool-core --release --lib --target-dir target/loom loom
//! ```

#[cfg(not(pool_loom))]
mod imp {
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

    /// `UnsafeCell` with loom's closure-based API.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(v: T) -> Self {
            UnsafeCell(std::cell::UnsafeCell::new(v))
        }
        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(pool_loom)]
mod imp {
    pub(crate) use loom::cell::UnsafeCell;
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};
}

pub(crate) use imp::*;

/// Lock a mutex, ignoring poisoning: the data behind our mutexes stays consistent because no
/// user code runs while they are held.
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Lock a `std` mutex (one no model checks), ignoring poisoning, as [`lock`] does.
#[inline]
pub(crate) fn lock_std<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
