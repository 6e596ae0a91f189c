//! The rows of secret backends: where a Secret's values live after a migration
//! (`secret_locations`) and the values the `plaintext` backend keeps itself (`secret_values`,
//! age ciphertext to the installation's recipient). No plaintext value is ever written here.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{now, Store, StoreError};

impl Store {
    /// Backend each migrated Secret lives on, by resource key (`Secret/name`, `Secret/p/name`).
    ///
    /// # Errors
    /// On a database error.
    pub async fn secret_locations(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let rows = sqlx::query("SELECT secret, backend FROM secret_locations").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get("secret")?, r.try_get("backend")?))).collect()
    }

    /// Record that `secret`'s values now live on `backend` (the flip of a migration).
    ///
    /// # Errors
    /// On a database error.
    pub async fn set_secret_location(&self, secret: &str, backend: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM secret_locations WHERE secret = $1").bind(secret).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO secret_locations (secret, backend, updated_at) VALUES ($1, $2, $3)")
            .bind(secret)
            .bind(backend)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ciphertext per key that the plaintext backend holds for `secret` (empty: none).
    ///
    /// # Errors
    /// On a database error.
    pub async fn secret_values(&self, secret: &str) -> Result<BTreeMap<String, String>, StoreError> {
        let rows = sqlx::query("SELECT key, ciphertext FROM secret_values WHERE secret = $1").bind(secret).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get("key")?, r.try_get("ciphertext")?))).collect()
    }

    /// Replace the ciphertext held for `secret` in one transaction.
    ///
    /// # Errors
    /// On a database error; nothing changes then.
    pub async fn put_secret_values(&self, secret: &str, values: &BTreeMap<String, String>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM secret_values WHERE secret = $1").bind(secret).execute(&mut *tx).await?;
        for (k, ct) in values {
            sqlx::query("INSERT INTO secret_values (secret, key, ciphertext) VALUES ($1, $2, $3)")
                .bind(secret)
                .bind(k)
                .bind(ct)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forget the ciphertext held for `secret`; already gone is success.
    ///
    /// # Errors
    /// On a database error.
    pub async fn delete_secret_values(&self, secret: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM secret_values WHERE secret = $1").bind(secret).execute(&self.pool).await?;
        Ok(())
    }

    /// Forget the location and held values of Secrets not in `keep` (deleted from the repo), so
    /// that a Secret added again under the same name starts from its repo definition.
    ///
    /// # Errors
    /// On a database error.
    pub async fn forget_other_secrets(&self, keep: &std::collections::BTreeSet<String>) -> Result<usize, StoreError> {
        let mut known: std::collections::BTreeSet<String> = self.secret_locations().await?.into_keys().collect();
        for r in sqlx::query("SELECT DISTINCT secret FROM secret_values").fetch_all(&self.pool).await? {
            known.insert(r.try_get("secret")?);
        }
        let gone: Vec<String> = known.into_iter().filter(|k| !keep.contains(k)).collect();
        for k in &gone {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM secret_locations WHERE secret = $1").bind(k).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM secret_values WHERE secret = $1").bind(k).execute(&mut *tx).await?;
            tx.commit().await?;
        }
        Ok(gone.len())
    }
}
