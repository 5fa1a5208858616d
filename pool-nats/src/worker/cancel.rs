//! Stopping tasks their callers cancelled: the worker listens on `<prefix>.cancel` (core
//! NATS) and signals the task with that id if it holds it, or remembers the id for a while
//! if it does not (a task cancelled while being stored may still be delivered once, between
//! being stored and being deleted).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::oneshot;

/// The tasks this worker holds, each with the signal that stops it.
#[derive(Default)]
pub(crate) struct Held {
    stops: Mutex<HashMap<String, oneshot::Sender<()>>>,
    /// Cancellations of tasks not held (yet), with when they came.
    cancelled: Mutex<HashMap<String, Instant>>,
}

/// How long a cancellation of a task not held is remembered.
const REMEMBER: Duration = Duration::from_secs(120);

impl Held {
    /// Task `id` is held from now on: the receiver fires if its caller cancels it. `None` if
    /// its caller cancelled it already (do not run it).
    pub(crate) fn enter(&self, id: &str) -> Option<oneshot::Receiver<()>> {
        {
            let mut cancelled = self
                .cancelled
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if cancelled.remove(id).is_some() {
                return None;
            }
        }
        let (stop, stopped) = oneshot::channel();
        self.stops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned(), stop);
        Some(stopped)
    }

    pub(crate) fn leave(&self, id: &str) {
        self.stops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    fn stop(&self, id: &str) {
        let stop = self
            .stops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        if let Some(stop) = stop {
            let _ = stop.send(());
            return;
        }
        let mut cancelled = self
            .cancelled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        cancelled.retain(|_, at| now.duration_since(*at) < REMEMBER);
        cancelled.insert(id.to_owned(), now);
    }
}

/// Listens for cancellations until the connection closes.
pub(crate) async fn listen(nats: async_nats::Client, subject: String, held: Arc<Held>) {
    let mut cancellations = match nats.subscribe(subject).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(target: "pool", error = %e,
                "cannot listen for cancellations; cancelled tasks this worker holds will run");
            return;
        }
    };
    while let Some(message) = cancellations.next().await {
        if let Ok(id) = std::str::from_utf8(&message.payload) {
            held.stop(id);
        }
    }
}
