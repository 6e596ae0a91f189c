//! The leader lock: among reconcilers sharing one Postgres database, the one holding a
//! session-level advisory lock applies commits and runs servers; the others are standbys that
//! try again every [`RETRY`].
//!
//! # Guarantees
//! The lock lives on a connection of its own, held for as long as this process leads: when the
//! process dies (kill -9 included) or that connection drops, Postgres releases the lock and a
//! standby takes it at its next try. A leader checks its connection before each reconcile, and
//! the store checks in every write transaction of the reconciler, just before `COMMIT`, that the
//! lock is still held by that connection (see [`crate::Store::fenced`]): a leader that lost its
//! lock applies nothing more.
//!
//! # Caveats
//! SQLite is a single-node store: there is no lock, and a second reconciler on the same file is
//! serialized only by the store's write lock (see `docs/scale-out.md`).

use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Row};

/// The advisory lock key: FNV-1a (64-bit) of `mcpctl-reconciler`, fixed so that every version
/// of mcpctl contends for the same lock.
pub const LOCK_KEY: i64 = fnv1a64(b"mcpctl-reconciler") as i64;

/// How often a standby tries to take the lock.
pub const RETRY: Duration = Duration::from_secs(1);

/// The `application_name` prefix of lock connections: how `status` finds reconcilers.
pub const APPLICATION_NAME: &str = "mcpctl-reconciler";

/// Longest wait for one query on the lock connection: a partitioned network counts as a drop.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The log line of a standby (logged once per standby spell).
pub const STANDBY_MESSAGE: &str = "standby: waiting for the leader lock";

const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

/// The two 32-bit halves Postgres shows a bigint advisory key as (`pg_locks.classid`, `objid`).
pub(crate) fn key_halves() -> (i64, i64) {
    let k = LOCK_KEY as u64;
    ((k >> 32) as i64, (k & 0xffff_ffff) as i64)
}

/// Error of the leader lock.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("bad database URL for the leader lock: {0}")]
    Url(#[source] sqlx::Error),
    #[error("connecting for the leader lock: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("the leader lock's connection failed: {0}")]
    Query(#[source] sqlx::Error),
    #[error("the leader lock's connection did not answer within {0:?}")]
    Timeout(Duration),
}

/// What this reconciler is among those sharing the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// SQLite: the only reconciler, no lock.
    Single,
    /// Holds the lock: applies commits and runs servers.
    Leader,
    /// Waits for the lock; applies nothing.
    Standby,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Single => "single",
            Role::Leader => "leader",
            Role::Standby => "standby",
        })
    }
}

/// A candidate for the leader lock: its connection (kept while it lasts, so standbys show in
/// `pg_stat_activity` too) and whether it holds the lock.
pub struct LeaderLock {
    options: PgConnectOptions,
    conn: Option<PgConnection>,
    /// Backend pid of `conn` while it holds the lock.
    held_by: Option<i32>,
}

impl std::fmt::Debug for LeaderLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderLock").field("held_by", &self.held_by).finish_non_exhaustive()
    }
}

impl LeaderLock {
    /// A candidate on the Postgres database at `url`; nothing is connected yet.
    ///
    /// # Errors
    /// [`LeaderError::Url`] when `url` does not parse.
    pub fn new(url: &str) -> Result<LeaderLock, LeaderError> {
        let options = PgConnectOptions::from_str(url).map_err(LeaderError::Url)?.application_name(&application_name());
        Ok(LeaderLock { options, conn: None, held_by: None })
    }

    /// The backend pid of the lock connection while the lock is held.
    pub fn held_by(&self) -> Option<i32> {
        self.held_by
    }

    /// Make sure of the lock: when held, check that the connection still holds it; when not,
    /// try to take it once (connecting first if needed). Returns whether it is held now.
    ///
    /// # Errors
    /// When the connection cannot be made or fails; the lock is not held then (a failed
    /// connection is dropped, so Postgres releases whatever it held).
    pub async fn ensure(&mut self) -> Result<bool, LeaderError> {
        let result = self.ensure_inner().await;
        if result.is_err() {
            self.conn = None;
            self.held_by = None;
        }
        result
    }

    async fn ensure_inner(&mut self) -> Result<bool, LeaderError> {
        if self.conn.is_none() {
            let conn = timed(self.options.connect()).await?.map_err(LeaderError::Connect)?;
            self.conn = Some(conn);
        }
        let conn = self.conn.as_mut().expect("connected above");
        if self.held_by.is_some() {
            let (hi, lo) = key_halves();
            let row = timed(
                sqlx::query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid() AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1")
                    .bind(hi)
                    .bind(lo)
                    .fetch_one(&mut *conn),
            )
            .await?
            .map_err(LeaderError::Query)?;
            let n: i64 = row.try_get("n").map_err(LeaderError::Query)?;
            if n == 0 {
                self.held_by = None;
            }
            return Ok(self.held_by.is_some());
        }
        let row =
            timed(sqlx::query("SELECT pg_try_advisory_lock($1) AS taken, pg_backend_pid() AS pid").bind(LOCK_KEY).fetch_one(&mut *conn))
                .await?
                .map_err(LeaderError::Query)?;
        let taken: bool = row.try_get("taken").map_err(LeaderError::Query)?;
        if taken {
            self.held_by = Some(row.try_get("pid").map_err(LeaderError::Query)?);
        }
        Ok(taken)
    }

    /// Give the lock up by closing its connection (a standby keeps trying afterwards).
    pub async fn release(&mut self) {
        self.held_by = None;
        if let Some(conn) = self.conn.take() {
            let _ = timed(conn.close()).await;
        }
    }
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> Result<T, LeaderError> {
    tokio::time::timeout(QUERY_TIMEOUT, f).await.map_err(|_| LeaderError::Timeout(QUERY_TIMEOUT))
}

/// `mcpctl-reconciler <host> pid <pid>`, cut to Postgres' 63 bytes.
fn application_name() -> String {
    let mut name = format!("{APPLICATION_NAME} {} pid {}", hostname(), std::process::id());
    while name.len() > 63 {
        name.pop();
    }
    name
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname NUL-terminates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_fnv1a_of_the_fixed_name() {
        // Known FNV-1a 64 vectors, so the key cannot drift silently between versions.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(LOCK_KEY, -2_448_823_072_530_306_447, "docs/scale-out.md names this key");
        let (hi, lo) = key_halves();
        assert_eq!(((hi as u64) << 32) | lo as u64, LOCK_KEY as u64);
    }

    #[test]
    fn application_names_fit_postgres() {
        let n = application_name();
        assert!(n.starts_with(APPLICATION_NAME) && n.len() <= 63, "{n}");
    }
}
