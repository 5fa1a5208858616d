//! The measuring loop: every subject of a scenario runs in interleaved rounds, so a burst of
//! load on the shared machine hits all of them alike, and each reports the median time of one
//! operation.

use std::time::{Duration, Instant};

/// Something that performs one operation of a scenario and says how long it took.
///
/// The subject times itself so that set-up and tear-down that are not part of the operation
/// (building a payload, dropping a pool after a cold start) stay outside the measurement.
pub trait Subject {
    /// Runs one operation and returns its duration, or why it failed.
    ///
    /// # Errors
    ///
    /// A message naming what went wrong (a lost worker, a wrong result); the scenario row is
    /// then reported as failed.
    fn once(&mut self) -> Result<Duration, String>;
}

impl<F> Subject for F
where
    F: FnMut() -> Result<Duration, String>,
{
    fn once(&mut self) -> Result<Duration, String> {
        self()
    }
}

/// Times `op`, returning its duration and its value.
pub fn timed<T>(op: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let value = op();
    (start.elapsed(), value)
}

/// A round trip's duration, if it brought back what was sent.
///
/// # Errors
///
/// The round trip failed, or brought back another value.
pub fn echoed(d: Duration, got: Result<u64, String>, sent: u64) -> Result<Duration, String> {
    match got {
        Ok(v) if v == sent => Ok(d),
        Ok(v) => Err(format!("got {v}, expected {sent}")),
        Err(e) => Err(e),
    }
}

/// The shape of the `*.tasks_*` subjects: `submit(item)` for every item one by one, every
/// future kept, then `wait` on each future in order.
///
/// # Errors
///
/// The first refused submit or failed task.
pub fn submit_all<I, F>(
    items: impl IntoIterator<Item = I>,
    mut submit: impl FnMut(I) -> Result<F, String>,
    wait: impl FnMut(F) -> Result<u64, String>,
) -> Result<Vec<u64>, String> {
    let futures = items
        .into_iter()
        .map(&mut submit)
        .collect::<Result<Vec<_>, _>>()?;
    futures.into_iter().map(wait).collect()
}

/// How many operations to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Untimed operations per subject before measuring.
    pub warmup: usize,
    /// Timed operations per subject; the median of these is reported.
    pub reps: usize,
    /// Operations per subject per round; subjects take turns round by round.
    pub per_round: usize,
    /// Measured time after which a subject takes no further rounds (it keeps the samples it
    /// has, at least one): bounds a slow peer's share of a `--quick` run.
    pub budget: Option<Duration>,
}

impl Plan {
    /// A plan of `reps` timed operations after `warmup` untimed ones, in rounds of `per_round`.
    pub const fn new(warmup: usize, reps: usize, per_round: usize) -> Self {
        Plan {
            warmup,
            reps,
            per_round,
            budget: None,
        }
    }

    /// The same plan with a time budget per subject (see [`Plan::budget`]).
    pub const fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self
    }
}

/// The median of `samples` (the mean of the two middle ones for an even count).
///
/// Returns `None` for no samples.
pub fn median(samples: &mut [Duration]) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    // Selection, not a sort: linear time, so the bookkeeping per operation stays constant
    // (callgrind counts compare runs of different lengths).
    let odd = samples.len() % 2 == 1;
    let mid = samples.len() / 2;
    let (lower, upper, _) = samples.select_nth_unstable(mid);
    let upper = *upper;
    Some(if odd {
        upper
    } else {
        let below = lower.iter().max().copied().unwrap_or(upper);
        (below + upper) / 2
    })
}

/// Runs every subject by `plan`, interleaved round by round, and returns for each the median
/// duration of one operation, or the first error it reported (after which it is not run again).
/// A subject past the plan's budget sits out the remaining rounds.
pub fn measure_interleaved(
    subjects: &mut [&mut dyn Subject],
    plan: Plan,
) -> Vec<Result<Duration, String>> {
    let mut samples: Vec<Result<Vec<Duration>, String>> = subjects
        .iter()
        .map(|_| Ok(Vec::with_capacity(plan.reps)))
        .collect();
    for (subject, slot) in subjects.iter_mut().zip(samples.iter_mut()) {
        for _ in 0..plan.warmup {
            if let Err(e) = subject.once() {
                *slot = Err(e);
                break;
            }
        }
    }
    let per_round = plan.per_round.max(1);
    let mut done = 0;
    while done < plan.reps {
        let this_round = per_round.min(plan.reps - done);
        for (subject, slot) in subjects.iter_mut().zip(samples.iter_mut()) {
            let Ok(times) = slot else { continue };
            if let Some(budget) = plan.budget
                && !times.is_empty()
                && times.iter().sum::<Duration>() >= budget
            {
                continue;
            }
            for _ in 0..this_round {
                match subject.once() {
                    Ok(d) => times.push(d),
                    Err(e) => {
                        *slot = Err(e);
                        break;
                    }
                }
            }
        }
        done += this_round;
    }
    samples
        .into_iter()
        .map(|s| s.and_then(|mut t| median(&mut t).ok_or_else(|| "no samples".to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = Duration::from_millis;
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [ms(3), ms(1), ms(2)]), Some(ms(2)));
        assert_eq!(
            median(&mut [ms(4), ms(1), ms(3), ms(2)]),
            Some(Duration::from_micros(2500))
        );
    }

    #[test]
    fn interleaves_rounds_and_stops_a_failing_subject() {
        let order = std::cell::RefCell::new(Vec::new());
        let mut a = || {
            order.borrow_mut().push('a');
            Ok(Duration::from_micros(1))
        };
        let mut calls = 0;
        let mut b = || {
            order.borrow_mut().push('b');
            calls += 1;
            if calls == 4 {
                Err("boom".to_string())
            } else {
                Ok(Duration::from_micros(2))
            }
        };
        let out = measure_interleaved(&mut [&mut a, &mut b], Plan::new(1, 4, 2));
        assert_eq!(out[0], Ok(Duration::from_micros(1)));
        assert_eq!(out[1], Err("boom".to_string()));
        let order: String = order.into_inner().into_iter().collect();
        // warm-up a, warm-up b, round 1 (a a b b), round 2 (a a b: b fails on its 2nd op)
        assert_eq!(order, "abaabbaab");
    }

    #[test]
    fn a_subject_over_budget_sits_out_later_rounds() {
        let mut slow_ops = 0;
        let mut slow = || {
            slow_ops += 1;
            Ok(Duration::from_secs(2))
        };
        let mut fast_ops = 0;
        let mut fast = || {
            fast_ops += 1;
            Ok(Duration::from_millis(1))
        };
        let plan = Plan::new(0, 3, 1).with_budget(Duration::from_secs(3));
        let out = measure_interleaved(&mut [&mut slow, &mut fast], plan);
        assert_eq!(out[0], Ok(Duration::from_secs(2)));
        assert_eq!(out[1], Ok(Duration::from_millis(1)));
        assert_eq!((slow_ops, fast_ops), (2, 3));
    }
}
