//! What the reconciler reports beside resources: drift from the last good commit and the status
//! of servers per runtime (`store_meta`, `server_status`).

use sqlx::Row;

use super::{now, Store, StoreError};

impl Store {
    /// Record the drift last seen by the reconciler (empty: none).
    ///
    /// # Errors
    /// On a database error.
    pub async fn set_drift(&self, drift: &str) -> Result<(), StoreError> {
        // Written only when it changes: after every deploy it is cleared, usually already clear.
        sqlx::query("UPDATE store_meta SET value = $1 WHERE key = 'drift' AND value <> $1").bind(drift).execute(&self.pool).await?;
        Ok(())
    }

    /// The drift last seen by the reconciler (empty: none).
    ///
    /// # Errors
    /// On a database error.
    pub async fn drift(&self) -> Result<String, StoreError> {
        let row = sqlx::query("SELECT value FROM store_meta WHERE key = 'drift'").fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get::<String, _>("value")).transpose()?.unwrap_or_default())
    }

    /// Replace the statuses a runtime reports (server → JSON state) in one transaction.
    ///
    /// # Errors
    /// On a database error.
    pub async fn set_server_status(&self, runtime: &str, statuses: &[(String, serde_json::Value)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM server_status WHERE runtime = $1").bind(runtime).execute(&mut *tx).await?;
        let ts = now();
        for (server, state) in statuses {
            sqlx::query("INSERT INTO server_status (runtime, server, state, updated_at) VALUES ($1, $2, $3, $4)")
                .bind(runtime)
                .bind(server)
                .bind(state.to_string())
                .bind(&ts)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every runtime status: (runtime, server, state, updated_at), sorted.
    ///
    /// # Errors
    /// On a database error.
    pub async fn server_status(&self) -> Result<Vec<(String, String, serde_json::Value, String)>, StoreError> {
        let rows = sqlx::query("SELECT runtime, server, state, updated_at FROM server_status ORDER BY runtime, server")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get("state")?;
                Ok((
                    r.try_get("runtime")?,
                    r.try_get("server")?,
                    serde_json::from_str(&state).unwrap_or(serde_json::Value::Null),
                    r.try_get("updated_at")?,
                ))
            })
            .collect()
    }
}
