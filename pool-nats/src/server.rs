//! Connecting to the server (with connection events reported through `tracing`) and making
//! sure the two streams and the workers' consumer exist.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};

use crate::wire::{self, Names};

/// How long a published task or answer id is remembered for de-duplication: longer than
/// [`crate::store::PATIENCE`], so a message re-published through an outage is stored once.
pub(crate) const DUPLICATE_WINDOW: Duration = Duration::from_secs(300);
/// How long an answer nobody collected stays in the results stream.
const RESULTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Connects to `url` (a server or a comma-separated list), retrying a refused connection until
/// `timeout` (the server may still be starting). `role` names this side in the `tracing`
/// events: connect, disconnect, reconnect, server errors.
pub(crate) async fn connect(
    url: &str,
    timeout: Duration,
    role: &'static str,
) -> Result<async_nats::Client, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let lost = Arc::new(AtomicBool::new(false));
        let url_for_events = url.to_owned();
        let options = async_nats::ConnectOptions::new()
            .connection_timeout(timeout.min(Duration::from_secs(5)))
            .event_callback(move |event| {
                let lost = Arc::clone(&lost);
                let url = url_for_events.clone();
                async move { report(role, &url, &event, &lost) }
            });
        let left = deadline.saturating_duration_since(Instant::now());
        let error = match tokio::time::timeout(left, options.connect(url)).await {
            Ok(Ok(client)) => {
                tracing::info!(target: "pool", role, url, "connected to the NATS server");
                return Ok(client);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer".to_owned(),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "cannot reach the NATS server at {url} within {timeout:?}: {error}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One connection event as a `tracing` event.
fn report(role: &'static str, url: &str, event: &async_nats::Event, lost: &AtomicBool) {
    use async_nats::Event;
    match event {
        Event::Disconnected => {
            lost.store(true, Ordering::Relaxed);
            tracing::warn!(target: "pool", role, url, "lost the NATS server; reconnecting");
        }
        Event::Connected if lost.swap(false, Ordering::Relaxed) => {
            tracing::info!(target: "pool", role, url, "reconnected to the NATS server");
        }
        Event::Connected => {}
        Event::ServerError(e) => {
            tracing::warn!(target: "pool", role, url, error = %e, "NATS server error");
        }
        other => tracing::debug!(target: "pool", role, url, event = %other, "NATS connection"),
    }
}

/// The work-queue stream of tasks and the stream of answers, created if missing.
pub(crate) async fn ensure_streams(js: &jetstream::Context, names: &Names) -> Result<(), String> {
    js.get_or_create_stream(stream::Config {
        name: names.tasks_stream(),
        subjects: vec![names.all_tasks()],
        retention: stream::RetentionPolicy::WorkQueue,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    })
    .await
    .map_err(|e| {
        format!(
            "cannot create the task stream {}: {e}",
            names.tasks_stream()
        )
    })?;
    js.get_or_create_stream(stream::Config {
        name: names.results_stream(),
        subjects: vec![names.all_results()],
        duplicate_window: DUPLICATE_WINDOW,
        max_age: RESULTS_MAX_AGE,
        ..Default::default()
    })
    .await
    .map_err(|e| {
        format!(
            "cannot create the results stream {}: {e}",
            names.results_stream()
        )
    })?;
    Ok(())
}

/// The configuration of the durable consumer every worker of a prefix pulls from. The server
/// redelivers without limit: each task carries its own `max_deliver`, which the worker
/// enforces (it answers the delivery after the last as a poison task, so none is left behind).
fn workers_config(names: &Names, ack_wait: Duration) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(wire::WORKERS.to_owned()),
        filter_subject: names.all_tasks(),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait,
        max_deliver: -1,
        ..Default::default()
    }
}

/// The workers' consumer, created with `ack_wait` if missing; with `set`, an existing one is
/// updated to `ack_wait` (the caller's setting wins over the one a worker created it with).
pub(crate) async fn workers_consumer(
    js: &jetstream::Context,
    names: &Names,
    ack_wait: Duration,
    set: bool,
) -> Result<consumer::PullConsumer, String> {
    let stream = js
        .get_stream(names.tasks_stream())
        .await
        .map_err(|e| format!("the task stream {} is missing: {e}", names.tasks_stream()))?;
    let config = workers_config(names, ack_wait);
    let mut found = stream
        .get_or_create_consumer(wire::WORKERS, config.clone())
        .await
        .map_err(|e| format!("cannot create the workers' consumer: {e}"))?;
    let current = found
        .info()
        .await
        .map_err(|e| format!("cannot read the workers' consumer: {e}"))?
        .config
        .ack_wait;
    if set && current != ack_wait {
        found = stream
            .update_consumer(config)
            .await
            .map_err(|e| format!("cannot set the workers' ack_wait to {ack_wait:?}: {e}"))?;
    }
    Ok(found)
}
