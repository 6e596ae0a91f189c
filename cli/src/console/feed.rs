//! Following the gateway's audit log as it grows, for the console's Audit tab and
//! `mcpctl get auditevents --watch`: through the API (`/api/v1/auditevents/stream`, SSE) when a
//! gateway URL is known, else from the database by polling with a keyset cursor (`at`, `id`).
//!
//! # Limits
//! An SSE frame over [`MAX_FRAME`] bytes ends the stream with an error. A database poll reads at
//! most [`POLL_BATCH`] events; if more than that arrive within one [`POLL_EVERY`], the oldest of
//! them are skipped and a `dropped` notice says so.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::remote::Remote;

/// Largest SSE frame accepted (bytes).
pub const MAX_FRAME: usize = 1 << 20;
/// Events read per database poll.
pub const POLL_BATCH: i64 = 1000;
/// Interval between database polls.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// What a follower reports.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedItem {
    /// One audit event (JSON as the API shows it: `at`, `token`, `server`, `target`, …).
    Event(Value),
    /// This many events were lost (the subscriber fell behind).
    Dropped(u64),
    /// The stream ended normally (e.g. the gateway is stopping), with the reason.
    Ended(String),
    /// Following failed.
    Failed(String),
}

/// One line of an event, as the Audit tab and `--watch` show it.
pub fn line(e: &Value) -> String {
    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("-").to_owned();
    let ms = e.get("durationUs").and_then(Value::as_i64).map(|us| format!("{:.1} ms", us as f64 / 1000.0)).unwrap_or_default();
    let at = s("at");
    let time = at.get(11..23).unwrap_or(&at);
    format!("{time:<12}  {:<16} {:<12} {:<14} {:<28} {:<7} {ms:>10}", s("token"), s("server"), s("method"), s("target"), s("outcome"))
}

/// Column titles matching [`line`].
pub fn header() -> String {
    format!("{:<12}  {:<16} {:<12} {:<14} {:<28} {:<7} {:>10}", "TIME", "TOKEN", "SERVER", "METHOD", "TOOL", "OUTCOME", "LATENCY")
}

/// Follow the stream of `remote`'s token's project until it ends or `out` is dropped.
pub async fn follow_api(remote: Remote, out: mpsc::UnboundedSender<FeedItem>) {
    if let Err(e) = stream(&remote, &out).await {
        let _ = out.send(FeedItem::Failed(e));
    }
}

async fn stream(remote: &Remote, out: &mpsc::UnboundedSender<FeedItem>) -> Result<(), String> {
    let rb = remote.request(reqwest::Method::GET, "/api/v1/auditevents/stream").header("Accept", "text/event-stream");
    let mut resp = remote.send(rb).await.map_err(|e| e.to_string())?;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let chunk = tokio::select! {
            c = resp.chunk() => c.map_err(|e| format!("the audit stream broke: {e}"))?,
            () = out.closed() => return Ok(()),
        };
        let Some(chunk) = chunk else {
            let _ = out.send(FeedItem::Ended("the gateway closed the stream".into()));
            return Ok(());
        };
        buf.extend_from_slice(&chunk);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = buf.drain(..end + 2).collect();
            if let Some(item) = parse_frame(&String::from_utf8_lossy(&frame)) {
                let last = matches!(item, FeedItem::Ended(_));
                if out.send(item).is_err() || last {
                    return Ok(());
                }
            }
        }
        if buf.len() > MAX_FRAME {
            return Err(format!("an audit stream frame exceeded {MAX_FRAME} bytes"));
        }
    }
}

/// One SSE frame (`event:` and `data:` lines; `:` comments are keep-alives).
fn parse_frame(frame: &str) -> Option<FeedItem> {
    let mut event = "message";
    let mut data = String::new();
    for l in frame.lines() {
        if let Some(v) = l.strip_prefix("event:") {
            event = v.trim();
        } else if let Some(v) = l.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    let v: Value = serde_json::from_str(&data).ok()?;
    match event {
        "audit" => Some(FeedItem::Event(v)),
        "dropped" => Some(FeedItem::Dropped(v.get("dropped").and_then(Value::as_u64).unwrap_or(0))),
        "end" => Some(FeedItem::Ended(v.get("reason").and_then(Value::as_str).unwrap_or("ended").to_owned())),
        _ => None,
    }
}

/// The JSON of a stored event as the API shows it (no session id, no row id).
pub fn public(e: &reconciler::audit::AuditEvent) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.remove("session");
        o.remove("id");
    }
    v
}

/// Follow the database: events after `(since, after_id)` matching `project` and `token`, polled
/// every [`POLL_EVERY`], oldest first.
pub async fn follow_db(
    store: reconciler::Store,
    project: Option<String>,
    token: Option<String>,
    mut since: Option<String>,
    mut after_id: i64,
    out: mpsc::UnboundedSender<FeedItem>,
) {
    loop {
        let filter = reconciler::audit::AuditFilter {
            project: project.clone(),
            token: token.clone(),
            since: since.clone(),
            limit: POLL_BATCH,
            ..Default::default()
        };
        let batch = match store.audit_events(&filter).await {
            Ok(b) => b,
            Err(e) => {
                let _ = out.send(FeedItem::Failed(format!("reading the audit log: {e}")));
                return;
            }
        };
        let full = batch.len() as i64 >= POLL_BATCH;
        let mut new: Vec<_> = batch.into_iter().filter(|e| e.id > after_id).collect();
        new.reverse();
        if full && new.len() as i64 >= POLL_BATCH {
            let _ = out.send(FeedItem::Dropped(0));
        }
        for e in new {
            after_id = e.id;
            since = Some(e.at.clone());
            if out.send(FeedItem::Event(public(&e))).is_err() {
                return;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(POLL_EVERY) => {}
            () = out.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(project: &str, target: &str) -> reconciler::audit::AuditEvent {
        serde_json::from_value(serde_json::json!({
            "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "project": project, "token": "t", "tokenPrefix": "p", "session": "s", "method": "tools/call",
            "server": "time", "target": target, "durationUs": 10, "outcome": "ok", "revision": "r",
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn the_database_follower_resumes_after_its_cursor_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = reconciler::Store::connect(&reconciler::store::sqlite_url(&dir.path().join("s.db"))).await.unwrap();
        store.insert_audit(&[stored("lab", "before")]).await.unwrap();
        let latest = store.audit_events(&reconciler::audit::AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let follower = tokio::spawn(follow_db(store.clone(), Some("lab".into()), None, Some(latest[0].at.clone()), latest[0].id, tx));
        store.insert_audit(&[stored("lab", "a"), stored("other", "not-mine"), stored("lab", "b")]).await.unwrap();
        let mut seen = Vec::new();
        while seen.len() < 2 {
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                Ok(Some(FeedItem::Event(e))) => {
                    assert!(e.get("session").is_none(), "{e}");
                    seen.push(e["target"].as_str().unwrap().to_owned());
                }
                other => panic!("{other:?} after {seen:?}"),
            }
        }
        assert_eq!(seen, ["a", "b"], "nothing before the cursor, nothing of another project, oldest first");
        store.insert_audit(&[stored("lab", "c")]).await.unwrap();
        let next = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap();
        assert_eq!(
            next.map(|i| match i {
                FeedItem::Event(e) => e["target"].clone(),
                o => panic!("{o:?}"),
            }),
            Some(serde_json::json!("c"))
        );
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), follower).await.expect("the follower stops when nobody listens").unwrap();
    }

    #[test]
    fn frames_parse_into_items_and_keep_alives_are_skipped() {
        let e = parse_frame(
            "event: audit\ndata: {\"at\":\"2026-12-03T16:00:01.250Z\",\"token\":\"t\",\"outcome\":\"ok\",\"durationUs\":1500}\n\n",
        );
        let Some(FeedItem::Event(v)) = e else { panic!("{e:?}") };
        assert!(line(&v).starts_with("16:00:01.250  t "), "{}", line(&v));
        assert!(line(&v).ends_with("1.5 ms"), "{}", line(&v));
        assert_eq!(parse_frame("event: dropped\ndata: {\"dropped\":7}\n\n"), Some(FeedItem::Dropped(7)));
        assert_eq!(parse_frame(": keep-alive\n\n"), None);
        assert_eq!(parse_frame("event: end\ndata: {\"reason\":\"bye\"}\n\n"), Some(FeedItem::Ended("bye".into())));
    }
}
