//! Asking the server for tasks: pull requests of one task each, all answered on one inbox
//! this worker subscribes to once, so a request is a single publish (no subscription made
//! and removed per request, as a batch of the client library would).
//!
//! The server answers a request with a task, or ends it unfilled with a status (408 when it
//! expired; 409 when the consumer is gone or has too many waiting requests). Requests all
//! expire after the same time, so they end in the order they were sent, and each message on
//! the inbox ends the oldest one. A request the server forgot (it restarted) never ends: it
//! counts as ended a few seconds past its expiry.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use async_nats::{StatusCode, Subject};
use futures::StreamExt;
use tokio::time::Instant;

/// How long one pull request waits for a task on the server.
pub(super) const PULL_EXPIRES: Duration = Duration::from_secs(1);
/// How long past its expiry a request with no end from the server counts as forgotten.
const FORGOTTEN_AFTER: Duration = Duration::from_secs(2);

/// What the inbox brings.
pub(super) enum Pulled {
    /// A task.
    Task(Box<jetstream::Message>),
    /// A request ended unfilled, or a message that is neither (a heartbeat).
    Nothing,
}

/// A worker's pull requests and their inbox.
pub(super) struct Puller {
    tasks: consumer::PullConsumer,
    inbox: Subject,
    answers: async_nats::Subscriber,
    context: jetstream::Context,
    /// When each outstanding request counts as forgotten, oldest first.
    outstanding: VecDeque<Instant>,
}

impl Puller {
    pub(super) async fn new(
        nats: &async_nats::Client,
        js: jetstream::Context,
        tasks: consumer::PullConsumer,
    ) -> Result<Self, String> {
        let inbox = Subject::from(nats.new_inbox());
        let answers = nats
            .subscribe(inbox.clone())
            .await
            .map_err(|e| format!("cannot subscribe to the worker's inbox: {e}"))?;
        Ok(Puller {
            tasks,
            inbox,
            answers,
            context: js,
            outstanding: VecDeque::new(),
        })
    }

    /// How many tasks are asked for and not yet come.
    pub(super) fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Asks for one more task; false if the request could not be sent.
    pub(super) async fn request(&mut self) -> bool {
        let request = jetstream::consumer::pull::BatchConfig {
            batch: 1,
            expires: Some(PULL_EXPIRES),
            ..Default::default()
        };
        match self.tasks.request_batch(request, self.inbox.clone()).await {
            Ok(()) => {
                self.outstanding
                    .push_back(Instant::now() + PULL_EXPIRES + FORGOTTEN_AFTER);
                true
            }
            Err(e) => {
                tracing::debug!(target: "pool", error = %e, "asking for a task");
                false
            }
        }
    }

    /// The next message on the inbox; `None` once the connection is closed for good.
    pub(super) async fn next(&mut self) -> Option<Pulled> {
        let message = self.answers.next().await?;
        match message.status {
            None | Some(StatusCode::OK) => {
                self.outstanding.pop_front();
                Some(Pulled::Task(Box::new(jetstream::Message {
                    message,
                    context: self.context.clone(),
                })))
            }
            Some(StatusCode::IDLE_HEARTBEAT) => Some(Pulled::Nothing),
            Some(status) => {
                if status != StatusCode::TIMEOUT {
                    tracing::debug!(target: "pool", %status, description = ?message.description,
                        "a pull request ended unfilled");
                }
                self.outstanding.pop_front();
                Some(Pulled::Nothing)
            }
        }
    }

    /// Drops the requests the server has not ended long past their expiry (it restarted and
    /// forgot them).
    pub(super) fn forget_lost(&mut self) {
        let now = Instant::now();
        while self.outstanding.front().is_some_and(|at| *at <= now) {
            self.outstanding.pop_front();
        }
    }

    /// When the oldest outstanding request counts as forgotten.
    pub(super) fn oldest_deadline(&self) -> Option<Instant> {
        self.outstanding.front().copied()
    }
}
