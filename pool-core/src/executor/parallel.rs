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
/// use pool_core::{Parallel, TaskError};
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
/// # let _ = (word_counts::<NoPool>, first_count::<NoPool>);
/// # struct NoPool;
/// # impl pool_core::Executor for NoPool {
/// #     fn shutdown(&self, _: pool_core::Shutdown) -> pool_core::ShutdownReport { Default::default() }
/// #     fn stats(&self) -> pool_core::Stats { Default::default() }
/// # }
/// # impl Parallel for NoPool {
/// #     fn submit_fn_with<F, A, R>(&self, f: F, arg: A, _: pool_core::SubmitOptions)
/// #         -> Result<pool_core::Future<R>, pool_core::SubmitError<pool_core::Call<F, A>>>
/// #     where F: Fn(A) -> R + Copy + Send + Sync + 'static,
/// #         A: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
/// #         R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static {
/// #         let (p, fut) = pool_core::promise();
/// #         p.complete(Ok(f(arg)));
/// #         Ok(fut)
/// #     }
/// #     fn map_fn_with<'a, F, A, R, I>(&'a self, f: F, items: I, _: pool_core::MapOptions) -> pool_core::MapIter<'a, R>
/// #     where F: Fn(A) -> R + Copy + Send + Sync + 'static,
/// #         A: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
/// #         R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
/// #         I: IntoIterator<Item = A>, I::IntoIter: 'a { unimplemented!() }
/// # }
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
