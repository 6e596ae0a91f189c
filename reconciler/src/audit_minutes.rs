//! Per-minute aggregates of the audit log (table `audit_minutes`, migration 0015): calls,
//! errors, denials, total and a latency histogram per (project, minute, server). Written by
//! [`Store::insert_audit`] in the same transaction as the events, so the two never disagree; read
//! by the web UI's plots, which then never scan the events.
//!
//! # Guarantees
//! One upsert row per (project, minute, server) of a batch: a batch of many events of one minute
//! costs one row write, not one per event. Percentiles read from the histogram are the upper
//! bound of the bucket they fall in ([`Minute::percentile_us`]), so they never understate.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::audit::AuditEvent;
use crate::store::{Store, StoreError};

/// Upper bounds (exclusive, µs) of the histogram's buckets; the last bucket has none.
pub const BOUNDS_US: [i64; 11] = [1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000];
/// Buckets of the histogram (`h0`..`h11`).
pub const BUCKETS: usize = BOUNDS_US.len() + 1;

/// Rows per multi-row upsert (19 parameters each).
const BATCH: usize = 40;

/// One (project, minute, server) aggregate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Minute {
    pub project: String,
    /// `YYYY-MM-DDTHH:MM`, UTC.
    pub minute: String,
    pub server: String,
    pub calls: i64,
    pub errors: i64,
    pub denied: i64,
    pub total_us: i64,
    pub histogram: [i64; BUCKETS],
}

impl Minute {
    fn add(&mut self, e: &AuditEvent) {
        self.calls += 1;
        self.errors += i64::from(e.outcome == "error");
        self.denied += i64::from(e.outcome == "denied");
        self.total_us += e.duration_us;
        self.histogram[bucket(e.duration_us)] += 1;
    }

    /// Fold `other` (same server) into this one.
    pub fn merge(&mut self, other: &Minute) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.denied += other.denied;
        self.total_us += other.total_us;
        for (a, b) in self.histogram.iter_mut().zip(other.histogram) {
            *a += b;
        }
    }

    /// The `p`-th percentile (0 < p <= 100) of latency, as the upper bound of its bucket in µs
    /// (the last bucket, unbounded, reports the previous bound); `None` without calls.
    pub fn percentile_us(&self, p: f64) -> Option<i64> {
        let total: i64 = self.histogram.iter().sum();
        if total == 0 {
            return None;
        }
        // The rank of the percentile, 1-based and rounded up (nearest-rank method).
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as i64;
        let mut seen = 0;
        for (i, n) in self.histogram.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(BOUNDS_US.get(i).copied().unwrap_or(BOUNDS_US[BOUNDS_US.len() - 1]));
            }
        }
        Some(BOUNDS_US[BOUNDS_US.len() - 1])
    }
}

/// The histogram bucket of a duration.
pub fn bucket(duration_us: i64) -> usize {
    BOUNDS_US.iter().position(|b| duration_us < *b).unwrap_or(BOUNDS_US.len())
}

/// The batch's events gathered per (project, minute, server); `initialize` is not counted.
fn gather(events: &[AuditEvent]) -> Vec<Minute> {
    let mut by: BTreeMap<(&str, &str, &str), Minute> = BTreeMap::new();
    for e in events.iter().filter(|e| e.method != "initialize") {
        let minute = e.at.get(..16).unwrap_or(&e.at);
        by.entry((&e.project, minute, &e.server))
            .or_insert_with(|| Minute {
                project: e.project.clone(),
                minute: minute.to_string(),
                server: e.server.clone(),
                ..Minute::default()
            })
            .add(e);
    }
    by.into_values().collect()
}

/// Add `events` to the aggregates inside the caller's transaction (that of the events).
///
/// # Errors
/// On a database error (the caller's transaction then writes nothing).
pub(crate) async fn record(tx: &mut sqlx::Transaction<'_, sqlx::Any>, events: &[AuditEvent]) -> Result<(), StoreError> {
    let rows = gather(events);
    for chunk in rows.chunks(BATCH) {
        let mut sql = String::from("INSERT INTO audit_minutes (project, minute, server, calls, errors, denied, total_us, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            sql.push_str(&(1..=19).map(|k| format!("${}", i * 19 + k)).collect::<Vec<_>>().join(", "));
            sql.push(')');
        }
        sql.push_str(" ON CONFLICT (project, minute, server) DO UPDATE SET calls = audit_minutes.calls + excluded.calls, errors = audit_minutes.errors + excluded.errors, denied = audit_minutes.denied + excluded.denied, total_us = audit_minutes.total_us + excluded.total_us");
        for h in 0..BUCKETS {
            sql.push_str(&format!(", h{h} = audit_minutes.h{h} + excluded.h{h}"));
        }
        let mut q = sqlx::query(&sql);
        for m in chunk {
            q = q.bind(&m.project).bind(&m.minute).bind(&m.server).bind(m.calls).bind(m.errors).bind(m.denied).bind(m.total_us);
            for n in m.histogram {
                q = q.bind(n);
            }
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Delete the aggregates of minutes before `before` (RFC 3339; its minute is kept).
pub(crate) async fn prune(store: &Store, before: &str) -> Result<u64, StoreError> {
    let minute = before.get(..16).unwrap_or(before);
    Ok(sqlx::query("DELETE FROM audit_minutes WHERE minute < $1").bind(minute).execute(store.pool()).await?.rows_affected())
}

impl Store {
    /// The aggregates of `project` from minute `since` (`YYYY-MM-DDTHH:MM`, inclusive) of its
    /// `top` busiest servers there, summed per server over buckets of the first `prefix`
    /// characters of the minute (16: a minute, 15: ten minutes, 13: an hour), oldest first, at
    /// most `limit` rows. The bucket's `minute` is that prefix. (Rows cost more to hand over
    /// than to sum: the grouping and the choice of servers are done in SQL.)
    ///
    /// # Errors
    /// On a database error.
    pub async fn audit_minutes(
        &self,
        project: &str,
        since: &str,
        prefix: usize,
        top: usize,
        limit: i64,
    ) -> Result<Vec<Minute>, StoreError> {
        // An integer of 13..=16 put in the text (no parameter: Postgres wants an integer there).
        let prefix = prefix.clamp(13, 16);
        let mut sums = String::new();
        for col in ["calls", "errors", "denied", "total_us"].into_iter().map(str::to_owned).chain((0..BUCKETS).map(|h| format!("h{h}"))) {
            sums.push_str(&format!(", CAST(SUM({col}) AS BIGINT) AS {col}"));
        }
        let sql = format!("SELECT server, substr(minute, 1, {prefix}) AS bucket{sums} FROM audit_minutes WHERE project = $1 AND minute >= $2 AND server IN (SELECT server FROM audit_minutes WHERE project = $1 AND minute >= $2 GROUP BY server ORDER BY SUM(calls) DESC, server LIMIT $3) GROUP BY server, substr(minute, 1, {prefix}) ORDER BY bucket, server LIMIT $4");
        let top = i64::try_from(top.max(1)).unwrap_or(i64::MAX);
        let rows = sqlx::query(&sql).bind(project).bind(since).bind(top).bind(limit.max(1)).fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                let mut histogram = [0; BUCKETS];
                for (h, slot) in histogram.iter_mut().enumerate() {
                    *slot = r.try_get(format!("h{h}").as_str())?;
                }
                Ok(Minute {
                    project: project.to_string(),
                    minute: r.try_get("bucket")?,
                    server: r.try_get("server")?,
                    calls: r.try_get("calls")?,
                    errors: r.try_get("errors")?,
                    denied: r.try_get("denied")?,
                    total_us: r.try_get("total_us")?,
                    histogram,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_percentiles() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(999), 0);
        assert_eq!(bucket(1_000), 1);
        assert_eq!(bucket(10_000_000), BUCKETS - 1);
        let mut m = Minute::default();
        // 90 calls under 1 ms, 10 calls of 30 ms: p50 is the first bound, p95 the 50 ms one.
        m.histogram[0] = 90;
        m.histogram[bucket(30_000)] = 10;
        assert_eq!(m.percentile_us(50.0), Some(1_000));
        assert_eq!(m.percentile_us(90.0), Some(1_000));
        assert_eq!(m.percentile_us(95.0), Some(50_000));
        assert_eq!(Minute::default().percentile_us(50.0), None);
    }
}
