//! `GET /ui/audit`: the MCP audit log, newest first, filtered by project, token, server, tool,
//! outcome and time, [`PAGE_ROWS`](super::PAGE_ROWS) a page with keyset pagination (`before` =
//! the last id shown), through the same query as `/api/v1/auditevents`.
//!
//! # Guarantees
//! Access is that of `/api/v1/auditevents`: `audit` in the project asked (an McpToken: always
//! its own), or globally without one; a user without a global grant is shown its first project
//! with one. Session ids are never shown (a session id is a bearer credential of its session).

use std::sync::Arc;

use axum::extract::{Query, State};
use maud::{html, Markup};

use reconciler::audit::{AuditEvent, AuditFilter};
use schema::rbac::Request;

use super::layout::{self, badge, notice, Nav};
use super::{given, UiError, Viewer, PAGE_ROWS};
use crate::AppState;

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct AuditQuery {
    project: Option<String>,
    token: Option<String>,
    server: Option<String>,
    tool: Option<String>,
    outcome: Option<String>,
    /// RFC 3339, or `YYYY-MM-DDTHH:MM` (a `datetime-local` field) taken as UTC.
    since: Option<String>,
    until: Option<String>,
    before: Option<i64>,
}

const OUTCOMES: [&str; 3] = ["ok", "error", "denied"];

/// A time bound as the store compares it (RFC 3339, milliseconds, UTC), or a 400 naming `field`.
pub(crate) fn bound(field: &str, v: Option<String>) -> Result<Option<String>, UiError> {
    let Some(v) = v else { return Ok(None) };
    let full = if v.len() == 16 { format!("{v}:00Z") } else { v.clone() };
    chrono::DateTime::parse_from_rfc3339(&full)
        .map(|t| Some(t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
        .map_err(|_| UiError::BadQuery(format!("`{field}`: `{v}` is not a time (RFC 3339, or YYYY-MM-DDTHH:MM in UTC)")))
}

pub(crate) async fn page(State(app): State<Arc<AppState>>, v: Viewer, Query(q): Query<AuditQuery>) -> Result<Markup, UiError> {
    let c = &v.caller;
    let projects: Vec<&str> =
        v.projects(|r| c.can(Some(r.name()), Request::Action("audit"))).into_iter().map(schema::Resource::name).collect();
    let asked = c.project().map(str::to_owned).or_else(|| given(&q.project));
    let project = match asked {
        Some(p) => Some(p),
        None if c.can(None, Request::Action("audit")) => None,
        None => projects.first().map(|p| (*p).to_owned()),
    };
    c.require(project.as_deref(), Request::Action("audit"))?;
    let outcome = given(&q.outcome).filter(|o| OUTCOMES.contains(&o.as_str()));
    let filter = AuditFilter {
        project: project.clone(),
        token: given(&q.token),
        server: given(&q.server),
        target: given(&q.tool),
        outcome: outcome.clone(),
        since: bound("since", given(&q.since))?,
        until: bound("until", given(&q.until))?,
        before: q.before,
        thread: None,
        limit: i64::try_from(PAGE_ROWS + 1).unwrap_or(i64::MAX),
    };
    let mut events = app.store.audit_events(&filter).await?;
    let more = events.len() > PAGE_ROWS;
    events.truncate(PAGE_ROWS);
    let keep = |before: Option<String>| {
        format!(
            "/ui/audit{}",
            layout::query(&[
                ("project", project.as_deref()),
                ("token", q.token.as_deref()),
                ("server", q.server.as_deref()),
                ("tool", q.tool.as_deref()),
                ("outcome", outcome.as_deref()),
                ("since", q.since.as_deref()),
                ("until", q.until.as_deref()),
                ("before", before.as_deref()),
            ])
        )
    };
    let text = |id: &str, label: &str, val: &Option<String>| {
        html! { div { label for=(id) { (label) } input id=(id) type="text" name=(id) value=(val.as_deref().unwrap_or("")); } }
    };
    let body = html! {
        h1 { "Audit log" }
        form.filters method="get" action="/ui/audit" {
            div { label for="project" { "Project" }
                select #project name="project" disabled[c.project().is_some()] {
                    @if c.can(None, Request::Action("audit")) && c.project().is_none() { option value="" { "any" } }
                    @for p in &projects { option value=(p) selected[project.as_deref() == Some(*p)] { (p) } }
                } }
            (text("token", "Token", &q.token))
            (text("server", "Server", &q.server))
            (text("tool", "Tool", &q.tool))
            div { label for="outcome" { "Outcome" }
                select #outcome name="outcome" {
                    option value="" { "any" }
                    @for o in OUTCOMES { option value=(o) selected[outcome.as_deref() == Some(o)] { (o) } }
                } }
            div { label for="since" { "Since (UTC)" } input #since type="datetime-local" name="since" value=(q.since.as_deref().unwrap_or("")); }
            div { label for="until" { "Until (UTC)" } input #until type="datetime-local" name="until" value=(q.until.as_deref().unwrap_or("")); }
            div { button type="submit" { "Filter" } }
        }
        @if events.is_empty() {
            (notice("No event matches."))
        } @else {
            (table(&events))
        }
        nav.pager aria-label="Pages" {
            @if q.before.is_some() { a href=(keep(None)) { "Newest" } }
            @if more { @if let Some(last) = events.last() { a href=(keep(Some(last.id.to_string()))) rel="next" { "Older" } } }
        }
    };
    Ok(layout::page("Audit log", Nav::Audit, Some(&v.caller), body))
}

/// Audit events as a table (the audit page's, and a thread's tool calls).
pub(crate) fn table(events: &[AuditEvent]) -> Markup {
    html! {
        div.scroll { table {
            caption { "Events, newest first" }
            thead { tr {
                th scope="col" { "Id" } th scope="col" { "At" } th scope="col" { "Project" } th scope="col" { "Token" } th scope="col" { "Method" }
                th scope="col" { "Server" } th scope="col" { "Target" } th scope="col" { "Outcome" } th scope="col" { "ms" } th scope="col" { "Error" } th scope="col" { "Thread" }
            } }
            tbody { @for e in events { tr {
                td { (e.id) }
                td { (layout::time(&e.at)) }
                td { (e.project) }
                td { (e.token) }
                td { (e.method) }
                td { (e.server) }
                td { code { (e.target) } }
                td { (badge(&e.outcome)) }
                td { (format!("{:.1}", e.duration_us as f64 / 1000.0)) }
                td { (e.error.as_deref().unwrap_or("")) }
                td { @if let Some(t) = &e.thread { a href=(format!("/ui/threads/{}", layout::encode(t))) { "thread" } } }
            } } }
        } }
    }
}
