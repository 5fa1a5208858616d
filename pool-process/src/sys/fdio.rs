//! Descriptor I/O for the transports: vectored writes, reads, deadlines,
//! pipe sizing, and the worker's stdio rearrangement.
//!
//! Mechanism: plain `read`/`writev` on blocking descriptors. A receive with a deadline first
//! `poll`s the descriptor for the remaining time, so a blocking read never outlives the
//! deadline; without one the read blocks directly (one system call on the hot path). The
//! parent's side of a channel to a worker also polls the worker's pidfd beside the data
//! descriptor, and writes to it non-blocking, so a dead worker ends every wait even while a
//! forked grandchild still holds the other ends open. Pipes
//! are enlarged with `fcntl(F_SETPIPE_SZ)` so large payloads move in big chunks. A pipe
//! worker finds its control channel on fds 0 and 1; it moves them to fresh close-on-exec
//! descriptors and points fd 0 at `/dev/null` and fd 1 at stderr, so a task that prints to
//! stdout cannot corrupt the protocol and children of tasks never inherit the channel.

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::event::{PollFd, PollFlags, Timespec};

/// Pipe size asked for on every control pipe.
pub(crate) const PIPE_SIZE: usize = 1 << 20;

/// Enlarges a pipe; failure (an old kernel, a lowered `pipe-max-size`) only costs speed.
pub(crate) fn enlarge_pipe(fd: BorrowedFd<'_>) {
    let _ = rustix::pipe::fcntl_setpipe_size(fd, PIPE_SIZE);
}

/// Writes all of `parts`, in order, with as few `writev` calls as the OS allows. When `fd`
/// is non-blocking and full, waits until it takes more — or, with `peer` (a pidfd), until
/// that process exits: then `BrokenPipe`, though another process may still hold the reading
/// end open.
pub(crate) fn write_all_vectored(
    fd: BorrowedFd<'_>,
    parts: &[&[u8]],
    peer: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut index = 0;
    let mut offset = 0;
    while index < parts.len() {
        let mut slices: [IoSlice<'_>; 4] = [IoSlice::new(&[]); 4];
        let mut n = 0;
        for (i, part) in parts[index..].iter().enumerate().take(4) {
            slices[i] = IoSlice::new(if i == 0 { &part[offset..] } else { part });
            n = i + 1;
        }
        let written = match rustix::io::writev(fd, &slices[..n]) {
            Ok(w) => w,
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::AGAIN) => {
                // A non-blocking descriptor is full (a socket shared with the receive side,
                // or a pipe to a watched process).
                if !wait_for(fd, PollFlags::OUT, None, peer)? {
                    return Err(io::ErrorKind::BrokenPipe.into());
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let mut left = written;
        while index < parts.len() {
            let avail = parts[index].len() - offset;
            if left >= avail {
                left -= avail;
                index += 1;
                offset = 0;
            } else {
                offset += left;
                break;
            }
        }
    }
    Ok(())
}

/// Whether `fd` is readable (or at end of file / in error) right now.
pub(crate) fn readable_now(fd: BorrowedFd<'_>) -> bool {
    ready_now(fd, PollFlags::IN)
}

/// Waits until `fd` is readable or `deadline` passes (`ErrorKind::TimedOut`).
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, deadline: Instant) -> io::Result<()> {
    wait_for(fd, PollFlags::IN, Some(deadline), None).map(|_| ())
}

/// Waits until `fd` is readable, `deadline` (if any) passes (`ErrorKind::TimedOut`), or the
/// process behind the pidfd `peer` exits. False when the process exited and `fd` still has
/// nothing to read: whatever the process wrote before it died is read first.
pub(crate) fn wait_readable_or_exit(
    fd: BorrowedFd<'_>,
    deadline: Option<Instant>,
    peer: BorrowedFd<'_>,
) -> io::Result<bool> {
    wait_for(fd, PollFlags::IN, deadline, Some(peer))
}

/// Waits until `fd` has `events`, `deadline` passes (`ErrorKind::TimedOut`), or the process
/// behind the pidfd `peer` exits. True when `fd` is ready; false when the process exited and
/// `fd` is (re-checked after the exit was seen) still not ready.
fn wait_for(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    deadline: Option<Instant>,
    peer: Option<BorrowedFd<'_>>,
) -> io::Result<bool> {
    loop {
        let timeout = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                Some(Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: i64::from(left.subsec_nanos()),
                })
            }
            None => None,
        };
        let mut fds = [
            PollFd::from_borrowed_fd(fd, events),
            PollFd::from_borrowed_fd(peer.unwrap_or(fd), PollFlags::IN),
        ];
        let n = if peer.is_some() { 2 } else { 1 };
        match rustix::event::poll(&mut fds[..n], timeout.as_ref()) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) if !fds[0].revents().is_empty() => return Ok(true),
            // The process exited. Anything it wrote or read before dying is visible by now,
            // so a second look at `fd` decides (the first look may predate its last write).
            Ok(_) => return Ok(ready_now(fd, events)),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether `fd` has `events` (or is at end of file / in error) right now.
fn ready_now(fd: BorrowedFd<'_>, events: PollFlags) -> bool {
    let mut fds = [PollFd::from_borrowed_fd(fd, events)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    !matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(0))
}

/// Makes `fd` non-blocking (its open file description: every descriptor sharing it).
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

/// Reads once into `buf`; 0 at end of file. Retries on EINTR.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Worker side: takes fd 0 (returned as a close-on-exec descriptor) and points fd 0 at
/// `/dev/null`.
pub(crate) fn take_stdin() -> io::Result<OwnedFd> {
    let stdin = io::stdin();
    let taken = rustix::io::fcntl_dupfd_cloexec(stdin.as_fd(), 3)?;
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    rustix::stdio::dup2_stdin(&null)?;
    Ok(taken)
}

/// Worker side: takes fds 0 and 1 as the control channel (returned as close-on-exec
/// descriptors `(from_parent, to_parent)`), then points fd 0 at `/dev/null` and fd 1 at fd 2.
pub(crate) fn take_stdio_channel() -> io::Result<(OwnedFd, OwnedFd)> {
    let stdin = io::stdin();
    let stdout = io::stdout();
    let from_parent = rustix::io::fcntl_dupfd_cloexec(stdin.as_fd(), 3)?;
    let to_parent = rustix::io::fcntl_dupfd_cloexec(stdout.as_fd(), 3)?;
    let null = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    rustix::stdio::dup2_stdin(&null)?;
    rustix::stdio::dup2_stdout(io::stderr().as_fd())?;
    Ok((from_parent, to_parent))
}
