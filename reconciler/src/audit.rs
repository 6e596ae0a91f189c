//! The audit log table: what the gateway records about every MCP session start and every
//! `tools/call`, `prompts/get` and `resources/read`, and the queries behind
//! `mcpctl get auditevents` and `/api/v1/auditevents`.
//!
//! # Guarantees
//! A batch is written in one transaction, with its per-minute aggregates
//! ([`crate::audit_minutes`]). [`Store::prune_audit`] deletes old events in bounded
//! statements, so retention never holds a long lock. Token values never reach this table: only the token's
//! resource name and the first characters of its hash.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::store::{Store, StoreError};

/// One audited MCP request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Database id (0 until stored).
    #[serde(default)]
    pub id: i64,
    /// RFC 3339, milliseconds, UTC.
    pub at: String,
    pub project: String,
    /// The McpToken's name (`-` for an anonymous caller of a public project).
    pub token: String,
    /// The first 12 hex digits of the token's SHA-256 (`-` when anonymous).
    pub token_prefix: String,
    /// MCP session id (`-` for a stateless request).
    pub session: String,
    /// `initialize`, `tools/call`, `prompts/get` or `resources/read`.
    pub method: String,
    /// The upstream server (`-` when the gateway answered itself).
    pub server: String,
    /// The tool, prompt or resource URI as the upstream knows it.
    pub target: String,
    pub duration_us: i64,
    /// `ok`, `error` (the upstream or the gateway failed) or `denied` (RBAC or gate).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The deployed commit (revision) in force when the request was served.
    pub revision: String,
    /// The chat thread, for a tool an agent called during a chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub project: Option<String>,
    pub token: Option<String>,
    /// RFC 3339 lower bound on `at`.
    pub since: Option<String>,
    /// Only events of this chat thread.
    pub thread: Option<String>,
    /// Only events of this upstream server.
    pub server: Option<String>,
    /// Only events of this tool, prompt or resource URI (`target`).
    pub target: Option<String>,
    /// Only events with this outcome (`ok`, `error`, `denied`).
    pub outcome: Option<String>,
    /// RFC 3339 upper bound on `at` (exclusive).
    pub until: Option<String>,
    /// Keyset pagination: only events with an id below this one (the last id of the page
    /// before).
    pub before: Option<i64>,
    pub limit: i64,
}

/// Rows per multi-row INSERT (13 parameters each).
const BATCH: usize = 50;

impl Store {
    /// Append events in one transaction.
    ///
    /// # Errors
    /// On a database error (nothing of the batch is written).
    pub async fn insert_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for chunk in events.chunks(BATCH) {
            let sql = format!(
                "INSERT INTO audit_events (at, project, token, token_prefix, session, method, server, target, duration_us, outcome, error, revision, thread_id) VALUES {}",
                self.value_rows(chunk.len(), 13)
            );
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(&e.at)
                    .bind(&e.project)
                    .bind(&e.token)
                    .bind(&e.token_prefix)
                    .bind(&e.session)
                    .bind(&e.method)
                    .bind(&e.server)
                    .bind(&e.target)
                    .bind(e.duration_us)
                    .bind(&e.outcome)
                    .bind(e.error.clone())
                    .bind(&e.revision)
                    .bind(e.thread.clone());
            }
            q.execute(&mut *tx).await?;
        }
        crate::audit_minutes::record(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Delete the events recorded before `before` (RFC 3339, as `at` is stored), at most `batch`
    /// rows per statement, until none is left; returns how many were deleted.
    ///
    /// # Errors
    /// On a database error (the statements done by then stay done).
    pub async fn prune_audit(&self, before: &str, batch: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let done = sqlx::query("DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < $1 ORDER BY id LIMIT $2)")
                .bind(before)
                .bind(batch.max(1))
                .execute(self.pool())
                .await?
                .rows_affected();
            total += done;
            if done < u64::try_from(batch.max(1)).unwrap_or(u64::MAX) {
                crate::audit_minutes::prune(self, before).await?;
                return Ok(total);
            }
        }
    }

    /// Events matching `filter`, newest first.
    ///
    /// # Errors
    /// On a database error.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        let mut sql = String::from("SELECT id, at, project, token, token_prefix, session, method, server, target, duration_us, outcome, error, revision, thread_id FROM audit_events WHERE 1 = 1");
        let mut args: Vec<&str> = Vec::new();
        for (col, op, val) in [
            ("project", "=", &filter.project),
            ("token", "=", &filter.token),
            ("at", ">=", &filter.since),
            ("thread_id", "=", &filter.thread),
            ("server", "=", &filter.server),
            ("target", "=", &filter.target),
            ("outcome", "=", &filter.outcome),
            ("at", "<", &filter.until),
        ] {
            if let Some(v) = val {
                args.push(v);
                sql.push_str(&format!(" AND {col} {op} ${}", args.len()));
            }
        }
        let mut n = args.len();
        if filter.before.is_some() {
            n += 1;
            sql.push_str(&format!(" AND id < ${n}"));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", n + 1));
        let mut q = sqlx::query(&sql);
        for a in args {
            q = q.bind(a);
        }
        if let Some(b) = filter.before {
            q = q.bind(b);
        }
        let rows = q.bind(filter.limit.max(1)).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    project: r.try_get("project")?,
                    token: r.try_get("token")?,
                    token_prefix: r.try_get("token_prefix")?,
                    session: r.try_get("session")?,
                    method: r.try_get("method")?,
                    server: r.try_get("server")?,
                    target: r.try_get("target")?,
                    duration_us: r.try_get("duration_us")?,
                    outcome: r.try_get("outcome")?,
                    error: r.try_get("error")?,
                    revision: r.try_get("revision")?,
                    thread: r.try_get("thread_id")?,
                })
            })
            .collect()
    }
}
