//! `mcpctl get auditevents --watch`: the latest events, then new ones as they are recorded,
//! through the gateway's audit stream (a gateway URL given) or by polling the database.
//! Text output is one line per event (time, token, server, method, tool, outcome, latency);
//! `-o json` / `-o yaml` print one JSON object per line. Ctrl-C stops (exit 0).

use std::io::Write;

use anyhow::Context;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{open_existing_store, Result};
use crate::args::{GetArgs, GetFormat, Global};
use crate::console::feed::{self, FeedItem};
use crate::remote::Remote;

fn print(out: &mut impl Write, json: bool, e: &Value) -> std::io::Result<()> {
    if json {
        writeln!(out, "{e}")
    } else {
        writeln!(out, "{}", feed::line(e))
    }
}

pub(super) async fn audit(g: &Global, a: GetArgs, since: Option<String>) -> Result {
    let json = !matches!(a.output, GetFormat::Table);
    let mut out = anstream::stdout();
    if !json {
        writeln!(out, "{}", feed::header()).context("writing output")?;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let limit = a.limit.clamp(1, 1000);
    // `--url` names the gateway for this command alone; otherwise `--server`, `$MCPCTL_URL` or
    // the login context, as every remote read (`gateway_reads::remote`).
    let remote = match a.url.as_deref() {
        Some(u) => Remote::resolve(Some(u), None),
        None => super::gateway_reads::remote(g)?,
    };
    match remote {
        Some(remote) => {
            let mut path = format!("/api/v1/auditevents?limit={limit}");
            if let Some(s) = &since {
                path.push_str(&format!("&since={}", s.replace('+', "%2B")));
            }
            if let Some(t) = &a.token {
                path.push_str(&format!("&token={t}"));
            }
            let latest = remote.get_json(&path).await.map_err(anyhow::Error::from)?;
            for e in latest["items"].as_array().into_iter().flatten().rev() {
                print(&mut out, json, e).context("writing output")?;
            }
            tokio::spawn(feed::follow_api(remote, tx));
        }
        None => {
            let store = open_existing_store(g).await?;
            let filter = reconciler::audit::AuditFilter {
                project: a.project.clone(),
                token: a.token.clone(),
                since: since.clone(),
                limit,
                ..Default::default()
            };
            let latest = store.audit_events(&filter).await.context("reading the audit log")?;
            let after = latest.first().map(|e| e.id).unwrap_or(0);
            let cursor = latest.first().map(|e| e.at.clone()).or(since);
            for e in latest.iter().rev() {
                print(&mut out, json, &feed::public(e)).context("writing output")?;
            }
            tokio::spawn(feed::follow_db(store, a.project.clone(), a.token.clone(), cursor, after, tx));
        }
    }
    loop {
        let item = tokio::select! {
            i = rx.recv() => i,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        match item {
            Some(FeedItem::Event(e)) => {
                if a.token.as_deref().is_some_and(|t| e.get("token").and_then(Value::as_str) != Some(t)) {
                    continue;
                }
                print(&mut out, json, &e).context("writing output")?;
            }
            Some(FeedItem::Dropped(n)) => crate::render::error_line(&format!("{n} audit event(s) dropped: this watcher fell behind")),
            Some(FeedItem::Ended(r)) => {
                crate::render::error_line(&format!("audit stream ended: {r}"));
                return Ok(());
            }
            Some(FeedItem::Failed(e)) => return Err(anyhow::anyhow!(e).into()),
            None => return Ok(()),
        }
    }
}
