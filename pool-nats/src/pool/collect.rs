//! Collecting answers and start notices. Answers: this client's durable consumer of its results subject, read for as
//! long as the pool lives, re-made when the server lost it, each answer resolving its task
//! once (a repeated answer finds no pending task and is only acknowledged).

use std::sync::Weak;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use pool_codec::Codec;
use pool_core::{CodecFailure, Side, TaskError};

use super::Inner;
use crate::wire::{self, Names, Outcome};

/// This client's durable consumer of its answers.
pub(super) async fn answers_consumer(
    js: &jetstream::Context,
    names: &Names,
    client: &str,
) -> Result<consumer::PullConsumer, String> {
    let stream = js.get_stream(names.results_stream()).await.map_err(|e| {
        format!(
            "the results stream {} is missing: {e}",
            names.results_stream()
        )
    })?;
    stream
        .get_or_create_consumer(
            client,
            consumer::pull::Config {
                durable_name: Some(client.to_owned()),
                filter_subject: names.results_subject(client),
                ack_policy: consumer::AckPolicy::Explicit,
                // A client gone without a shutdown leaves it for ten minutes; back later, it
                // makes it again and reads its answers from the start.
                inactive_threshold: Duration::from_secs(600),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| format!("cannot create this client's answers consumer: {e}"))
}

/// Reads answers until the pool is gone.
pub(super) async fn collect<C: Codec>(pool: Weak<Inner<C>>, mut answers: consumer::PullConsumer) {
    loop {
        // Short pull requests with frequent idle heartbeats: after a server restart (which
        // forgets waiting pull requests) the answers flow again within a second or two.
        let messages = answers
            .stream()
            .expires(Duration::from_secs(2))
            .heartbeat(Duration::from_millis(500))
            .messages()
            .await;
        match messages {
            Ok(mut messages) => {
                while let Some(message) = messages.next().await {
                    let Some(inner) = pool.upgrade() else { return };
                    match message {
                        Ok(m) => {
                            answer(&inner, &m);
                            drop(inner);
                            if let Err(e) = m.ack().await {
                                tracing::debug!(target: "pool", error = %e,
                                    "acknowledging an answer (it may come again; ignored then)");
                            }
                        }
                        Err(e) => {
                            use consumer::pull::MessagesErrorKind as K;
                            let fatal = matches!(e.kind(), K::ConsumerDeleted);
                            tracing::debug!(target: "pool", error = %e, "reading answers");
                            if fatal {
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(target: "pool", error = %e, "reading answers"),
        }
        // The stream of answers ended (the consumer is gone, or could not be read): make it
        // again, until the pool is gone.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Some(inner) = pool.upgrade() else { return };
        if inner.shut_down.load(std::sync::atomic::Ordering::SeqCst) {
            return; // its consumer was deleted on purpose
        }
        match answers_consumer(&inner.js, &inner.names, &inner.client).await {
            Ok(c) => {
                tracing::info!(target: "pool", "answers consumer made again");
                answers = c;
            }
            Err(e) => tracing::warn!(target: "pool", error = %e, "answers consumer; retrying"),
        }
    }
}

/// Marks tasks started as workers say so (core NATS: a notice lost in an outage only means
/// the task counts as queued, cancellable, until its answer).
pub(super) async fn starts<C: Codec>(pool: Weak<Inner<C>>, mut notices: async_nats::Subscriber) {
    while let Some(notice) = notices.next().await {
        let Some(inner) = pool.upgrade() else { return };
        if let Ok(id) = std::str::from_utf8(&notice.payload) {
            inner.pending.start(id);
        }
    }
}

/// Resolves the task an answer is for, if it is still pending.
fn answer<C: Codec>(inner: &Inner<C>, message: &jetstream::Message) {
    let id = message
        .headers
        .as_ref()
        .and_then(|h| h.get(wire::TASK))
        .map(|v| v.as_str());
    let Some(id) = id else { return };
    inner.pending.resolve(id, || {
        let outcome = match inner.codec.decode::<Outcome>(&message.payload) {
            Ok(Outcome::Ok(bytes)) => Ok(bytes),
            Ok(Outcome::Err(e)) => Err(e),
            Err(e) => Err(TaskError::Decode(CodecFailure {
                side: Side::Parent,
                type_name: "the task's outcome".to_owned(),
                codec: inner.codec.name().into_owned(),
                message: e.message().to_owned(),
            })),
        };
        inner.count(&outcome);
        outcome
    });
}
