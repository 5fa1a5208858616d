//! A library function generic over the pool it runs on: it submits its own `fn` items through
//! `pool::Parallel`, so its callers choose threads or processes (or a custom backend).

// This module stands for a library: its `pub` items are that library's API.
#![allow(unreachable_pub)]

use std::io::Read;
use std::path::PathBuf;

use pool::{Parallel, RemoteError, TaskError};

/// FNV-1a (64 bits) of a file's bytes, read in blocks. `?` turns I/O errors into the task's
/// `RemoteError`, with the error's type and message.
pub fn checksum(path: PathBuf) -> Result<u64, RemoteError> {
    let mut file = std::fs::File::open(&path)?;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut block = [0u8; 64 * 1024];
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            return Ok(hash);
        }
        for &b in &block[..n] {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Why a file has no checksum.
#[derive(Debug, PartialEq)]
pub enum Failure {
    /// The file could not be read (its I/O error, from the worker).
    Unreadable(RemoteError),
    /// The task failed (a worker died, the pool was shut down, ...).
    Task(TaskError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreadable(e) => write!(f, "unreadable: {e}"),
            Failure::Task(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Failure {}

fn flatten(r: Result<Result<u64, RemoteError>, TaskError>) -> Result<u64, Failure> {
    match r {
        Ok(Ok(sum)) => Ok(sum),
        Ok(Err(e)) => Err(Failure::Unreadable(e)),
        Err(e) => Err(Failure::Task(e)),
    }
}

/// The checksum of every file, in order, computed on `pool`.
pub fn parallel_checksums<P: Parallel>(pool: &P, paths: Vec<PathBuf>) -> Vec<Result<u64, Failure>> {
    pool.map_fn(checksum, paths).map(flatten).collect()
}

/// One file's checksum, awaited: a pool's future is a `std::future::Future`, so `async` code
/// awaits it without blocking its executor's thread.
pub async fn checksum_async<P: Parallel>(pool: &P, path: PathBuf) -> Result<u64, Failure> {
    match pool.submit_fn(checksum, path) {
        Ok(fut) => flatten(fut.await),
        Err(refused) => Err(Failure::Task(refused.to_task_error())),
    }
}
