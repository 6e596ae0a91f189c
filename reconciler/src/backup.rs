//! Backup and restore of the runtime data: what the database holds that git does not (deploy
//! history, audit events, chat threads and messages, gate openings, token last use, where
//! migrated Secrets live and the values the plaintext backend seals), plus the deployed snapshot,
//! as one streamed, versioned archive of JSON lines. SQLite → Postgres is a backup and a restore.
//!
//! # Format (version 1)
//! ```text
//! {"format":"mcpctl-backup","version":1,"createdAt":"…","source":"sqlite","tables":["resources",…]}
//! {"table":"deploys","row":{"id":1,"revision":"…",…}}          one line per row, table by table
//! {"end":{"rows":{"resources":12,"deploys":3,…}}}              the row count of every table
//! ```
//! Values are JSON strings, integers or `null`, keyed by column name. A missing trailer (a cut
//! archive) or a count that does not match is refused.
//!
//! # Guarantees
//! - A backup reads every table inside one read transaction (Postgres: `REPEATABLE READ`,
//!   SQLite: one WAL snapshot), so the archive is consistent while gateways keep writing; rows are
//!   streamed (`fetch`), never a whole table in memory.
//! - A restore runs in one transaction: any bad line (named by its number) rolls everything back.
//!   Rows are keyed by their primary keys and inserted with `ON CONFLICT DO NOTHING`, so restoring
//!   twice, or into the installation the archive came from, changes nothing the second time; rows
//!   already present are kept as they are.
//! - Postgres sequences (`deploys`, `audit_events`, `chat_messages` ids) are moved past the
//!   restored ids, so new rows never collide with restored ones.
//!
//! # Caveats
//! The deployed snapshot (`resources`) is included so that a restored installation serves at
//! once what was deployed, with its history; the reconciler then plans the branch tip against it
//! as usual. Restore into an empty database (or the same installation): rows of the archive never
//! replace rows the target already has. Values in `secret_values` are age ciphertext to the
//! installation's own identity: keep that identity with the backup.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::store::{Backend, Store};

/// The `format` of the header line.
pub const FORMAT: &str = "mcpctl-backup";
/// The archive version this build writes and the newest it reads.
pub const VERSION: u32 = 1;
/// The longest line a restore accepts (a chat message or an audit error is far smaller).
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// The SQL type of a column, as the archive carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Text,
    Int,
}

/// A table the archive carries.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Column)],
    /// The primary key (the archive's row order).
    pub key: &'static [&'static str],
    /// A generated id column (a Postgres sequence to move past the restored ids).
    pub serial: Option<&'static str>,
}

use Column::{Int, Text};

/// Every table backed up, in restore order (threads before their messages).
pub const TABLES: &[Table] = &[
    Table {
        name: "resources",
        columns: &[
            ("kind", Text),
            ("project", Text),
            ("name", Text),
            ("body", Text),
            ("hash", Text),
            ("source", Text),
            ("revision", Text),
            ("updated_at", Text),
        ],
        key: &["kind", "project", "name"],
        serial: None,
    },
    Table {
        name: "deploys",
        columns: &[
            ("id", Int),
            ("revision", Text),
            ("actor", Text),
            ("message", Text),
            ("started_at", Text),
            ("finished_at", Text),
            ("outcome", Text),
            ("summary", Text),
            ("error", Text),
            ("author", Text),
            ("committer", Text),
            ("committed_at", Text),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "audit_events",
        columns: &[
            ("id", Int),
            ("at", Text),
            ("project", Text),
            ("token", Text),
            ("token_prefix", Text),
            ("session", Text),
            ("method", Text),
            ("server", Text),
            ("target", Text),
            ("duration_us", Int),
            ("outcome", Text),
            ("error", Text),
            ("revision", Text),
            ("thread_id", Text),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "gate_openings",
        columns: &[("project", Text), ("subject", Text), ("opened_at", Text)],
        key: &["project", "subject"],
        serial: None,
    },
    Table {
        name: "chat_threads",
        columns: &[
            ("id", Text),
            ("project", Text),
            ("agent", Text),
            ("owner", Text),
            ("personality", Text),
            ("title", Text),
            ("created_at", Text),
            ("updated_at", Text),
        ],
        key: &["id"],
        serial: None,
    },
    Table {
        name: "chat_messages",
        columns: &[
            ("id", Int),
            ("thread_id", Text),
            ("role", Text),
            ("content", Text),
            ("tool_calls", Text),
            ("tool_call_id", Text),
            ("is_error", Int),
            ("status", Text),
            ("error", Text),
            ("personality", Text),
            ("model", Text),
            ("prompt_tokens", Int),
            ("completion_tokens", Int),
            ("latency_ms", Int),
            ("created_at", Text),
            ("updated_at", Text),
        ],
        key: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "token_usage",
        columns: &[("hash", Text), ("project", Text), ("token", Text), ("last_used_at", Text), ("uses", Int)],
        key: &["hash"],
        serial: None,
    },
    Table {
        name: "secret_locations",
        columns: &[("secret", Text), ("backend", Text), ("updated_at", Text)],
        key: &["secret"],
        serial: None,
    },
    Table {
        name: "secret_values",
        columns: &[("secret", Text), ("key", Text), ("ciphertext", Text)],
        key: &["secret", "key"],
        serial: None,
    },
    // The per-minute aggregates of the audit log (the web UI's plots), kept as they are: the
    // events may have been pruned since.
    Table {
        name: "audit_minutes",
        columns: &[
            ("project", Text),
            ("minute", Text),
            ("server", Text),
            ("calls", Int),
            ("errors", Int),
            ("denied", Int),
            ("total_us", Int),
            ("h0", Int),
            ("h1", Int),
            ("h2", Int),
            ("h3", Int),
            ("h4", Int),
            ("h5", Int),
            ("h6", Int),
            ("h7", Int),
            ("h8", Int),
            ("h9", Int),
            ("h10", Int),
            ("h11", Int),
        ],
        key: &["project", "minute", "server"],
        serial: None,
    },
];

/// Tables deliberately left out, and why (a test checks every table is in one list or the other).
pub const NOT_BACKED_UP: &[(&str, &str)] = &[
    ("store_meta", "the apply lock, the drift flag and the fingerprint cache: recomputed by the next reconcile"),
    ("server_status", "what the runtimes report now: rewritten by the next sync"),
    ("_sqlx_migrations", "the schema itself: the target is migrated when it is opened"),
];

/// What went wrong in a backup or a restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("reading table {table}: {source}")]
    Read {
        table: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("writing the archive: {0}")]
    Write(#[source] std::io::Error),
    #[error("reading the archive at line {line}: {source}")]
    ReadArchive {
        line: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("line 1: not an mcpctl backup ({0})")]
    NotABackup(String),
    #[error("line 1: archive format version {found} is newer than this mcpctl reads (up to {VERSION}); restore it with a newer mcpctl")]
    NewerVersion { found: u64 },
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    #[error("line {line}: longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong { line: usize },
    #[error("line {line}: table {table} refused the row: {source}")]
    Insert {
        line: usize,
        table: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("the archive ends at line {lines} without its closing `end` line: it was cut short; nothing was restored")]
    Truncated { lines: usize },
    #[error("line {line}: the archive counts {expected} row(s) of {table}, but {found} came before it")]
    CountMismatch { line: usize, table: String, expected: u64, found: u64 },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The first line of an archive.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    format: String,
    version: u64,
    #[serde(default)]
    created_at: String,
    /// `sqlite` or `postgres`: where the archive was taken (informative).
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    tables: Vec<String>,
}

/// One table's part in a backup or restore.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    /// Rows in the archive.
    pub rows: u64,
    /// Restore only: rows written (the others were already present).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inserted: Option<u64>,
}

/// What a backup wrote or a restore read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub format: &'static str,
    pub version: u64,
    pub tables: Vec<TableCount>,
}

impl Summary {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// Row counts of every backed-up table (for a progress bar's length).
///
/// # Errors
/// A table that cannot be read.
pub async fn count(store: &Store) -> Result<u64, BackupError> {
    let mut total = 0;
    for t in TABLES {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", t.name))
            .fetch_one(store.pool())
            .await
            .map_err(|source| BackupError::Read { table: t.name, source })?;
        total += n as u64;
    }
    Ok(total)
}

/// Write every table of [`TABLES`] to `out` as an archive, calling `progress` after each row.
///
/// # Errors
/// A table that cannot be read or an archive that cannot be written; what was written is then
/// incomplete (no `end` line), and a restore refuses it.
pub async fn backup(store: &Store, out: &mut impl Write, mut progress: impl FnMut(u64)) -> Result<Summary, BackupError> {
    let mut tx = store.pool().begin().await?;
    if store.backend() == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    }
    let header = Header {
        format: FORMAT.into(),
        version: VERSION.into(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        source: Some(match store.backend() {
            Backend::Sqlite => "sqlite".into(),
            Backend::Postgres => "postgres".into(),
        }),
        tables: TABLES.iter().map(|t| t.name.to_string()).collect(),
    };
    line(out, &serde_json::to_value(&header).expect("a header serializes"))?;
    let mut tables = Vec::new();
    for t in TABLES {
        let columns: Vec<&str> = t.columns.iter().map(|(c, _)| *c).collect();
        let sql = format!("SELECT {} FROM {} ORDER BY {}", columns.join(", "), t.name, t.key.join(", "));
        let mut rows = sqlx::query(&sql).fetch(&mut *tx);
        let mut n = 0;
        while let Some(row) = rows.try_next().await.map_err(|source| BackupError::Read { table: t.name, source })? {
            let values = row_values(t, &row).map_err(|source| BackupError::Read { table: t.name, source })?;
            line(out, &serde_json::json!({ "table": t.name, "row": values }))?;
            n += 1;
            progress(1);
        }
        tables.push(TableCount { table: t.name, rows: n, inserted: None });
    }
    let counts: Map<String, Value> = tables.iter().map(|c| (c.table.to_string(), Value::from(c.rows))).collect();
    line(out, &serde_json::json!({ "end": { "rows": counts } }))?;
    out.flush().map_err(BackupError::Write)?;
    tx.rollback().await?;
    Ok(Summary { format: FORMAT, version: VERSION.into(), tables })
}

fn line(out: &mut impl Write, v: &Value) -> Result<(), BackupError> {
    serde_json::to_writer(&mut *out, v).map_err(|e| BackupError::Write(e.into()))?;
    out.write_all(b"\n").map_err(BackupError::Write)
}

fn row_values(t: &Table, row: &AnyRow) -> Result<Map<String, Value>, sqlx::Error> {
    let mut m = Map::new();
    for (i, (name, ty)) in t.columns.iter().enumerate() {
        let v = match ty {
            Text => row.try_get::<Option<String>, _>(i)?.map(Value::from),
            Int => row.try_get::<Option<i64>, _>(i)?.map(Value::from),
        };
        m.insert((*name).to_string(), v.unwrap_or(Value::Null));
    }
    Ok(m)
}

/// Read an archive from `input` into `store` in one transaction, calling `progress` with the
/// bytes of each line read.
///
/// # Errors
/// Not an archive, a newer format, a bad or cut line (named by number), a row the database
/// refuses: then nothing is restored.
pub async fn restore(store: &Store, input: &mut impl BufRead, mut progress: impl FnMut(u64)) -> Result<Summary, BackupError> {
    let mut buf = Vec::new();
    let mut number = 1;
    if !read_line(input, &mut buf, number)? {
        return Err(BackupError::NotABackup("the file is empty".into()));
    }
    progress(buf.len() as u64);
    let header: Header = serde_json::from_slice(&buf).map_err(|e| BackupError::NotABackup(e.to_string()))?;
    if header.format != FORMAT {
        return Err(BackupError::NotABackup(format!("format `{}`, expected `{FORMAT}`", header.format)));
    }
    if header.version > u64::from(VERSION) {
        return Err(BackupError::NewerVersion { found: header.version });
    }
    let by_name: BTreeMap<&str, usize> = TABLES.iter().enumerate().map(|(i, t)| (t.name, i)).collect();
    let mut counts: Vec<TableCount> = TABLES.iter().map(|t| TableCount { table: t.name, rows: 0, inserted: Some(0) }).collect();
    let sql: Vec<String> = TABLES.iter().map(insert_sql).collect();
    let mut tx = store.pool().begin().await?;
    let mut ended = false;
    loop {
        number += 1;
        if !read_line(input, &mut buf, number)? {
            break;
        }
        progress(buf.len() as u64);
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = |message: String| BackupError::Line { line: number, message };
        if ended {
            return Err(bad("content after the `end` line".into()));
        }
        let entry: Value = serde_json::from_slice(&buf).map_err(|e| bad(format!("not JSON: {e}")))?;
        if let Some(end) = entry.get("end") {
            check_counts(end, &counts, number)?;
            ended = true;
            continue;
        }
        let table = entry.get("table").and_then(Value::as_str).ok_or_else(|| bad("neither a row nor the `end` line".into()))?;
        let &i = by_name.get(table).ok_or_else(|| bad(format!("unknown table `{table}`")))?;
        let t = &TABLES[i];
        let row = entry.get("row").and_then(Value::as_object).ok_or_else(|| bad(format!("a `{table}` line without its `row` object")))?;
        if let Some(extra) = row.keys().find(|k| !t.columns.iter().any(|(c, _)| c == k)) {
            return Err(bad(format!("table {table} has no column `{extra}`")));
        }
        let mut q = sqlx::query(&sql[i]);
        for (name, ty) in t.columns {
            let v = row.get(*name).unwrap_or(&Value::Null);
            q = match (ty, v) {
                (Text, Value::Null) => q.bind(None::<String>),
                (Int, Value::Null) => q.bind(None::<i64>),
                (Text, Value::String(s)) => q.bind(Some(s.clone())),
                (Int, Value::Number(n)) if n.is_i64() => q.bind(n.as_i64()),
                (Text, _) => return Err(bad(format!("{table}.{name} must be a string or null, got {v}"))),
                (Int, _) => return Err(bad(format!("{table}.{name} must be an integer or null, got {v}"))),
            };
        }
        let done = q.execute(&mut *tx).await.map_err(|source| BackupError::Insert { line: number, table: t.name, source })?;
        counts[i].rows += 1;
        *counts[i].inserted.as_mut().expect("restore counts") += done.rows_affected();
    }
    if !ended {
        return Err(BackupError::Truncated { lines: number - 1 });
    }
    if store.backend() == Backend::Postgres {
        for t in TABLES {
            if let Some(id) = t.serial {
                let name = t.name;
                sqlx::query(&format!(
                    "SELECT setval(pg_get_serial_sequence('{name}', '{id}'), COALESCE((SELECT MAX({id}) FROM {name}), 0) + 1, false)"
                ))
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(Summary { format: FORMAT, version: header.version, tables: counts })
}

fn insert_sql(t: &Table) -> String {
    let names: Vec<&str> = t.columns.iter().map(|(c, _)| *c).collect();
    let params: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    format!("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING", t.name, names.join(", "), params.join(", "))
}

fn check_counts(end: &Value, counts: &[TableCount], line: usize) -> Result<(), BackupError> {
    let rows =
        end.get("rows").and_then(Value::as_object).ok_or(BackupError::Line { line, message: "the `end` line lacks `rows`".into() })?;
    for c in counts {
        let expected = rows.get(c.table).and_then(Value::as_u64).unwrap_or(0);
        if expected != c.rows {
            return Err(BackupError::CountMismatch { line, table: c.table.into(), expected, found: c.rows });
        }
    }
    if let Some(unknown) = rows.keys().find(|k| !counts.iter().any(|c| c.table == k.as_str())) {
        return Err(BackupError::Line { line, message: format!("the `end` line counts an unknown table `{unknown}`") });
    }
    Ok(())
}

/// Read one line (without its `\n`) into `buf`, refusing more than [`MAX_LINE_BYTES`]; `false`
/// at the end of the input.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>, line: usize) -> Result<bool, BackupError> {
    buf.clear();
    let err = |source| BackupError::ReadArchive { line, source };
    loop {
        let chunk = input.fill_buf().map_err(err)?;
        if chunk.is_empty() {
            return Ok(!buf.is_empty());
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if buf.len() + take > MAX_LINE_BYTES + 1 {
            return Err(BackupError::LineTooLong { line });
        }
        buf.extend_from_slice(&chunk[..take]);
        input.consume(take);
        if done {
            buf.pop();
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_whole_and_bounded() {
        let mut input = std::io::Cursor::new(b"one\ntwo".to_vec());
        let mut buf = Vec::new();
        assert!(read_line(&mut input, &mut buf, 1).unwrap());
        assert_eq!(buf, b"one");
        assert!(read_line(&mut input, &mut buf, 2).unwrap());
        assert_eq!(buf, b"two");
        assert!(!read_line(&mut input, &mut buf, 3).unwrap());
        let long = vec![b'x'; MAX_LINE_BYTES + 2];
        let mut input = std::io::BufReader::with_capacity(1024, std::io::Cursor::new(long));
        assert!(matches!(read_line(&mut input, &mut buf, 7), Err(BackupError::LineTooLong { line: 7 })));
    }

    #[test]
    fn inserts_name_every_column_and_skip_present_keys() {
        let sql = insert_sql(&TABLES[3]);
        assert_eq!(sql, "INSERT INTO gate_openings (project, subject, opened_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING");
    }
}
