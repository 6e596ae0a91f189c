//! When each token was last used (`token_usage`): the gateway's batched writes and the read
//! behind `mcpctl get mcptokens`; and who called which tool lately (counted from
//! `audit_events`), for the blast radius of a review.

use std::collections::HashMap;

use sqlx::Row;

use super::{Store, StoreError};

/// Uses of one token since the last write (or, read back, in total).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUse {
    /// `sha256:<hex>` of the raw token (McpToken.spec.hash), never the token.
    pub hash: String,
    pub project: String,
    /// The McpToken's name.
    pub token: String,
    /// RFC 3339, milliseconds, UTC.
    pub last_used_at: String,
    pub uses: i64,
}

/// `tools/call` requests of one token to one tool, counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCalls {
    /// The server's name in the project.
    pub server: String,
    /// The tool as the server names it.
    pub tool: String,
    pub token: String,
    pub count: i64,
}

/// Rows per multi-row INSERT (5 parameters each).
const BATCH: usize = 100;

impl Store {
    /// Add `uses` in one transaction: counts are summed, the later `last_used_at` kept.
    ///
    /// # Errors
    /// On a database error (nothing of the batch is written).
    pub async fn record_token_use(&self, uses: &[TokenUse]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for chunk in uses.chunks(BATCH) {
            let sql = format!(
                "INSERT INTO token_usage (hash, project, token, last_used_at, uses) VALUES {} ON CONFLICT (hash) DO UPDATE SET \
                 project = excluded.project, token = excluded.token, uses = token_usage.uses + excluded.uses, \
                 last_used_at = CASE WHEN excluded.last_used_at > token_usage.last_used_at THEN excluded.last_used_at ELSE token_usage.last_used_at END",
                self.value_rows(chunk.len(), 5)
            );
            let mut q = sqlx::query(&sql);
            for u in chunk {
                q = q.bind(&u.hash).bind(&u.project).bind(&u.token).bind(&u.last_used_at).bind(u.uses);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every token's usage, by hash.
    ///
    /// # Errors
    /// On a database error.
    pub async fn token_usage(&self) -> Result<HashMap<String, TokenUse>, StoreError> {
        let rows = sqlx::query("SELECT hash, project, token, last_used_at, uses FROM token_usage").fetch_all(self.pool()).await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            let u = TokenUse {
                hash: r.try_get("hash")?,
                project: r.try_get("project")?,
                token: r.try_get("token")?,
                last_used_at: r.try_get("last_used_at")?,
                uses: r.try_get("uses")?,
            };
            out.insert(u.hash.clone(), u);
        }
        Ok(out)
    }

    /// `tools/call` requests served in `project` since `since` (RFC 3339), counted per server,
    /// tool and token.
    ///
    /// # Errors
    /// On a database error.
    pub async fn tool_calls(&self, project: &str, since: &str) -> Result<Vec<ToolCalls>, StoreError> {
        let rows = sqlx::query(
            "SELECT server, target, token, COUNT(*) AS n FROM audit_events WHERE project = $1 AND method = 'tools/call' AND at >= $2 \
             GROUP BY server, target, token ORDER BY server, target, token",
        )
        .bind(project)
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ToolCalls {
                    server: r.try_get("server")?,
                    tool: r.try_get("target")?,
                    token: r.try_get("token")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }
}
