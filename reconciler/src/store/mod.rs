//! The runtime database: the `Store` handle, its errors, and opening/migrating SQLite or Postgres.
//! SQLite (embedded default) and Postgres share one code path through sqlx's `Any` driver; only
//! the migrations differ. Each table's jobs live in a child module: resources and apply
//! (`apply`), the deploy history (`deploys`), what the reconciler reports (`status`) and the
//! gateway's own rows (`gateway`), chat threads (`threads`), and the `mcpctl_deploy` channel
//! that tells gateways of each deploy on Postgres (`notify`).
//!
//! # Guarantees
//! A plan is applied in one transaction, after checking that the store still has the fingerprint
//! the plan was computed against; concurrent writers are serialized by a lock row, so two applies
//! cannot interleave. On any failure nothing changes (the failure itself is recorded as a deploy).

mod apply;
mod deploys;
mod gateway;
pub mod notify;
mod origins;
mod secrets;
mod status;
pub mod threads;
mod usage;

use std::time::Duration;

use serde::Serialize;
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

pub use deploys::{Deploy, DeployMeta};
pub use origins::Origin;
pub use usage::{TokenUse, ToolCalls};

/// Error from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL `{0}` (use sqlite://… or postgres://…)")]
    UnsupportedUrl(String),
    #[error("unsupported `synchronous={0}` in the SQLite URL (use `normal` or `full`)")]
    Synchronous(String),
    #[error("cannot open database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("no database at {path}: run `mcpctl apply` first")]
    NoDatabase { path: String },
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot lock {path} to migrate it: {source}")]
    MigrationLock {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("the store changed since the plan was made (plan fingerprint {planned}, store now {actual}); plan again")]
    StoreMoved { planned: String, actual: String },
    #[error("stored row {key} is corrupt: {message}")]
    Corrupt { key: String, message: String },
    /// A fenced write (see [`Store::fenced`]) found the leader lock no longer held by its
    /// connection; nothing was written.
    #[error("this reconciler lost the leader lock; nothing was written")]
    NotLeader,
    /// The newest deploy already records this commit (another leader applied it just before
    /// this one took over); nothing was written.
    #[error("deploy {id} already records this commit")]
    AlreadyRecorded { id: i64 },
}

/// Which database is behind the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Handle to the runtime database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The URL opened (for the connections that are not the pool's: the leader lock and the
    /// deploy listener). Never shown.
    url: std::sync::Arc<str>,
    /// Backend pid of the leader lock's connection: every write transaction of the reconciler
    /// checks that it still holds the lock before committing (see [`Store::fenced`]).
    fence: Option<i32>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Open (creating if needed) and migrate the database at `url`.
    ///
    /// # Errors
    /// Unsupported URL, unreachable server, or a failed migration.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Self::open(url, true).await
    }

    /// Open the database at `url` only if it exists: for commands that read, so that a wrong
    /// `--database-url` or a first `mcpctl get` does not leave an empty database behind.
    /// (A Postgres database is never created by mcpctl; this matters for SQLite files.)
    ///
    /// # Errors
    /// [`StoreError::NoDatabase`] when the SQLite file does not exist; as [`Store::connect`].
    pub async fn connect_existing(url: &str) -> Result<Store, StoreError> {
        Self::open(url, false).await
    }

    async fn open(url: &str, create: bool) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let mut url = url.to_string();
        let synchronous = if backend == Backend::Sqlite { Synchronous::take(&mut url)? } else { Synchronous::Normal };
        if backend == Backend::Sqlite && !url.contains(":memory:") {
            if let Some(path) = sqlite_path(&url).filter(|_| !create) {
                if !std::path::Path::new(&path).is_file() {
                    return Err(StoreError::NoDatabase { path });
                }
            }
            if let Some(path) = sqlite_path(&url).filter(|_| create) {
                if let Some(dir) = std::path::Path::new(&path).parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir { path: dir.display().to_string(), source })?;
                }
            }
            if !url.contains("mode=") {
                let mode = if create { "mode=rwc" } else { "mode=rw" };
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(mode);
            }
        }
        let mut opts = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(15));
        if backend == Backend::Sqlite {
            // One writer at a time is SQLite's model; a single connection also makes `:memory:`
            // databases behave as one database.
            opts = opts.max_connections(1).after_connect(move |conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                    sqlx::query(synchronous.pragma()).execute(&mut *conn).await?;
                    Ok(())
                })
            });
        } else {
            opts = opts.max_connections(8);
        }
        let pool = opts.connect(&url).await.map_err(StoreError::Connect)?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        // A store whose schema is current is only read here: read commands polling `status` while
        // `serve` deploys take no lock and write nothing (they used to run the migrator each time,
        // which starved the writer).
        if !migrated(&pool, &migrator).await {
            // Schema changes are serialised across processes: `serve` creating the database and a
            // CLI read opening it at the same moment would otherwise both apply the first migration
            // (SQLite's migrator takes no lock), and one of them would fail.
            let _migrating = match sqlite_path(&url).filter(|_| backend == Backend::Sqlite && !url.contains(":memory:")) {
                Some(path) => Some(MigrationLock::acquire(path).await?),
                None => None,
            };
            if backend == Backend::Sqlite && !url.contains(":memory:") {
                sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
            }
            migrator.run(&pool).await?;
        }
        Ok(Store { pool, backend, url: url.into(), fence: None })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL this store was opened with (it may hold a password: never log it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// This store whose deploy writes (applies and recorded attempts) commit only while the
    /// Postgres backend `lock_pid` holds the leader lock ([`crate::leader`]): the check runs in
    /// the write transaction just before `COMMIT`. `None`: unfenced.
    pub fn fenced(&self, lock_pid: Option<i32>) -> Store {
        Store { fence: lock_pid, ..self.clone() }
    }

    /// Fail with [`StoreError::NotLeader`] when this store is fenced and its lock is gone.
    async fn check_fence(&self, tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<(), StoreError> {
        use sqlx::Row;
        let Some(pid) = self.fence else { return Ok(()) };
        let (hi, lo) = crate::leader::key_halves();
        let row = sqlx::query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $1 AND classid::bigint = $2 AND objid::bigint = $3 AND objsubid = 1")
            .bind(pid)
            .bind(hi)
            .bind(lo)
            .fetch_one(&mut **tx)
            .await?;
        match row.try_get::<i64, _>("n")? {
            0 => Err(StoreError::NotLeader),
            _ => Ok(()),
        }
    }

    /// The reconcilers connected to this database and their roles (Postgres: from each lock
    /// connection's `application_name`; SQLite: none are known, so empty).
    ///
    /// # Errors
    /// On a database error.
    pub async fn reconcilers(&self) -> Result<Vec<(String, crate::leader::Role)>, StoreError> {
        use sqlx::Row;
        if self.backend != Backend::Postgres {
            return Ok(Vec::new());
        }
        let (hi, lo) = crate::leader::key_halves();
        let rows = sqlx::query("SELECT a.application_name AS name, EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.pid = a.pid AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 1) AS leader FROM pg_stat_activity a WHERE a.datname = current_database() AND a.application_name LIKE $3 ORDER BY 2 DESC, 1")
            .bind(hi)
            .bind(lo)
            .bind(format!("{}%", crate::leader::APPLICATION_NAME))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let leader: bool = r.try_get("leader")?;
                Ok((r.try_get("name")?, if leader { crate::leader::Role::Leader } else { crate::leader::Role::Standby }))
            })
            .collect()
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The `(…), (…)` placeholders of a multi-row statement: `rows` tuples of `cols` parameters,
    /// bound in order. Postgres numbers them (`$1, $2, …`); SQLite gets plain `?`, because the
    /// driver asks SQLite for every parameter's name on each execution and SQLite finds a named
    /// or numbered one (`$7`, `?7`) by a linear search, which made a 650-parameter audit insert
    /// spend more time binding than writing.
    pub(crate) fn value_rows(&self, rows: usize, cols: usize) -> String {
        let mut sql = String::with_capacity(rows * cols * 5);
        for row in 0..rows {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for col in 0..cols {
                if col > 0 {
                    sql.push_str(", ");
                }
                match self.backend {
                    Backend::Sqlite => sql.push('?'),
                    Backend::Postgres => {
                        use std::fmt::Write as _;
                        let _ = write!(sql, "${}", row * cols + col + 1);
                    }
                }
            }
            sql.push(')');
        }
        sql
    }
}

/// When a SQLite commit is on disk: `?synchronous=normal` (the default) or `?synchronous=full` on
/// a `sqlite:` URL (taken off before the URL reaches the driver).
///
/// # Guarantees
/// The database is in WAL mode (set when it is created). `normal`: a commit is written to the WAL
/// without waiting for the disk (the WAL is synced at each checkpoint), so it survives a crash or
/// kill of the process — no commit is lost and the file never corrupts — but the last commits
/// before a power loss or an OS crash may be rolled back (the database stays consistent).
/// `full`: every commit waits for an fsync (15–60 ms on a busy disk), so it survives power loss
/// too. See docs/gateway.md#database-durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Synchronous {
    Normal,
    Full,
}

impl Synchronous {
    /// Take `synchronous=…` out of the URL's query (the driver does not know it).
    fn take(url: &mut String) -> Result<Synchronous, StoreError> {
        let Some((base, query)) = url.split_once('?') else { return Ok(Synchronous::Normal) };
        let mut chosen = Synchronous::Normal;
        let mut kept = Vec::new();
        for param in query.split('&') {
            match param.strip_prefix("synchronous=") {
                Some(v) if v.eq_ignore_ascii_case("normal") => chosen = Synchronous::Normal,
                Some(v) if v.eq_ignore_ascii_case("full") => chosen = Synchronous::Full,
                Some(v) => return Err(StoreError::Synchronous(v.to_string())),
                None => kept.push(param),
            }
        }
        *url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        Ok(chosen)
    }

    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "PRAGMA synchronous = NORMAL",
            Synchronous::Full => "PRAGMA synchronous = FULL",
        }
    }
}

/// Whether every migration of `migrator` is recorded as applied (a read; no lock).
async fn migrated(pool: &AnyPool, migrator: &sqlx::migrate::Migrator) -> bool {
    use sqlx::Row;
    let Ok(rows) = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success").fetch_all(pool).await else { return false };
    let applied: std::collections::HashSet<i64> = rows.iter().filter_map(|r| r.try_get::<i64, _>("version").ok()).collect();
    migrator.iter().all(|m| applied.contains(&m.version))
}

/// An exclusive `flock` on `<database>.migrate-lock` while a SQLite schema is migrated, ordering
/// the mcpctl processes that open one store. A separate file on purpose: closing any descriptor of
/// the database file itself would drop the POSIX locks SQLite holds on it in this process (and a
/// reader elsewhere could then remove the WAL under a live writer). Released when dropped.
struct MigrationLock(#[allow(dead_code)] std::fs::File);

impl MigrationLock {
    async fn acquire(database: String) -> Result<Self, StoreError> {
        let path = format!("{database}.migrate-lock");
        let err = |source| StoreError::MigrationLock { path: path.clone(), source };
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(err)?;
        let file = tokio::task::spawn_blocking(move || {
            use std::os::fd::AsRawFd;
            // SAFETY: `file` owns a valid descriptor for the whole call.
            match unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } {
                0 => Ok(file),
                _ => Err(std::io::Error::last_os_error()),
            }
        })
        .await
        .map_err(|e| err(std::io::Error::other(e)))?
        .map_err(err)?;
        Ok(Self(file))
    }
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
