//! Watching another process for its end: process file descriptors.
//!
//! Mechanism: `pidfd_open(2)` returns a descriptor that refers to one process — not to a
//! process id, which could be reused — and becomes readable (`POLLIN`) once that process has
//! exited, whether or not it has been reaped and whether or not it is our child. A zero-timeout
//! `poll(2)` on it answers "is the peer still alive?" in one system call. Opening a pidfd from
//! a pid is only race-free if the pid cannot have been reused meanwhile: for a child that has
//! not been reaped this holds; for the parent, the caller checks `getppid()` *after* opening.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags};

/// A handle on one process that tells whether it has exited.
#[derive(Debug)]
pub(crate) struct ProcessWatch {
    fd: OwnedFd,
}

impl ProcessWatch {
    /// Watches process `pid`. The caller guarantees `pid` still names the intended process
    /// (an unreaped child), or re-checks it after this call.
    pub(crate) fn open(pid: u32) -> io::Result<Self> {
        let pid = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "invalid process id"))?;
        Ok(Self {
            fd: rustix::process::pidfd_open(pid, PidfdFlags::empty())?,
        })
    }

    /// Watches the parent process, which must be `expected`: the pidfd is opened first, then
    /// the parent id is compared, so a parent that died (and whose pid was reused) in between
    /// is reported as gone rather than silently watching a stranger.
    pub(crate) fn parent(expected: u32) -> io::Result<Self> {
        let watch = Self::open(expected)?;
        let parent = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
        if u32::try_from(parent).ok() == Some(expected) {
            Ok(watch)
        } else {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the parent process {expected} is gone"),
            ))
        }
    }

    /// Waits until the process has exited or `deadline` passes; true if it exited (errors
    /// count as "exited", as in [`ProcessWatch::exited`]).
    pub(crate) fn wait_exit(&self, deadline: Instant) -> bool {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(0) if left.is_zero() => return false,
                Ok(0) | Err(rustix::io::Errno::INTR) => continue,
                Ok(_) => return true,
                Err(_) => return true,
            }
        }
    }

    /// Has the process exited? (Errors count as "exited": the answer must not keep a waiter
    /// waiting on a process that cannot be observed.)
    pub(crate) fn exited(&self) -> bool {
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        loop {
            match rustix::event::poll(&mut fds, Some(&zero)) {
                Ok(0) => return false,
                Ok(_) => return true,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return true,
            }
        }
    }
}

impl AsFd for ProcessWatch {
    /// The pidfd: readable (`POLLIN`) once the process has exited, to be polled beside other
    /// descriptors.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
