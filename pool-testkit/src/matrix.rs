//! What DESIGN §8 promises for each (phase, fault) pair, as checkable expectations, and the
//! bystander tasks that must be unaffected. Used by the `matrix_*` tests.

use std::time::Duration;

use pool_core::{ExitReason, Future, Side, TaskError};

use crate::faults::{self, Fault, Phase};
use crate::target::Target;

/// The outcome a faulty task must resolve with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// `TaskError::Encode` from this side, mentioning the injected error.
    Encode(Side),
    /// `TaskError::Decode` from this side, mentioning the injected error.
    Decode(Side),
    /// `TaskError::Panicked` with the injected message.
    Panicked,
    /// `TaskError::WorkerDied` with this exit reason.
    Died(ExitReason),
    /// `TaskError::TimedOut`.
    TimedOut,
    /// The parent-side decode panicked: the future must still resolve — as a panic or a
    /// decode failure — and the worker must live on.
    PanicOrDecode,
}

fn signal(number: i32, name: &str) -> ExitReason {
    ExitReason::Signal {
        number,
        name: name.to_owned(),
    }
}

/// The expectation for `fault` in `phase` (`None`: while the task runs; there `Error` is a
/// value, checked by the caller).
pub fn expect_for(fault: Fault, phase: Option<Phase>) -> Expect {
    match fault {
        Fault::Error => match phase.map(Phase::side_op) {
            Some((side, crate::faults::Op::Encode)) => Expect::Encode(side),
            Some((side, crate::faults::Op::Decode)) => Expect::Decode(side),
            None => Expect::Panicked, // not used: the caller checks the value
        },
        Fault::Panic if phase == Some(Phase::ParentDecode) => Expect::PanicOrDecode,
        Fault::Panic => Expect::Panicked,
        Fault::Abort | Fault::MemoryBlowUp => Expect::Died(signal(6, "SIGABRT")),
        Fault::Segfault => Expect::Died(signal(11, "SIGSEGV")),
        Fault::Exit(n) => Expect::Died(ExitReason::Code(n)),
        Fault::KillSelf => Expect::Died(signal(9, "SIGKILL")),
        Fault::Hang => Expect::TimedOut,
    }
}

impl Expect {
    /// Panic with `what` and the outcome unless `got` matches.
    ///
    /// # Panics
    ///
    /// The outcome does not match.
    pub fn check<T: std::fmt::Debug>(&self, what: &str, got: &Result<T, TaskError>) {
        if let Err(why) = self.matches(got) {
            panic!("{what}: expected {self:?}, got {got:?}: {why}");
        }
    }

    /// `Ok(())` if `got` matches, else why not.
    ///
    /// # Errors
    ///
    /// The mismatch, in words.
    pub fn matches<T>(&self, got: &Result<T, TaskError>) -> Result<(), String> {
        let Err(e) = got else {
            return Err("the task succeeded".into());
        };
        match (self, e) {
            (Expect::Encode(side), TaskError::Encode(c))
            | (Expect::Decode(side), TaskError::Decode(c)) => {
                if c.side != *side {
                    return Err(format!("side is {}, expected {side}", c.side));
                }
                if !c.message.contains("injected error") {
                    return Err(format!("message {:?} lost the cause", c.message));
                }
                if c.codec.is_empty() || c.type_name.is_empty() {
                    return Err("codec or type name missing".into());
                }
                Ok(())
            }
            (Expect::Panicked, TaskError::Panicked(p)) => {
                if p.message.contains("injected panic") {
                    Ok(())
                } else {
                    Err(format!("panic message {:?}", p.message))
                }
            }
            (Expect::PanicOrDecode, TaskError::Panicked(_) | TaskError::Decode(_)) => Ok(()),
            (Expect::Died(exit), TaskError::WorkerDied(d)) => {
                if d.exit != *exit {
                    return Err(format!("exit is {}, expected {exit}", d.exit));
                }
                if d.pid.is_none() {
                    return Err("no pid in WorkerDied".into());
                }
                if d.task.is_empty() {
                    return Err("WorkerDied does not name the task".into());
                }
                let text = e.to_string();
                if !text.contains(&exit.to_string()) {
                    return Err(format!("Display does not name the exit: {text}"));
                }
                Ok(())
            }
            (Expect::TimedOut, TaskError::TimedOut { .. }) => Ok(()),
            _ => Err("wrong error kind".into()),
        }
    }
}

/// Bystanders: two short sleepers and two instant tasks, values `base..base + 4`.
pub fn submit_bystanders<E: Target>(exec: &E, base: u64) -> Vec<(u64, Future<u64>)> {
    let mut v = Vec::new();
    for i in 0..2 {
        let x = base + i;
        let f = exec
            .call(faults::slow_ok, (x, 30))
            .unwrap_or_else(|e| panic!("bystander {x} refused: {e}"));
        v.push((x, f));
    }
    for i in 2..4 {
        let x = base + i;
        let f = exec
            .call(faults::ok, x)
            .unwrap_or_else(|e| panic!("bystander {x} refused: {e}"));
        v.push((x, f));
    }
    v
}

/// Every bystander must succeed with its own value within `bound`.
///
/// # Panics
///
/// A bystander failed, returned the wrong value or did not resolve in time.
pub fn settle_bystanders(what: &str, futs: Vec<(u64, Future<u64>)>, bound: Duration) {
    for (x, f) in futs {
        match f.result_timeout(bound) {
            Ok(Ok(v)) => assert_eq!(v, x, "{what}: bystander {x} returned {v}"),
            Ok(Err(e)) => panic!("{what}: bystander {x} failed: {e}"),
            Err(f) => panic!(
                "{what}: bystander {x} unresolved after {bound:?}: {:?}",
                f.state()
            ),
        }
    }
}

/// Resolve every bystander within `bound`; return the outcomes (for policies, such as
/// `BreakPool`, under which bystanders may fail).
///
/// # Panics
///
/// A bystander did not resolve in time.
pub fn resolve_all(
    what: &str,
    futs: Vec<(u64, Future<u64>)>,
    bound: Duration,
) -> Vec<(u64, Result<u64, TaskError>)> {
    futs.into_iter()
        .map(|(x, f)| match f.result_timeout(bound) {
            Ok(r) => (x, r),
            Err(f) => panic!(
                "{what}: bystander {x} unresolved after {bound:?}: {:?}",
                f.state()
            ),
        })
        .collect()
}
