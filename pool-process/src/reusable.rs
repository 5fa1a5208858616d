//! [`reusable`]: the process-wide process pool, reused while it is healthy and configured the
//! same.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use pool_codec::Codec;
use pool_core::BuildError;

use crate::builder::ProcessPoolBuilder;
use crate::pool::ProcessPool;

struct Entry {
    fingerprint: String,
    pool: Box<dyn Any + Send + Sync>,
}

/// One entry per codec type.
static REUSABLE: Mutex<Option<HashMap<TypeId, Entry>>> = Mutex::new(None);

/// The process-wide reusable pool for `config` (loky's `get_reusable_executor`).
///
/// - the **same** pool (same `executor_id`) while it is healthy, not shut down, and `config`
///   is the same as last time;
/// - the same pool **resized** when only `max_workers` changed (see below);
/// - a **new** pool, with the next `executor_id`, when the previous one is broken, was shut
///   down, or `config` differs in anything else. The previous pool is released: it shuts
///   down once no other handle uses it.
///
/// Safe to call from many threads at once: they all get the same pool.
///
/// # Resizing
///
/// A resize is [`ProcessPool::resize`], and what it promises is this:
///
/// - **Growing** takes effect at once: queued tasks get new workers now, up to the new
///   size; later tasks start workers on demand, as usual.
/// - **Shrinking** kills, interrupts, restarts and starts no worker. The workers that stay
///   keep their processes (same pids, same state left by the initializer or by earlier
///   tasks); no task is failed or re-run because of it.
/// - A worker above the new size leaves when it next looks for work **and finds none
///   queued**: idle workers are woken and leave at once; a busy one first finishes what it
///   was sent, and while tasks are queued it keeps taking them, so with a backlog the pool
///   runs at its old size until the queue is empty.
/// - **Which workers leave is not specified**: whichever idle ones notice first, not
///   necessarily the newest, the oldest, or the ones that did not run the last task. Code
///   must not count on a particular worker (or its process-local state) staying.
/// - [`Stats::workers`](pool_core::Stats::workers) drops as soon as a worker has left; its
///   process is then stopped as at shutdown (finalizer included) and exits shortly after.
///
/// So after a resize down to `n` and once the pool is idle, exactly `n` workers remain (or
/// fewer, if fewer were running), each one of the workers that ran before the resize.
///
/// # Errors
///
/// `config` is invalid (see [`ProcessPoolBuilder::build`]).
///
/// # Examples
///
/// ```
/// # mod pool { pub use pool_core::*; pub use pool_process::*; pub mod prelude { pub use pool_core::{Executor, MapOptions, Parallel, Shutdown, Submit, SubmitOptions, TaskError}; pub use pool_process::ProcessPool; } } // what `pool` re-exports
/// use pool::Executor;
/// use pool::{ProcessPool, reusable};
///
/// let a = reusable(ProcessPool::builder().max_workers(2))?;
/// let b = reusable(ProcessPool::builder().max_workers(2))?;
/// assert_eq!(a.executor_id(), b.executor_id());
/// let c = reusable(ProcessPool::builder().max_workers(1))?; // resized, same pool
/// assert_eq!(c.executor_id(), a.executor_id());
/// assert_eq!(c.max_workers(), 1);
/// # Ok::<(), pool::BuildError>(())
/// ```
pub fn reusable<C: Codec>(config: ProcessPoolBuilder<C>) -> Result<ProcessPool<C>, BuildError> {
    let fingerprint = config.fingerprint();
    let max_workers = config.requested_max_workers();
    let mut guard = REUSABLE.lock().unwrap_or_else(PoisonError::into_inner);
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(entry) = map.get(&TypeId::of::<C>())
        && entry.fingerprint == fingerprint
        && let Some(pool) = entry.pool.downcast_ref::<ProcessPool<C>>()
        && pool.is_broken().is_none()
        && !pool.is_shut_down()
    {
        if max_workers >= 1 && pool.max_workers() != max_workers {
            pool.resize(max_workers);
        }
        return Ok(pool.clone());
    }
    let pool = config.build()?;
    let replaced = map.insert(
        TypeId::of::<C>(),
        Entry {
            fingerprint,
            pool: Box::new(pool.clone()),
        },
    );
    // Dropping the replaced pool may wait for its idle workers (up to the drop bound): not
    // while other callers wait for the lock.
    drop(guard);
    drop(replaced);
    Ok(pool)
}
