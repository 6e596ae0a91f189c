//! The `deploys` table: the history of applies, failed ones included, and what is in force.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now, Store, StoreError};
use crate::plan::Summary;

/// Who/what an apply is for.
#[derive(Debug, Clone, Default)]
pub struct DeployMeta {
    pub revision: String,
    pub actor: String,
    pub message: Option<String>,
    /// The commit deployed, when the revision is a git commit.
    pub commit: Option<crate::source::CommitInfo>,
}

/// One row of the deploy history (deserialized by `mcpctl history` from the REST API).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deploy {
    pub id: i64,
    pub revision: String,
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    /// `applied`, `unchanged` or `failed`.
    pub outcome: String,
    pub summary: Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<String>,
}

/// Which deploys a recorded attempt must not repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Once {
    /// Always record (drift reverts, `mcpctl apply`: the same revision may be recorded again).
    Always,
    /// Skip when the newest deploy is this revision with a good outcome (`applied`/`unchanged`).
    Good,
    /// Skip when the newest deploy is this revision with outcome `failed`.
    Failed,
}

impl Store {
    /// Record a finished attempt with its outcome in its own transaction; with `once`, the
    /// existing row when the newest deploy already records it.
    pub(super) async fn record(
        &self,
        meta: &DeployMeta,
        started: &str,
        outcome: &str,
        summary: Summary,
        error: Option<&str>,
        once: Once,
    ) -> Result<Deploy, StoreError> {
        let mut tx = self.pool.begin().await?;
        if once != Once::Always {
            // Serialized with applies, so the newest row read is the one this would follow.
            sqlx::query("UPDATE store_meta SET value = value WHERE key = 'lock'").execute(&mut *tx).await?;
            if let Some(d) = newest_if_recorded(&mut tx, &meta.revision, once).await? {
                return Ok(d);
            }
        }
        let d = insert_deploy(&mut tx, meta, started, outcome, summary, error).await?;
        self.check_fence(&mut tx).await?;
        tx.commit().await?;
        Ok(d)
    }

    /// Record a deploy that never reached the database (e.g. an invalid commit).
    ///
    /// # Guarantees
    /// Idempotent: when the newest deploy already records `meta.revision` as failed, that row is
    /// returned and nothing is written (a standby taking over re-reads the same commit).
    ///
    /// # Errors
    /// On a database error; [`StoreError::NotLeader`] from a fenced store that lost its lock.
    pub async fn record_failure(&self, meta: &DeployMeta, error: &str) -> Result<Deploy, StoreError> {
        self.record(meta, &now(), "failed", Summary::default(), Some(error), Once::Failed).await
    }

    /// Record a commit that changes nothing the reconciler reads (its folder's tree is the one
    /// in force) as an `unchanged` deploy, without touching the resources.
    ///
    /// # Guarantees
    /// Idempotent like [`Store::record_failure`] (for a newest deploy `applied` or `unchanged`).
    ///
    /// # Errors
    /// As [`Store::record_failure`].
    pub async fn record_unchanged(&self, meta: &DeployMeta) -> Result<Deploy, StoreError> {
        self.record(meta, &now(), "unchanged", Summary::default(), None, Once::Good).await
    }

    /// The newest deploy whose outcome is `applied` or `unchanged`: what is in force.
    ///
    /// # Errors
    /// On a database error.
    pub async fn last_good_deploy(&self) -> Result<Option<Deploy>, StoreError> {
        let rows = sqlx::query("SELECT id, revision, actor, message, started_at, finished_at, outcome, summary, error, author, committer, committed_at FROM deploys WHERE outcome <> 'failed' ORDER BY id DESC LIMIT 1")
            .fetch_all(&self.pool)
            .await?;
        rows.first().map(deploy_from_row).transpose()
    }

    /// The newest `limit` deploys, newest first.
    ///
    /// # Errors
    /// On a database error.
    pub async fn deploys(&self, limit: i64) -> Result<Vec<Deploy>, StoreError> {
        let rows = sqlx::query("SELECT id, revision, actor, message, started_at, finished_at, outcome, summary, error, author, committer, committed_at FROM deploys ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(deploy_from_row).collect()
    }
}

pub(super) async fn insert_deploy(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    meta: &DeployMeta,
    started: &str,
    outcome: &str,
    summary: Summary,
    error: Option<&str>,
) -> Result<Deploy, StoreError> {
    let finished = now();
    let summary_json = serde_json::to_string(&summary).expect("summary serializes");
    let row = sqlx::query("INSERT INTO deploys (revision, actor, message, started_at, finished_at, outcome, summary, error, author, committer, committed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id, revision, actor, message, started_at, finished_at, outcome, summary, error, author, committer, committed_at")
        .bind(&meta.revision)
        .bind(&meta.actor)
        .bind(meta.message.clone())
        .bind(started)
        .bind(&finished)
        .bind(outcome)
        .bind(&summary_json)
        .bind(error.map(str::to_string))
        .bind(meta.commit.as_ref().map(|c| c.author.clone()))
        .bind(meta.commit.as_ref().map(|c| c.committer.clone()))
        .bind(meta.commit.as_ref().map(|c| c.time.clone()))
        .fetch_one(&mut **tx)
        .await?;
    let deploy = deploy_from_row(&row)?;
    super::notify::deployed(tx, deploy.id).await?;
    Ok(deploy)
}

/// The newest deploy, when it records `revision` with the outcome `once` looks for.
pub(super) async fn newest_if_recorded(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    revision: &str,
    once: Once,
) -> Result<Option<Deploy>, StoreError> {
    let row = sqlx::query("SELECT id, revision, actor, message, started_at, finished_at, outcome, summary, error, author, committer, committed_at FROM deploys ORDER BY id DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    let Some(d) = row.as_ref().map(deploy_from_row).transpose()? else { return Ok(None) };
    let same = d.revision == revision
        && match once {
            Once::Always => false,
            Once::Good => d.outcome != "failed",
            Once::Failed => d.outcome == "failed",
        };
    Ok(same.then_some(d))
}

fn deploy_from_row(row: &AnyRow) -> Result<Deploy, StoreError> {
    let summary: String = row.try_get("summary")?;
    Ok(Deploy {
        id: row.try_get("id")?,
        revision: row.try_get("revision")?,
        actor: row.try_get("actor")?,
        message: row.try_get("message")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        outcome: row.try_get("outcome")?,
        summary: serde_json::from_str(&summary).unwrap_or_default(),
        error: row.try_get("error")?,
        author: row.try_get("author")?,
        committer: row.try_get("committer")?,
        committed_at: row.try_get("committed_at")?,
    })
}
