//! Connecting to the server and making sure the two streams exist.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::wire::Names;

/// How long a published task id is remembered for de-duplication.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long an answer nobody collected stays in the results stream.
const RESULTS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Connects to `url` (bounded by `timeout`) and returns the JetStream context.
pub(crate) async fn connect(url: &str, timeout: Duration) -> Result<jetstream::Context, String> {
    let options = async_nats::ConnectOptions::new()
        .connection_timeout(timeout)
        .retry_on_initial_connect();
    let client = tokio::time::timeout(timeout, options.connect(url))
        .await
        .map_err(|_| format!("the NATS server at {url} did not answer within {timeout:?}"))?
        .map_err(|e| format!("cannot connect to the NATS server at {url}: {e}"))?;
    Ok(jetstream::new(client))
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
