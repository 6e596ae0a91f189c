//! The runtime database: resources as applied, and the deploy history. SQLite (embedded default)
//! and Postgres share one code path through sqlx's `Any` driver; only the migrations differ.
//!
//! # Guarantees
//! A plan is applied in one transaction, after checking that the store still has the fingerprint
//! the plan was computed against; concurrent writers are serialized by a lock row, so two applies
//! cannot interleave. On any failure nothing changes (the failure itself is recorded as a deploy).

use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use schema::{Kind, ResourceKey};

use crate::plan::{body_hash, fingerprint, Action, Plan, StoredResource, Summary};

/// Error from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL `{0}` (use sqlite://… or postgres://…)")]
    UnsupportedUrl(String),
    #[error("cannot open database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir { path: String, #[source] source: std::io::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("the store changed since the plan was made (plan fingerprint {planned}, store now {actual}); plan again")]
    StoreMoved { planned: String, actual: String },
    #[error("stored row {key} is corrupt: {message}")]
    Corrupt { key: String, message: String },
}

/// Which database is behind the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Who/what an apply is for.
#[derive(Debug, Clone, Default)]
pub struct DeployMeta {
    pub revision: String,
    pub actor: String,
    pub message: Option<String>,
    /// The commit deployed, when the revision is a git commit.
    pub commit: Option<crate::source::CommitInfo>,
}

/// One row of the deploy history.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// Handle to the runtime database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Rows per multi-row INSERT (8 parameters each; well under SQLite's limit).
const INSERT_BATCH: usize = 200;

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Open (creating if needed) and migrate the database at `url`.
    ///
    /// # Errors
    /// Unsupported URL, unreachable server, or a failed migration.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let mut url = url.to_string();
        if backend == Backend::Sqlite && !url.contains(":memory:") {
            if let Some(path) = sqlite_path(&url) {
                if let Some(dir) = std::path::Path::new(&path).parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir { path: dir.display().to_string(), source })?;
                }
            }
            if !url.contains("mode=") {
                url.push_str(if url.contains('?') { "&mode=rwc" } else { "?mode=rwc" });
            }
        }
        let mut opts = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(15));
        if backend == Backend::Sqlite {
            // One writer at a time is SQLite's model; a single connection also makes `:memory:`
            // databases behave as one database.
            opts = opts.max_connections(1).after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                    Ok(())
                })
            });
        } else {
            opts = opts.max_connections(8);
        }
        let pool = opts.connect(&url).await.map_err(StoreError::Connect)?;
        if backend == Backend::Sqlite && !url.contains(":memory:") {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Every stored resource, hashes recomputed from bodies.
    ///
    /// # Errors
    /// On a database error or a row whose kind this build does not know.
    pub async fn resources(&self) -> Result<Vec<StoredResource>, StoreError> {
        let rows = sqlx::query("SELECT kind, project, name, body, source, revision, updated_at FROM resources ORDER BY kind, project, name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(stored_from_row).collect()
    }

    /// Stored resources of one kind (and optionally one project).
    ///
    /// # Errors
    /// On a database error.
    pub async fn resources_of(&self, kind: Kind, project: Option<&str>) -> Result<Vec<StoredResource>, StoreError> {
        let rows = match project {
            Some(p) => sqlx::query("SELECT kind, project, name, body, source, revision, updated_at FROM resources WHERE kind = $1 AND project = $2 ORDER BY project, name")
                .bind(kind.as_str())
                .bind(p)
                .fetch_all(&self.pool)
                .await?,
            None => sqlx::query("SELECT kind, project, name, body, source, revision, updated_at FROM resources WHERE kind = $1 ORDER BY project, name")
                .bind(kind.as_str())
                .fetch_all(&self.pool)
                .await?,
        };
        rows.iter().map(stored_from_row).collect()
    }

    /// Apply `plan` atomically and record the deploy.
    ///
    /// `progress` is called with (done, total) as changes are written.
    ///
    /// # Errors
    /// [`StoreError::StoreMoved`] when the store no longer matches the plan's base; any database
    /// error. In both cases nothing is changed and a `failed` deploy is recorded.
    pub async fn apply(&self, plan: &Plan, meta: &DeployMeta, progress: &(dyn Fn(usize, usize) + Sync)) -> Result<Deploy, StoreError> {
        let started = now();
        match self.apply_tx(plan, meta, &started, progress).await {
            Ok(d) => Ok(d),
            Err(e) => {
                // Best effort: the apply already failed; a failure to record it must not hide why.
                let _ = self.record(meta, &started, "failed", plan.summary, Some(&e.to_string())).await;
                Err(e)
            }
        }
    }

    async fn apply_tx(&self, plan: &Plan, meta: &DeployMeta, started: &str, progress: &(dyn Fn(usize, usize) + Sync)) -> Result<Deploy, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Take the write lock first: serializes concurrent appliers on both backends.
        sqlx::query("UPDATE store_meta SET value = value WHERE key = 'lock'").execute(&mut *tx).await?;
        let rows = sqlx::query("SELECT kind, project, name, body, source, revision, updated_at FROM resources")
            .fetch_all(&mut *tx)
            .await?;
        let current: Vec<StoredResource> = rows.iter().map(stored_from_row).collect::<Result<_, _>>()?;
        let actual = fingerprint(&current);
        if actual != plan.base_fingerprint {
            return Err(StoreError::StoreMoved { planned: plan.base_fingerprint.clone(), actual });
        }
        let total = plan.changes.len();
        let ts = now();
        let mut done = 0;
        let mut inserts = Vec::new();
        for c in &plan.changes {
            match c.action {
                Action::Delete => {
                    sqlx::query("DELETE FROM resources WHERE kind = $1 AND project = $2 AND name = $3")
                        .bind(c.kind.as_str())
                        .bind(c.project.clone().unwrap_or_default())
                        .bind(&c.name)
                        .execute(&mut *tx)
                        .await?;
                    done += 1;
                    progress(done, total);
                }
                Action::Update => {
                    let body = c.desired.as_ref().map(|d| d.to_string()).unwrap_or_default();
                    sqlx::query("UPDATE resources SET body = $1, hash = $2, source = $3, revision = $4, updated_at = $5 WHERE kind = $6 AND project = $7 AND name = $8")
                        .bind(&body)
                        .bind(body_hash(&body))
                        .bind(c.source.clone())
                        .bind(&meta.revision)
                        .bind(&ts)
                        .bind(c.kind.as_str())
                        .bind(c.project.clone().unwrap_or_default())
                        .bind(&c.name)
                        .execute(&mut *tx)
                        .await?;
                    done += 1;
                    progress(done, total);
                }
                Action::Create => inserts.push(c),
            }
        }
        for batch in inserts.chunks(INSERT_BATCH) {
            let mut sql = String::from("INSERT INTO resources (kind, project, name, body, hash, source, revision, updated_at) VALUES ");
            for i in 0..batch.len() {
                let b = i * 8;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("(${},${},${},${},${},${},${},${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8));
            }
            let mut q = sqlx::query(&sql);
            for c in batch {
                let body = c.desired.as_ref().map(|d| d.to_string()).unwrap_or_default();
                let hash = body_hash(&body);
                q = q
                    .bind(c.kind.as_str())
                    .bind(c.project.clone().unwrap_or_default())
                    .bind(c.name.clone())
                    .bind(body)
                    .bind(hash)
                    .bind(c.source.clone())
                    .bind(meta.revision.clone())
                    .bind(ts.clone());
            }
            q.execute(&mut *tx).await?;
            done += batch.len();
            progress(done, total);
        }
        let outcome = if plan.is_empty() { "unchanged" } else { "applied" };
        let deploy = insert_deploy(&mut tx, meta, started, outcome, plan.summary, None).await?;
        tx.commit().await?;
        Ok(deploy)
    }

    async fn record(&self, meta: &DeployMeta, started: &str, outcome: &str, summary: Summary, error: Option<&str>) -> Result<Deploy, StoreError> {
        let mut tx = self.pool.begin().await?;
        let d = insert_deploy(&mut tx, meta, started, outcome, summary, error).await?;
        tx.commit().await?;
        Ok(d)
    }

    /// Record a deploy that never reached the database (e.g. an invalid commit).
    ///
    /// # Errors
    /// On a database error.
    pub async fn record_failure(&self, meta: &DeployMeta, error: &str) -> Result<Deploy, StoreError> {
        self.record(meta, &now(), "failed", Summary::default(), Some(error)).await
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

    /// Record the drift last seen by the reconciler (empty: none).
    ///
    /// # Errors
    /// On a database error.
    pub async fn set_drift(&self, drift: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE store_meta SET value = $1 WHERE key = 'drift'").bind(drift).execute(&self.pool).await?;
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
        let rows = sqlx::query("SELECT runtime, server, state, updated_at FROM server_status ORDER BY runtime, server").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get("state")?;
                Ok((r.try_get("runtime")?, r.try_get("server")?, serde_json::from_str(&state).unwrap_or(serde_json::Value::Null), r.try_get("updated_at")?))
            })
            .collect()
    }

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
        let row = sqlx::query("SELECT opened_at FROM gate_openings WHERE project = $1 AND subject = $2").bind(project).bind(subject).fetch_optional(&self.pool).await?;
        Ok(match row {
            Some(r) => Some(r.try_get("opened_at")?),
            None => None,
        })
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

async fn insert_deploy(
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
    deploy_from_row(&row)
}

fn stored_from_row(row: &AnyRow) -> Result<StoredResource, StoreError> {
    let kind: String = row.try_get("kind")?;
    let project: String = row.try_get("project")?;
    let name: String = row.try_get("name")?;
    let body: String = row.try_get("body")?;
    let kind = Kind::from_str(&kind).map_err(|e| StoreError::Corrupt { key: format!("{kind}/{name}"), message: e.to_string() })?;
    Ok(StoredResource {
        key: ResourceKey::new(kind, Some(&project).filter(|p| !p.is_empty()).map(|p| p.as_str()), &name),
        hash: body_hash(&body),
        body,
        source: row.try_get("source")?,
        revision: row.try_get("revision")?,
        updated_at: row.try_get("updated_at")?,
    })
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

/// The file path inside a `sqlite://` URL.
fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty()).then(|| path.to_string())
}

/// `sqlite://` URL of a file path.
pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}", path.display())
}
