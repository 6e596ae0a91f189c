//! The auditor: MCP requests are recorded off the hot path. A request hands its event to a
//! bounded queue and goes on; one writer task stores what arrived in batches (up to 500 events,
//! or whatever came within 200 ms), each batch in one transaction.
//!
//! Fields are truncated to explicit limits ([`MAX_TARGET_BYTES`], [`MAX_ERROR_BYTES`], …) before
//! they are queued, and events older than the retention (`--audit-retention`, default 30 days)
//! are deleted every [`PRUNE_EVERY`], [`PRUNE_BATCH`] rows per statement.
//!
//! Stored events are also published to live subscribers ([`Auditor::subscribe`], behind
//! `/api/v1/auditevents/stream`) through a broadcast channel of [`LIVE_BUFFER`] events: a
//! subscriber that falls further behind loses the oldest and is told how many, so a slow reader
//! never holds up auditing.
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
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

/// Longest tool, prompt or resource URI stored as an event's target (bytes).
pub const MAX_TARGET_BYTES: usize = 1024;
/// Longest error text stored (bytes).
pub const MAX_ERROR_BYTES: usize = 1024;
/// Longest project, token, server or session name stored (bytes).
pub const MAX_NAME_BYTES: usize = 256;
/// How often old events are deleted.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Rows deleted per statement (short transactions; the writer is not held up).
pub const PRUNE_BATCH: i64 = 1000;

/// Events buffered for each live subscriber before its oldest are dropped (it is told how many).
pub const LIVE_BUFFER: usize = 1024;

const QUEUE: usize = 10_000;
const BATCH: usize = 500;
const LINGER: Duration = Duration::from_millis(200);

enum Msg {
    Event(Box<AuditEvent>),
    Flush(oneshot::Sender<()>),
}

/// Queue of audit events in front of the store.
pub struct Auditor {
    tx: mpsc::Sender<Msg>,
    dropped: Arc<AtomicU64>,
    live: broadcast::Sender<Arc<AuditEvent>>,
    live_end: CancellationToken,
}

impl Auditor {
    /// Start the writer task, and the pruning task when `retention` is set (needs a Tokio
    /// runtime).
    pub fn start(store: Store, retention: Option<Duration>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        if let Some(keep) = retention {
            tokio::spawn(prune_every(store.clone(), keep));
        }
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        tokio::spawn(write(store, rx, live.clone()));
        Self { tx, dropped: Arc::new(AtomicU64::new(0)), live, live_end: CancellationToken::new() }
    }

    /// Queue one event (its fields truncated to the limits above); never waits.
    pub fn record(&self, mut event: AuditEvent) {
        for (field, max) in [
            (&mut event.target, MAX_TARGET_BYTES),
            (&mut event.project, MAX_NAME_BYTES),
            (&mut event.token, MAX_NAME_BYTES),
            (&mut event.server, MAX_NAME_BYTES),
            (&mut event.session, MAX_NAME_BYTES),
            (&mut event.method, MAX_NAME_BYTES),
        ] {
            truncate(field, max);
        }
        if let Some(e) = event.error.as_mut() {
            truncate(e, MAX_ERROR_BYTES);
        }
        if self.tx.try_send(Msg::Event(Box::new(event))).is_err() {
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

    /// Follow the events as they are stored (every project's: the subscriber filters), and the
    /// token that is cancelled when the gateway stops (live streams end then).
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<AuditEvent>>, CancellationToken) {
        (self.live.subscribe(), self.live_end.clone())
    }

    /// Live subscribers now.
    pub fn subscribers(&self) -> usize {
        self.live.receiver_count()
    }

    /// End every live stream (on shutdown: they never complete on their own).
    pub fn end_streams(&self) {
        self.live_end.cancel();
    }

    /// Wait until everything queued so far is stored.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Cut `s` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub fn truncate(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
}

/// Delete events older than `keep` now, then every [`PRUNE_EVERY`].
async fn prune_every(store: Store, keep: Duration) {
    loop {
        match prune(&store, keep).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "old audit events deleted"),
            Err(e) => warn!(error = %e, "deleting old audit events failed"),
        }
        tokio::time::sleep(PRUNE_EVERY).await;
    }
}

/// Delete events older than `keep`; returns how many.
///
/// # Errors
/// On a store error (what was deleted by then stays deleted).
pub async fn prune(store: &Store, keep: Duration) -> Result<u64, reconciler::StoreError> {
    let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    let cutoff = chrono::Utc::now().checked_sub_signed(keep).unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    store.prune_audit(&cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), PRUNE_BATCH).await
}

async fn write(store: Store, mut rx: mpsc::Receiver<Msg>, live: broadcast::Sender<Arc<AuditEvent>>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut waiting = Vec::new();
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + LINGER;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Event(e) => batch.push(*e),
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
            if live.receiver_count() > 0 {
                for e in batch.drain(..) {
                    // Never blocks: a lagging subscriber loses its oldest events instead.
                    let _ = live.send(Arc::new(e));
                }
            }
            batch.clear();
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_keeps_char_boundaries_and_marks_the_cut() {
        let mut s = "é".repeat(600);
        truncate(&mut s, 1024);
        assert!(s.len() <= 1024 && s.ends_with('…'), "{}", s.len());
        let mut short = "abc".to_string();
        truncate(&mut short, 3);
        assert_eq!(short, "abc");
    }
}
