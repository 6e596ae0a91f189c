//! The auditor: MCP requests are recorded off the hot path. A request hands its event to a
//! bounded queue and goes on; one writer task stores what arrived in batches (up to 500 events,
//! or whatever came within 200 ms), each batch in one transaction.
//!
//! # Caveats
//! If the store is down or slower than the traffic for long enough to fill the queue (10,000
//! events), new events are dropped and counted (`mcpctl_audit_dropped_total`), so auditing never
//! stalls MCP traffic. A failed batch is retried once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reconciler::audit::AuditEvent;
use reconciler::Store;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, warn};

const QUEUE: usize = 10_000;
const BATCH: usize = 500;
const LINGER: Duration = Duration::from_millis(200);

enum Msg {
    Event(AuditEvent),
    Flush(oneshot::Sender<()>),
}

/// Queue of audit events in front of the store.
pub struct Auditor {
    tx: mpsc::Sender<Msg>,
    dropped: Arc<AtomicU64>,
}

impl Auditor {
    /// Start the writer task (needs a Tokio runtime).
    pub fn start(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write(store, rx));
        Self { tx, dropped: Arc::new(AtomicU64::new(0)) }
    }

    /// Queue one event; never waits.
    pub fn record(&self, event: AuditEvent) {
        if self.tx.try_send(Msg::Event(event)).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                warn!(dropped = n, "audit queue full; events dropped");
            }
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Wait until everything queued so far is stored.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn write(store: Store, mut rx: mpsc::Receiver<Msg>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut waiting = Vec::new();
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Event(e) => batch.push(e),
                Msg::Flush(done) => waiting.push(done),
            }
            if batch.len() >= BATCH || !waiting.is_empty() {
                break;
            }
            next = tokio::time::timeout_at(deadline, rx.recv()).await.ok().flatten();
        }
        if !batch.is_empty() {
            if let Err(e) = store.insert_audit(&batch).await {
                warn!(error = %e, events = batch.len(), "audit write failed; retrying once");
                if let Err(e) = store.insert_audit(&batch).await {
                    error!(error = %e, events = batch.len(), "audit events lost");
                }
            }
            batch.clear();
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}
