//! Every piece of operating-system code the process backend uses (Linux).
//!
//! One file per mechanism; each file opens with a note on the OS facility it relies on. Pool
//! logic above this module never touches a raw descriptor, a signal or a process id directly.

pub(crate) mod exe;
pub(crate) mod fdio;
pub(crate) mod futex;
pub(crate) mod malloc;
pub(crate) mod pidfd;
pub(crate) mod proc;
pub(crate) mod shm;
pub(crate) mod signals;
pub(crate) mod spawn;
