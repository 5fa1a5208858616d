//! Glue between the comparison subjects and criterion: any [`Subject`] becomes a criterion
//! routine through `iter_custom`, so the criterion benches and `compare` time the very same
//! operations.

use crate::measure::Subject;
use std::time::Duration;

/// Runs `subject` `iters` times and returns the summed duration, as criterion's
/// `Bencher::iter_custom` wants.
///
/// # Panics
///
/// If an operation fails: a benchmark of a broken subject has no meaning.
pub fn total(subject: &mut dyn Subject, iters: u64) -> Duration {
    (0..iters)
        .map(|_| {
            subject
                .once()
                .unwrap_or_else(|e| panic!("benchmark operation failed: {e}"))
        })
        .sum()
}
