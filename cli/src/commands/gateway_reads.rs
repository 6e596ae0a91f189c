//! The read commands (`get`, `get auditevents`, `describe`, `status`, `history`) through a
//! gateway's REST API, when a login context, `--server` or `$MCPCTL_URL` names one: a person
//! needs a token, not a database URL. What the gateway answers is already filtered by the
//! caller's grants (a resource it may not view is not found); output formats match the local
//! commands. And [`gate`]: the `can-i` check of actions that have no gateway route.

use std::io::Write;

use anyhow::Context;
use serde_json::Value;

use reconciler::plan::StoredResource;
use schema::{Kind, Resource};

use super::Result;
use crate::args::*;
use crate::remote::{Remote, RemoteError, Target};
use crate::{render, CliError};

/// What the remote reads refuse.
#[derive(Debug, thiserror::Error)]
pub enum GatewayReadError {
    #[error("{kind} `{name}` not found{at} (or not visible to this token)")]
    NotFound { kind: Kind, name: String, at: String },
    #[error("the gateway answered something that is not a resource: {0}")]
    BadItem(String),
    #[error("--show-values reads the values locally (database and age identity); pass --database-url to use it")]
    ShowValues,
    #[error("denied by the gateway at {url}: {subject} may not run `{action}`{at}")]
    Denied { url: String, subject: String, action: String, at: String },
}

impl From<GatewayReadError> for CliError {
    fn from(e: GatewayReadError) -> Self {
        CliError::Other(e.into())
    }
}

impl From<RemoteError> for CliError {
    fn from(e: RemoteError) -> Self {
        CliError::Other(e.into())
    }
}

/// The gateway the read commands go through, if any: `--server`/`--context` beat a database
/// URL; a database URL (flag or `$MCPCTL_DATABASE_URL`) beats `$MCPCTL_URL` and the current
/// context.
///
/// # Errors
/// When the config file cannot be read or a named context does not exist.
pub(super) fn remote(g: &Global) -> Result<Option<Remote>> {
    let explicit_url = g.server.is_some() && std::env::var("MCPCTL_URL").ok().as_deref() != g.server.as_deref();
    if g.database_url.is_some() && !explicit_url && g.context.is_none() {
        return Ok(None);
    }
    Ok(Remote::locate(&Target { url: g.server.as_deref(), token: None, context: g.context.as_deref() })?)
}

fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let parts: Vec<String> = pairs.iter().filter_map(|(k, v)| v.map(|v| format!("{k}={}", crate::remote::escape(v)))).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// A resource as the API returns it, with the row fields the table and `describe` show.
fn item(v: &Value, revision: &str) -> Result<(StoredResource, Resource)> {
    let body = v.to_string();
    let res = Resource::from_body(&body).map_err(|e| GatewayReadError::BadItem(e.to_string()))?;
    let hash = res.hash();
    let row = StoredResource { key: res.key(), body, hash, source: None, revision: revision.to_string(), updated_at: String::new() };
    Ok((row, res))
}

async fn deployed(r: &Remote) -> Result<String> {
    let s = r.get_json("/api/v1/status").await?;
    Ok(s["deployed"].as_str().unwrap_or("-").to_string())
}

/// Every visible resource of `kinds`, optionally only those of `project`.
async fn list(r: &Remote, kinds: &[Kind], project: Option<&str>, revision: &str) -> Result<Vec<(StoredResource, Resource)>> {
    let mut out = Vec::new();
    for k in kinds {
        let v = r.get_json(&format!("/api/v1/{}{}", k.plural(), query(&[("project", project)]))).await?;
        for i in v["items"].as_array().map(Vec::as_slice).unwrap_or_default() {
            out.push(item(i, revision)?);
        }
    }
    out.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    Ok(out)
}

/// One resource, or not found.
async fn one(r: &Remote, kind: Kind, name: &str, project: Option<&str>, revision: &str) -> Result<(StoredResource, Resource)> {
    let path = format!("/api/v1/{}/{}{}", kind.plural(), crate::remote::escape(name), query(&[("project", project)]));
    match r.get_json(&path).await {
        Ok(v) => item(&v, revision),
        Err(RemoteError::Status { status: 404, .. }) => Err(GatewayReadError::NotFound {
            kind,
            name: name.to_string(),
            at: project.map(|p| format!(" in project `{p}`")).unwrap_or_default(),
        }
        .into()),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn get(r: &Remote, a: GetArgs) -> Result {
    let kind = if a.kind.eq_ignore_ascii_case("all") { None } else { Some(super::read::parse_kind(&a.kind)?) };
    let revision = deployed(r).await?;
    let items = match (kind, &a.name) {
        (Some(k), Some(n)) => vec![one(r, k, n, a.project.as_deref(), &revision).await?],
        (Some(k), None) => list(r, &[k], a.project.as_deref(), &revision).await?,
        (None, name) => {
            let mut all = list(r, Kind::ALL, a.project.as_deref(), &revision).await?;
            all.retain(|(row, _)| name.as_ref().is_none_or(|n| *n == row.key.name));
            all
        }
    };
    let mut out = anstream::stdout();
    super::read::print_resources(&mut out, kind, &items, a.output)
}

pub(super) async fn describe(r: &Remote, a: DescribeArgs) -> Result {
    if a.show_values {
        return Err(GatewayReadError::ShowValues.into());
    }
    let kind = super::read::parse_kind(&a.kind)?;
    let revision = deployed(r).await?;
    let (row, res) = one(r, kind, &a.name, a.project.as_deref(), &revision).await?;
    let related = list(r, &[Kind::Prompt, Kind::Agent, Kind::McpToken, Kind::Personality], None, &revision).await?;
    let mut out = anstream::stdout();
    render::describe(&mut out, &row, &res, &related).context("writing output")?;
    Ok(())
}

pub(super) async fn status(r: &Remote, a: StatusArgs) -> Result {
    let s = r.get_json("/api/v1/status").await?;
    let servers: Vec<Value> = s["upstreams"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|u| serde_json::json!({"runtime": "gateway", "server": u["server"], "status": u}))
        .collect();
    let mut status = serde_json::json!({
        "deployed": s["deployed"],
        "lastAttempted": s["lastAttempted"],
        "lastOutcome": s["lastOutcome"],
        "drift": if s["drift"] == true { Some("drift detected (see `mcpctl status` on the reconciler)") } else { None },
        "servers": servers,
        "gateway": reconciler::redact::urls(&r.url),
    });
    if let Some(rs) = s.get("reconcilers") {
        status["reconcilers"] = rs.clone();
    }
    super::read::print_status(&status, a.output)
}

pub(super) async fn history(r: &Remote, a: HistoryArgs) -> Result {
    let v = r.get_json("/api/v1/deploys").await?;
    let mut items: Vec<Value> = v["items"].as_array().cloned().unwrap_or_default();
    items.truncate(usize::try_from(a.limit).unwrap_or(0));
    let mut out = anstream::stdout();
    match a.output {
        TextOrJson::Json => writeln!(out, "{}", serde_json::to_string_pretty(&items).expect("json")),
        TextOrJson::Text => {
            let deploys: Vec<reconciler::Deploy> = serde_json::from_value(Value::Array(items)).context("decoding deploys")?;
            render::history(&mut out, &deploys)
        }
    }
    .context("writing output")?;
    Ok(())
}

pub(super) async fn audit_events(r: &Remote, a: GetArgs, since: Option<String>) -> Result {
    let limit = a.limit.to_string();
    let q =
        query(&[("project", a.project.as_deref()), ("token", a.token.as_deref()), ("since", since.as_deref()), ("limit", Some(&limit))]);
    let v = r.get_json(&format!("/api/v1/auditevents{q}")).await?;
    let mut items: Vec<Value> = v["items"].as_array().cloned().unwrap_or_default();
    // The gateway never sends session ids (they are credentials of their sessions).
    for i in &mut items {
        if let Some(o) = i.as_object_mut() {
            o.entry("session").or_insert_with(|| Value::String("-".into()));
        }
    }
    let events: Vec<reconciler::audit::AuditEvent> = serde_json::from_value(Value::Array(items)).context("decoding audit events")?;
    super::read::print_audit(&mut anstream::stdout(), &events, a.output)
}

/// Before an action that runs locally without a gateway route (reveal-secrets, migrate-secrets,
/// reconcile): when a login context (or `--server`) is set, ask the gateway's `can-i` and refuse
/// unless allowed. Without a context the local gate stands alone: the age identity, the database
/// URL (docs/login.md).
///
/// # Errors
/// [`GatewayReadError::Denied`] when the gateway says no; the gateway's error when it cannot be
/// asked (the check fails closed).
pub(super) async fn gate(g: &Global, action: &str, project: Option<&str>) -> Result {
    let Some(r) = Remote::locate(&Target { url: g.server.as_deref(), token: None, context: g.context.as_deref() })? else {
        return Ok(());
    };
    let v = r.get_json(&format!("/api/v1/can-i{}", query(&[("action", Some(action)), ("project", project)]))).await?;
    if v["allowed"] == true {
        return Ok(());
    }
    Err(GatewayReadError::Denied {
        url: reconciler::redact::urls(&r.url),
        subject: v["subject"].as_str().unwrap_or("this token").to_string(),
        action: action.to_string(),
        at: project.map(|p| format!(" in project `{p}`")).unwrap_or_default(),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_escape_values_and_skip_absent_ones() {
        assert_eq!(query(&[("project", None)]), "");
        assert_eq!(
            query(&[("project", Some("lab")), ("token", None), ("since", Some("2026-01-01T00:00:00+01:00"))]),
            "?project=lab&since=2026-01-01T00%3A00%3A00%2B01%3A00"
        );
    }
}
