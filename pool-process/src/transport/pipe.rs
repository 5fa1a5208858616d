//! The pipe transport: the worker's stdin carries requests, its stdout carries replies.
//!
//! The pipes are std's `Stdio::piped()` pipes (close-on-exec in the parent, placed on the
//! child's fds 0/1 by the spawn itself, so no `pre_exec` hook is needed). Both are enlarged to
//! 1 MiB. The worker moves them off fds 0/1 before running any user code (see
//! `sys::fdio::take_stdio_channel`), so a task's `println!` lands on stderr instead of
//! corrupting the protocol. The worker's stderr is a third pipe that the parent drains into a
//! tail buffer while forwarding it to its own stderr.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{ChildStdin, ChildStdout};

use super::shm::ShmTransport;
use super::stream::StreamTransport;
use crate::sys::fdio;

/// Parent side: the transport over a freshly spawned child's stdin/stdout pipes.
pub(crate) fn parent_side(stdin: ChildStdin, stdout: ChildStdout) -> StreamTransport {
    fdio::enlarge_pipe(stdin.as_fd());
    fdio::enlarge_pipe(stdout.as_fd());
    StreamTransport::new(OwnedFd::from(stdout), OwnedFd::from(stdin))
}

/// Worker side: takes fds 0/1 as the channel and neutralises them for user code.
pub(crate) fn worker_side() -> io::Result<StreamTransport> {
    let (from_parent, to_parent) = fdio::take_stdio_channel()?;
    Ok(StreamTransport::new(from_parent, to_parent))
}

/// Worker side of the shared-memory transport: the memory file arrives as fd 0; it is moved
/// to a close-on-exec descriptor, fd 0 is pointed at `/dev/null`, and the parent is watched
/// (pidfd) so a dead parent ends every wait.
pub(crate) fn shm_worker_side(parent: u32) -> io::Result<ShmTransport> {
    let file = fdio::take_stdin()?;
    let mut t = ShmTransport::connect(file)?;
    t.watch_parent(parent)?;
    Ok(t)
}
