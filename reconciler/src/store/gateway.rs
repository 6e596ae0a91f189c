//! The gateway's own rows: which caller opened the gate of which project (`gate_openings`).

use sqlx::Row;

use super::{now, Store, StoreError};

impl Store {
    /// Record that `subject` (a token hash) opened the gate of `project`.
    ///
    /// # Errors
    /// On a database error.
    pub async fn open_gate(&self, project: &str, subject: &str) -> Result<(), StoreError> {
        let at = now();
        sqlx::query("INSERT INTO gate_openings (project, subject, opened_at) VALUES ($1, $2, $3) ON CONFLICT (project, subject) DO UPDATE SET opened_at = excluded.opened_at")
            .bind(project)
            .bind(subject)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// When `subject` last opened the gate of `project`, if ever.
    ///
    /// # Errors
    /// On a database error.
    pub async fn gate_opened_at(&self, project: &str, subject: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT opened_at FROM gate_openings WHERE project = $1 AND subject = $2")
            .bind(project)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("opened_at")?),
            None => None,
        })
    }
}
