//! [`reusable`]: the process-wide process pool, reused while it is healthy and configured the
//! same.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use pool_codec::Codec;
use pool_core::ConfigError;

use crate::pool::{ProcessPool, ProcessPoolBuilder};

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
/// - the same pool **resized** when only `max_workers` changed (shrinking lets running tasks
///   finish; it never kills them);
/// - a **new** pool, with the next `executor_id`, when the previous one is broken, was shut
///   down, or `config` differs in anything else. The previous pool is released: it shuts
///   down once no other handle uses it.
///
/// Safe to call from many threads at once: they all get the same pool.
///
/// # Errors
///
/// `config` is invalid (see [`ProcessPoolBuilder::build`]).
///
/// # Examples
///
/// ```
/// use pool_core::Executor;
/// use pool_process::{ProcessPool, reusable};
///
/// let a = reusable(ProcessPool::builder().max_workers(2))?;
/// let b = reusable(ProcessPool::builder().max_workers(2))?;
/// assert_eq!(a.executor_id(), b.executor_id());
/// let c = reusable(ProcessPool::builder().max_workers(1))?; // resized, same pool
/// assert_eq!(c.executor_id(), a.executor_id());
/// assert_eq!(c.max_workers(), 1);
/// # Ok::<(), pool_core::ConfigError>(())
/// ```
pub fn reusable<C: Codec>(config: ProcessPoolBuilder<C>) -> Result<ProcessPool<C>, ConfigError> {
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
