//! The `resources` table: reading what is applied, and applying a plan in one transaction.

use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::Row;

use schema::{Kind, ResourceKey};

use super::deploys::{insert_deploy, newest_if_recorded, Once};
use super::{now, Deploy, DeployMeta, Store, StoreError};
use crate::plan::{body_hash, Action, Plan, StoredHash, StoredResource};

/// Rows per multi-row INSERT (8 parameters each; well under SQLite's limit).
const INSERT_BATCH: usize = 200;

/// Keys per multi-row DELETE (3 parameters each): 100 000 deletes are 200 statements, not
/// 100 000 round trips (Postgres: 14 s → well under 3 s).
const DELETE_BATCH: usize = 500;

impl Store {
    /// Every stored resource, hashes recomputed from bodies.
    ///
    /// # Errors
    /// On a database error or a row whose kind this build does not know.
    pub async fn resources(&self) -> Result<Vec<StoredResource>, StoreError> {
        use futures::TryStreamExt;
        // Rows are decoded one at a time as they stream in: the table is held once, as
        // `StoredResource`s, never also as driver rows.
        let mut rows =
            sqlx::query("SELECT kind, project, name, body, source, revision, updated_at FROM resources ORDER BY kind, project, name")
                .fetch(&self.pool);
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await? {
            out.push(stored_from_row(&row)?);
        }
        Ok(out)
    }

    /// What a plan needs of the table, read in one transaction (one state of the store): every
    /// row's key and body hash, and the whole rows of the keys `changed` picks from those (see
    /// [`crate::plan::changed_keys`]; [`crate::plan::plan_hashed`] plans on the two).
    ///
    /// Bodies are hashed as they stream in and dropped, so the table's bodies are never held,
    /// only those of the rows a plan changes.
    ///
    /// # Errors
    /// On a database error or a row whose kind this build does not know.
    pub async fn resources_for_plan(
        &self,
        changed: impl FnOnce(&[StoredHash]) -> Vec<ResourceKey>,
    ) -> Result<(Vec<StoredHash>, Vec<StoredResource>), StoreError> {
        use futures::TryStreamExt;
        let mut tx = self.pool.begin().await?;
        if self.backend == super::Backend::Postgres {
            // Both reads see one snapshot (SQLite's deferred transaction already does).
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        }
        let mut hashes = Vec::new();
        if self.backend == super::Backend::Sqlite {
            // A row through the driver costs more than its bytes (a trip between the SQLite
            // thread and this one, copies into `Any` values): rows come packed, many to a row.
            let mut packs = sqlx::query(PACKED_ROWS).fetch(&mut *tx);
            while let Some(pack) = packs.try_next().await? {
                unpack_rows(pack.try_get("packed")?, &mut hashes)?;
            }
        } else {
            let mut rows = sqlx::query("SELECT kind, project, name, body FROM resources").fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                let body: &str = row.try_get("body")?;
                hashes.push(StoredHash { hash: body_hash(body), key: key_of_row(&row)? });
            }
        }
        hashes.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let keys = changed(&hashes);
        let mut full = Vec::with_capacity(keys.len());
        for batch in keys.chunks(DELETE_BATCH) {
            let sql = format!(
                "SELECT kind, project, name, body, source, revision, updated_at FROM resources WHERE (kind, project, name) IN (VALUES {})",
                self.value_rows(batch.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for k in batch {
                q = q.bind(k.kind.as_str()).bind(k.project.as_str()).bind(k.name.as_str());
            }
            let mut rows = q.fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                full.push(stored_from_row(&row)?);
            }
        }
        tx.commit().await?;
        Ok((hashes, full))
    }

    /// The fingerprint the store keeps for its rows (see [`Store::apply_knowing`]), or `None`
    /// when unknown (a row changed since, or the last apply did not know it).
    ///
    /// # Errors
    /// On a database error.
    pub async fn kept_fingerprint(&self) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let kept = kept_fingerprint(&mut tx).await?;
        tx.commit().await?;
        Ok(kept)
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
        self.apply_knowing(plan, meta, progress, None).await
    }

    /// [`Store::apply_knowing`] of a new commit by the reconciler: refused with
    /// [`StoreError::AlreadyRecorded`] when the newest deploy already records `meta.revision` as
    /// applied or unchanged (checked under the write lock, so a leader taking over cannot
    /// record the deploy its predecessor committed an instant before).
    ///
    /// # Errors
    /// As [`Store::apply`]; [`StoreError::NotLeader`] from a fenced store that lost its lock.
    /// Neither of the two is recorded as a failed deploy.
    pub async fn apply_commit(&self, plan: &Plan, meta: &DeployMeta, after: Option<&str>) -> Result<Deploy, StoreError> {
        self.apply_once(plan, meta, &|_, _| {}, after, Once::Good).await
    }

    /// [`Store::apply`] by a caller that knows the store's [`crate::plan::fingerprint`] after the
    /// plan is applied (`after`): it is kept, so the next apply checks its base without hashing
    /// every stored body. Only pass what the rows will hash to (e.g. the reconciler's own copy of
    /// the table with the plan applied); `None` leaves the next check to the table.
    ///
    /// # Errors
    /// As [`Store::apply`].
    pub async fn apply_knowing(
        &self,
        plan: &Plan,
        meta: &DeployMeta,
        progress: &(dyn Fn(usize, usize) + Sync),
        after: Option<&str>,
    ) -> Result<Deploy, StoreError> {
        self.apply_once(plan, meta, progress, after, Once::Always).await
    }

    async fn apply_once(
        &self,
        plan: &Plan,
        meta: &DeployMeta,
        progress: &(dyn Fn(usize, usize) + Sync),
        after: Option<&str>,
        once: Once,
    ) -> Result<Deploy, StoreError> {
        let started = now();
        match self.apply_tx(plan, meta, &started, progress, after, once).await {
            Ok(d) => Ok(d),
            Err(e @ (StoreError::NotLeader | StoreError::AlreadyRecorded { .. })) => Err(e),
            Err(e) => {
                // Best effort: the apply already failed; a failure to record it must not hide why.
                let _ = self.record(meta, &started, "failed", plan.summary, Some(&e.to_string()), Once::Always).await;
                Err(e)
            }
        }
    }

    async fn apply_tx(
        &self,
        plan: &Plan,
        meta: &DeployMeta,
        started: &str,
        progress: &(dyn Fn(usize, usize) + Sync),
        after: Option<&str>,
        once: Once,
    ) -> Result<Deploy, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Take the write lock first: serializes concurrent appliers on both backends.
        sqlx::query("UPDATE store_meta SET value = value WHERE key = 'lock'").execute(&mut *tx).await?;
        if once != Once::Always {
            if let Some(d) = newest_if_recorded(&mut tx, &meta.revision, once).await? {
                return Err(StoreError::AlreadyRecorded { id: d.id });
            }
        }
        let actual = match kept_fingerprint(&mut tx).await? {
            Some(kept) => kept,
            None => stream_fingerprint(&mut tx).await?,
        };
        if actual != plan.base_fingerprint {
            return Err(StoreError::StoreMoved { planned: plan.base_fingerprint.clone(), actual });
        }
        let total = plan.changes.len();
        let ts = now();
        let mut done = 0;
        // An update rewrites every column, so it is a delete and an insert of the row, both in
        // batches, in the same transaction (the table has no foreign keys or triggers).
        let gone: Vec<&crate::plan::Change> = plan.changes.iter().filter(|c| c.action != Action::Create).collect();
        for batch in gone.chunks(DELETE_BATCH) {
            let sql = format!("DELETE FROM resources WHERE (kind, project, name) IN (VALUES {})", self.value_rows(batch.len(), 3));
            let mut q = sqlx::query(&sql);
            for c in batch {
                q = q.bind(c.kind.as_str()).bind(c.project.clone().unwrap_or_default()).bind(c.name.clone());
            }
            q.execute(&mut *tx).await?;
            done += batch.iter().filter(|c| c.action == Action::Delete).count();
            progress(done, total);
        }
        let inserts: Vec<&crate::plan::Change> = plan.changes.iter().filter(|c| c.action != Action::Delete).collect();
        for batch in inserts.chunks(INSERT_BATCH) {
            let sql = format!(
                "INSERT INTO resources (kind, project, name, body, hash, source, revision, updated_at) VALUES {}",
                self.value_rows(batch.len(), 8)
            );
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
        // After the writes (whose triggers cleared it): the fingerprint of the rows as they now
        // are, when known. An empty plan leaves the rows, so their fingerprint is the one checked.
        let after = if plan.is_empty() { Some(actual.as_str()) } else { after };
        if let Some(after) = after {
            sqlx::query("UPDATE store_meta SET value = $1 WHERE key = 'fingerprint'").bind(after).execute(&mut *tx).await?;
        }
        let outcome = if plan.is_empty() { "unchanged" } else { "applied" };
        let deploy = insert_deploy(&mut tx, meta, started, outcome, plan.summary, None).await?;
        self.check_fence(&mut tx).await?;
        tx.commit().await?;
        Ok(deploy)
    }
}

/// The fingerprint kept by the last apply that knew it, if no row changed since (see migration
/// 0014: any change to `resources` clears it in its own transaction).
async fn kept_fingerprint(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT value FROM store_meta WHERE key = 'fingerprint'").fetch_optional(&mut **tx).await?;
    Ok(row.map(|r| r.try_get::<String, _>("value")).transpose()?.filter(|v| !v.is_empty()))
}

/// The store's [`fingerprint`], computed from rows streamed one at a time: only each key and
/// body hash is kept, never the table's bodies (which `plan` already holds once).
async fn stream_fingerprint(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<String, StoreError> {
    use futures::TryStreamExt;
    let mut rows = sqlx::query("SELECT kind, project, name, body FROM resources").fetch(&mut **tx);
    let mut keys = Vec::new();
    while let Some(row) = rows.try_next().await? {
        let body: &str = row.try_get("body")?;
        keys.push((key_of_row(&row)?, body_hash(body)));
    }
    Ok(crate::plan::fingerprint_of(keys))
}

/// Every row's kind, project, name and body, 1,000 rows to a result row (SQLite): each field as
/// its length in bytes, `:`, and its bytes, concatenated (see [`unpack_rows`]).
const PACKED_ROWS: &str = "SELECT group_concat(octet_length(kind) || ':' || kind || octet_length(project) || ':' || project || octet_length(name) || ':' || name || octet_length(body) || ':' || body, '') AS packed FROM resources GROUP BY rowid / 1000";

/// The (key, body hash) of each row of one [`PACKED_ROWS`] result.
fn unpack_rows(mut packed: &str, out: &mut Vec<StoredHash>) -> Result<(), StoreError> {
    /// The next field: its length, `:`, its bytes.
    fn field<'a>(packed: &mut &'a str) -> Result<&'a str, StoreError> {
        let corrupt = || StoreError::Corrupt { key: "(packed rows)".into(), message: "not the layout `PACKED_ROWS` writes".into() };
        let (len, rest) = packed.split_once(':').ok_or_else(corrupt)?;
        let len: usize = len.parse().map_err(|_| corrupt())?;
        let value = rest.get(..len).ok_or_else(corrupt)?;
        *packed = &rest[len..];
        Ok(value)
    }
    while !packed.is_empty() {
        let (kind, project, name, body) = (field(&mut packed)?, field(&mut packed)?, field(&mut packed)?, field(&mut packed)?);
        out.push(StoredHash { key: key_of(kind, project, name)?, hash: body_hash(body) });
    }
    Ok(())
}

/// The key of a row with `kind`, `project` and `name` columns.
fn key_of_row(row: &AnyRow) -> Result<ResourceKey, StoreError> {
    key_of(row.try_get("kind")?, row.try_get("project")?, row.try_get("name")?)
}

/// The key of a row's `kind`, `project` and `name`.
fn key_of(kind: &str, project: &str, name: &str) -> Result<ResourceKey, StoreError> {
    let kind = Kind::from_str(kind).map_err(|e| StoreError::Corrupt { key: format!("{kind}/{name}"), message: e.to_string() })?;
    Ok(ResourceKey::new(kind, Some(project).filter(|p| !p.is_empty()), name))
}

fn stored_from_row(row: &AnyRow) -> Result<StoredResource, StoreError> {
    let body: String = row.try_get("body")?;
    Ok(StoredResource {
        key: key_of_row(row)?,
        hash: body_hash(&body),
        body,
        source: row.try_get("source")?,
        revision: row.try_get("revision")?,
        updated_at: row.try_get("updated_at")?,
    })
}
