//! What travels through the server: subjects, headers, and a task's outcome.
//!
//! A task is one message on `<prefix>.tasks.<name>` in the work-queue stream `<PREFIX>_TASKS`,
//! its payload the argument encoded with the pool's codec, with headers `Nats-Msg-Id` (the
//! task id: the server drops a re-published duplicate), `Pool-Task` (the task id again, for
//! the answer) and `Pool-Reply` (the caller's results subject). The answer is one message on
//! that subject, in the stream `<PREFIX>_RESULTS`, with `Pool-Task` and an [`Outcome`] encoded
//! with the same codec. Headers `Pool-Max-Deliver`, `Pool-Ack-Wait` and `Pool-Timeout` carry
//! the caller's policy to the worker; `Pool-Started` names the subject (core NATS) on which the
//! worker says it started the task. A cancelled task's id is published (core NATS, not
//! stored) on `<prefix>.cancel`, so a worker that already holds it stops it.

use pool_core::TaskError;
use serde::{Deserialize, Serialize};

/// The header that names the task an answer belongs to.
pub(crate) const TASK: &str = "Pool-Task";
/// The header that names the subject a task's answer goes to.
pub(crate) const REPLY: &str = "Pool-Reply";
/// The header that names the (core NATS) subject a worker says "started" on.
pub(crate) const STARTED: &str = "Pool-Started";
/// How many times the task may be handed to a worker; one more delivery is answered as
/// [`pool_core::TaskError::Poison`] without running it.
pub(crate) const MAX_DELIVER: &str = "Pool-Max-Deliver";
/// The caller's `ack_wait` in milliseconds: the worker's heartbeats come at least three
/// times as often.
pub(crate) const ACK_WAIT: &str = "Pool-Ack-Wait";
/// The task's time limit in milliseconds, if it has one.
pub(crate) const TIMEOUT: &str = "Pool-Timeout";
/// The de-duplication header of JetStream.
pub(crate) const MSG_ID: &str = "Nats-Msg-Id";
/// The name of the durable consumer all workers of a prefix pull from.
pub(crate) const WORKERS: &str = "workers";

/// A task's outcome, as a worker sends it back: the result encoded with the pool's codec, or
/// the error the local pool resolved it with.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome {
    Ok(#[serde(with = "serde_bytes")] Vec<u8>),
    Err(TaskError),
}

/// The subjects and streams of one prefix.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    pub(crate) prefix: String,
}

impl Names {
    /// The names of `prefix`: letters, digits, `-` and `_` (it becomes a subject token and
    /// part of the streams' names).
    pub(crate) fn new(prefix: &str) -> Result<Self, String> {
        let valid = !prefix.is_empty()
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            Ok(Names {
                prefix: prefix.to_owned(),
            })
        } else {
            Err(format!(
                "the prefix {prefix:?} must be letters, digits, '-' or '_'"
            ))
        }
    }

    pub(crate) fn tasks_stream(&self) -> String {
        format!("{}_TASKS", self.prefix.to_uppercase())
    }
    pub(crate) fn results_stream(&self) -> String {
        format!("{}_RESULTS", self.prefix.to_uppercase())
    }
    pub(crate) fn task_subject(&self, name: &str) -> String {
        format!("{}.tasks.{name}", self.prefix)
    }
    pub(crate) fn all_tasks(&self) -> String {
        format!("{}.tasks.>", self.prefix)
    }
    /// The task name of a message on a task subject.
    pub(crate) fn task_name<'a>(&self, subject: &'a str) -> Option<&'a str> {
        subject.strip_prefix(&self.prefix)?.strip_prefix(".tasks.")
    }
    pub(crate) fn results_subject(&self, client: &str) -> String {
        format!("{}.results.{client}", self.prefix)
    }
    pub(crate) fn all_results(&self) -> String {
        format!("{}.results.>", self.prefix)
    }
    pub(crate) fn started_subject(&self, client: &str) -> String {
        format!("{}.started.{client}", self.prefix)
    }
    pub(crate) fn cancel_subject(&self) -> String {
        format!("{}.cancel", self.prefix)
    }
}
