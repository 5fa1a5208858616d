//! Storing a message in a stream through outages: a publish whose store acknowledgement does
//! not come (the server restarting, a network blip) is published again with the same
//! `Nats-Msg-Id`, which the server stores once, until it is stored or [`PATIENCE`] runs out.
//! What cannot get better is reported at once: a message over the server's `max_payload`, a
//! stream that does not exist.

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind};
use bytes::Bytes;

/// How long a message is re-published before it is given up (shorter than the streams'
/// de-duplication window).
pub(crate) const PATIENCE: Duration = Duration::from_secs(120);

/// Stores `payload` on `subject` (in `stream`), returning its stream sequence.
pub(crate) async fn store(
    js: &jetstream::Context,
    stream: &str,
    subject: &str,
    headers: HeaderMap,
    payload: Bytes,
) -> Result<u64, String> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        let sent = js
            .publish_with_headers(subject.to_owned(), headers.clone(), payload.clone())
            .await;
        let error = match sent {
            Ok(ack) => match ack.await {
                Ok(ack) => return Ok(ack.sequence),
                Err(e) => e,
            },
            Err(e) => e,
        };
        match error.kind() {
            PublishErrorKind::MaxPayloadExceeded => {
                return Err(format!(
                    "the message for {subject} is larger than the server's max_payload: {error}"
                ));
            }
            PublishErrorKind::StreamNotFound if stream_is_gone(js, stream).await => {
                return Err(format!(
                    "the stream {stream} does not exist on the server (deleted after the pool \
                     was built?)"
                ));
            }
            _ => {}
        }
        if started.elapsed() >= PATIENCE {
            return Err(format!(
                "not stored on {subject} within {PATIENCE:?}: {error}"
            ));
        }
        tracing::debug!(target: "pool", subject, error = %error, "storing a message; trying again");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// Does the server (answering) say `stream` does not exist? Not when it cannot be asked (an
/// outage, JetStream still recovering after a restart).
async fn stream_is_gone(js: &jetstream::Context, stream: &str) -> bool {
    use async_nats::jetstream::context::GetStreamErrorKind;
    match js.get_stream(stream).await {
        Ok(_) => false,
        Err(e) => matches!(e.kind(), GetStreamErrorKind::JetStream(ref j)
            if j.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND),
    }
}
