//! Where each stored resource came from and which deploy last wrote it (`source`, `revision`,
//! `updated_at` of the `resources` table), without the bodies: what the web UI shows on a
//! resource's page and lists for a deploy.

use std::str::FromStr;

use schema::{Kind, ResourceKey};
use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};

/// The origin of one stored resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Origin {
    pub key: ResourceKey,
    /// `file:line:col` in the repo, when it came from a file.
    pub source: Option<String>,
    /// The revision (commit) of the deploy that last created or changed it.
    pub revision: String,
    pub updated_at: String,
}

impl Store {
    /// The origin of one resource (`project`: `None` for a global one).
    ///
    /// # Errors
    /// On a database error.
    pub async fn origin(&self, kind: Kind, project: Option<&str>, name: &str) -> Result<Option<Origin>, StoreError> {
        let row = sqlx::query(
            "SELECT kind, project, name, source, revision, updated_at FROM resources WHERE kind = $1 AND project = $2 AND name = $3",
        )
        .bind(kind.as_str())
        .bind(project.unwrap_or_default())
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(origin_from_row).transpose()
    }

    /// The origins of the resources last written by the deploys of `revisions`, by key, at most
    /// `limit` of them.
    ///
    /// # Errors
    /// On a database error.
    pub async fn origins_of(&self, revisions: &[String], limit: i64) -> Result<Vec<Origin>, StoreError> {
        if revisions.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=revisions.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT kind, project, name, source, revision, updated_at FROM resources WHERE revision IN ({}) ORDER BY kind, project, name LIMIT ${}",
            marks.join(", "),
            revisions.len() + 1
        );
        let mut q = sqlx::query(&sql);
        for r in revisions {
            q = q.bind(r);
        }
        let rows = q.bind(limit.max(1)).fetch_all(&self.pool).await?;
        rows.iter().map(origin_from_row).collect()
    }
}

fn origin_from_row(row: &sqlx::any::AnyRow) -> Result<Origin, StoreError> {
    let kind: String = row.try_get("kind")?;
    let project: String = row.try_get("project")?;
    let name: String = row.try_get("name")?;
    let kind = Kind::from_str(&kind).map_err(|e| StoreError::Corrupt { key: format!("{kind}/{name}"), message: e.to_string() })?;
    Ok(Origin {
        key: ResourceKey::new(kind, Some(project.as_str()).filter(|p| !p.is_empty()), &name),
        source: row.try_get("source")?,
        revision: row.try_get("revision")?,
        updated_at: row.try_get("updated_at")?,
    })
}
