//! The `mcpctl_deploy` channel (Postgres `LISTEN/NOTIFY`): every recorded deploy notifies it
//! with its id from inside its own transaction, and [`Store::listen_deploys`] wakes gateways at
//! once, instead of at their next poll.
//!
//! # Guarantees
//! A notification is sent only when the deploy's transaction commits (Postgres queues `NOTIFY`
//! until then). Notifications are hints: one lost while the listener reconnects is covered by a
//! wake-up after every reconnect, and polling stays as the fallback. SQLite has no channel:
//! [`Store::listen_deploys`] returns at once there.

use std::sync::Arc;
use std::time::Duration;

use super::{Backend, Store, StoreError};

/// The channel name.
pub const CHANNEL: &str = "mcpctl_deploy";

/// Longest wait between reconnect attempts of a failed listener.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Queue the notification of deploy `id` in `tx` (Postgres; nothing on SQLite).
pub(super) async fn deployed(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: i64) -> Result<(), StoreError> {
    if tx.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(id.to_string()).execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// `LISTEN` on [`CHANNEL`] and call `wake.notify_one()` for every deploy notified, and once
    /// after every (re)connect. Runs until the task is dropped; a failed connection is retried
    /// with backoff (1 s doubling to 30 s). Returns at once on SQLite.
    pub async fn listen_deploys(&self, wake: Arc<tokio::sync::Notify>) {
        if self.backend != Backend::Postgres {
            return;
        }
        let mut failures = 0u32;
        loop {
            let Err(e) = self.listen_once(&wake, &mut failures).await;
            failures += 1;
            let wait = Duration::from_secs(1u64 << (failures - 1).min(5)).min(MAX_BACKOFF);
            tracing::warn!(error = %e, retry_in = ?wait, "listening for deploys failed; polling covers meanwhile");
            tokio::time::sleep(wait).await;
        }
    }

    /// One listener connection, until it fails (`failures` is reset once it listens).
    async fn listen_once(&self, wake: &tokio::sync::Notify, failures: &mut u32) -> Result<std::convert::Infallible, sqlx::Error> {
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen(CHANNEL).await?;
        *failures = 0;
        tracing::debug!("listening for deploys");
        // Anything deployed while no listener was connected.
        wake.notify_one();
        loop {
            match listener.try_recv().await? {
                Some(n) => {
                    tracing::debug!(deploy = n.payload(), "deploy notified");
                    wake.notify_one();
                }
                // The connection was lost and re-established: notifications may have been missed.
                None => wake.notify_one(),
            }
        }
    }
}
