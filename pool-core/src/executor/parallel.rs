//! [`Parallel`]: what generic code needs from a pool, with bounds a person can write.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Executor, MapIter, MapOptions, SubmitOptions};
use crate::error::{SubmitError, TaskError};
use crate::future::Future;
use crate::task::Call;

/// Run functions of one argument on any pool — threads, processes or a custom backend — from
/// generic code, with bounds a library can write down: the function's own type is inferred at
/// each call, so a library submits its own `fn` items (and capture-free closures) without
/// naming them. The bounds are those of the strictest pool (processes): the function is a
/// `fn` item or a closure that captures nothing, and arguments and results are serde types.
///
/// # Examples
///
/// A library function that takes any pool:
///
/// ```
/// use pool::{Parallel, TaskError};
///
/// fn word_count(text: String) -> usize {
///     text.split_whitespace().count()
/// }
///
/// /// Counts the words of each text on `pool`, in order.
/// pub fn word_counts<P: Parallel>(pool: &P, texts: Vec<String>) -> Result<Vec<usize>, TaskError> {
///     pool.map_fn(word_count, texts).collect()
/// }
///
/// /// The first text's count, submitted on its own.
/// pub fn first_count<P: Parallel>(pool: &P, text: String) -> Result<usize, TaskError> {
///     pool.submit_fn(word_count, text).map_err(|e| e.to_task_error())?.result()
/// }
///
/// // The same function on threads and on processes.
/// let threads = pool::ThreadPool::builder().max_workers(2).build()?;
/// let texts = vec!["a b c".to_string(), "d".to_string()];
/// assert_eq!(word_counts(&threads, texts.clone())?, [3, 1]);
/// let processes = pool::ProcessPool::builder().max_workers(2).build()?;
/// assert_eq!(word_counts(&processes, texts)?, [3, 1]);
/// assert_eq!(first_count(&processes, "one two".to_string())?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `ThreadPool` and `ProcessPool` implement it; so can any backend, by forwarding to its
/// `Submit` and `Executor` impls.
pub trait Parallel: Executor {
    /// Run `f(arg)` on the pool with options (timeout, label, timing).
    ///
    /// # Errors
    ///
    /// The pool refused the task (shut down, broken, full queue, an argument that cannot be
    /// encoded); the call is handed back.
    fn submit_fn_with<F, A, R>(
        &self,
        f: F,
        arg: A,
        opts: SubmitOptions,
    ) -> Result<Future<R>, SubmitError<Call<F, A>>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static;

    /// Run `f(arg)` on the pool.
    ///
    /// # Errors
    ///
    /// As [`Parallel::submit_fn_with`].
    fn submit_fn<F, A, R>(&self, f: F, arg: A) -> Result<Future<R>, SubmitError<Call<F, A>>>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_fn_with(f, arg, SubmitOptions::default())
    }

    /// Run `f(arg)` on the pool and wait for its value.
    ///
    /// # Errors
    ///
    /// The task's failure, or the refusal as the error its future would have carried.
    fn apply_fn<F, A, R>(&self, f: F, arg: A) -> Result<R, TaskError>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_fn(f, arg)
            .map_err(|e| e.to_task_error())?
            .result()
    }

    /// Apply `f` to every item with options (as [`Executor::map_with`]): `Ok(value)` per
    /// item, or its error (a panicking item fails only itself).
    fn map_fn_with<'a, F, A, R, I>(&'a self, f: F, items: I, opts: MapOptions) -> MapIter<'a, R>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'a;

    /// Apply `f` to every item, in order, lazily (as [`Executor::map`]).
    fn map_fn<'a, F, A, R, I>(&'a self, f: F, items: I) -> MapIter<'a, R>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: 'a,
    {
        self.map_fn_with(f, items, MapOptions::default())
    }

    /// Every item's value, in order (as [`Executor::map_all`]).
    ///
    /// # Errors
    ///
    /// The first failure in input order.
    fn map_all_fn<F, A, R, I>(&self, f: F, items: I) -> Result<Vec<R>, TaskError>
    where
        F: Fn(A) -> R + Copy + Send + Sync + 'static,
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
        I: IntoIterator<Item = A>,
    {
        self.map_fn(f, items).collect()
    }
}
