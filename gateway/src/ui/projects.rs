//! `GET /ui/projects` (the projects the caller may view) and `/ui/projects/{name}` (its servers
//! with runtime health, the tools each exposes, who may call each, and — with `audit` there —
//! plots of its calls from the per-minute aggregates).
//!
//! # Guarantees
//! A project the caller may not view is not found. A server is listed only when the caller may
//! view it there; who may call it only when the caller may view the project's McpTokens (users
//! when it may also view users). Tool lists come from the upstreams' caches, each waited for at
//! most [`TOOLS_WAIT`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use maud::{html, Markup};

use schema::rbac::Request;
use schema::spec::Role;
use schema::{Kind, Spec};

use super::layout::{self, badge, encode, notice, Nav};
use super::plot::{self, Window};
use super::{UiError, Viewer};
use crate::api::visible;
use crate::auth::{Caller, Principal};
use crate::catalog::ServerRef;
use crate::AppState;

/// Longest wait for one server's tool list.
pub const TOOLS_WAIT: Duration = Duration::from_secs(2);
/// Windows the plots offer, in minutes.
pub const WINDOWS: [i64; 4] = [60, 360, 1440, 10080];
/// Most aggregate rows read for one project's plots (a week in hours of 500 servers).
pub const MAX_MINUTES: i64 = 100_000;

pub(crate) async fn list(v: Viewer) -> Result<Markup, UiError> {
    let projects = v.projects(|r| visible(&v.caller, r));
    let body = html! {
        h1 { "Projects" }
        @if projects.is_empty() {
            (notice("No project this subject may view."))
        } @else {
            div.scroll { table {
                caption { "Projects this subject may view" }
                thead { tr { th scope="col" { "Project" } th scope="col" { "Description" } th scope="col" { "Servers" } th scope="col" { "Gated" } } }
                tbody { @for r in &projects {
                    @if let Spec::Project(p) = &r.spec {
                        tr {
                            td { a href=(format!("/ui/projects/{}", encode(r.name()))) { (r.name()) } }
                            td { (p.description.as_deref().unwrap_or("")) }
                            td { (p.servers.join(", ")) }
                            td { (if p.gated { "yes" } else { "no" }) }
                        }
                    }
                } }
            } }
        }
    };
    Ok(layout::page("Projects", Nav::Projects, Some(&v.caller), body))
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct OneQuery {
    /// Plot window in minutes (one of [`WINDOWS`]).
    window: Option<i64>,
}

/// Who may call `server` in `project`: the deployed tokens whose grants allow running it there.
fn callers<'a>(v: &'a Viewer, project: &str, server: &str, users_too: bool) -> Vec<&'a Caller> {
    let req = Request::Resource { role: Role::Run, kind: Kind::Server, name: Some(server) };
    let mut out: Vec<&Caller> = v
        .snapshot
        .tokens
        .callers()
        .filter(|c| match &c.principal {
            Principal::McpToken { project: p, .. } => p == project,
            Principal::User { .. } => users_too,
        })
        .filter(|c| c.can(Some(project), req))
        .collect();
    out.sort_by_key(|c| c.display_name());
    out
}

async fn tools_of(app: &AppState, s: &ServerRef) -> Result<Vec<String>, String> {
    let up = app.upstreams.get(&s.key).ok_or_else(|| "not running".to_string())?;
    match tokio::time::timeout(TOOLS_WAIT, up.tools()).await {
        Ok(Ok(list)) => Ok(list.iter().map(|t| t.name.to_string()).collect()),
        Ok(Err(e)) => Err(reconciler::redact::urls(&e)),
        Err(_) => Err(format!("no tool list within {TOOLS_WAIT:?}")),
    }
}

pub(crate) async fn one(
    State(app): State<Arc<AppState>>,
    v: Viewer,
    Path(name): Path<String>,
    Query(q): Query<OneQuery>,
) -> Result<Markup, UiError> {
    let res = v
        .snapshot
        .catalog
        .state
        .resolve(Kind::Project, &name, None)
        .filter(|r| visible(&v.caller, r))
        .ok_or_else(|| UiError::NotFound(format!("project `{name}`")))?;
    let view = v.snapshot.catalog.projects.get(&name).cloned();
    let c = &v.caller;
    let servers: Vec<&ServerRef> = view
        .iter()
        .flat_map(|p| p.servers.iter())
        .filter(|s| c.can(Some(&name), Request::Resource { role: Role::View, kind: Kind::Server, name: Some(&s.name) }))
        .collect();
    let health = app.upstreams.health_of(servers.iter().map(|s| s.key.as_str()));
    let tools = futures::future::join_all(servers.iter().map(|s| tools_of(&app, s))).await;
    let sees_tokens = c.can(Some(&name), Request::Resource { role: Role::View, kind: Kind::McpToken, name: None });
    let sees_users = c.can_anywhere(Request::Resource { role: Role::View, kind: Kind::User, name: None });
    let audits = c.can(Some(&name), Request::Action("audit"));
    let window = Window { end: chrono::Utc::now(), minutes: q.window.filter(|w| WINDOWS.contains(w)).unwrap_or(WINDOWS[0]) };
    let plots = if audits {
        let minutes = app.store.audit_minutes(&name, &window.since(), window.prefix(), plot::MAX_SERIES, MAX_MINUTES).await?;
        let deploys: Vec<(String, String)> =
            app.store.deploys(super::deploys::MAX_DEPLOYS).await?.into_iter().map(|d| (d.finished_at, d.revision)).collect();
        Some(plot::charts(&minutes, &deploys, &window))
    } else {
        None
    };
    let spec = match &res.spec {
        Spec::Project(p) => Some(p),
        _ => None,
    };
    let body = html! {
        h1 { "Project " (name) }
        @if let Some(p) = spec {
            (layout::fields("Project", [
                ("Description", html! { (p.description.as_deref().unwrap_or("—")) }),
                ("Gated", html! { (if p.gated { "yes" } else { "no" }) }),
                ("Resource", html! { a href=(super::resources::href(Kind::Project, &name, None)) { "fields, YAML, source" } }),
            ]))
        }
        h2 { "Servers" }
        @if servers.is_empty() {
            (notice("No server of this project that this subject may view."))
        }
        @for (s, tools) in servers.iter().zip(&tools) {
            @let h = health.iter().find(|h| h.server == s.key);
            section aria-labelledby=(format!("srv-{}", s.name)) {
                h3 #(format!("srv-{}", s.name)) {
                    a href=(super::resources::href(Kind::Server, &s.name, Some(&name))) { (s.name) } " "
                    @match h { Some(h) => (badge(h.health.as_str())), None => (badge("not running")) }
                }
                @if let Some(h) = h {
                    p { (h.transport) ", " (if h.connected { "connected" } else { "not connected" })
                        @if let Some(e) = h.error.as_deref().or(h.check.last_error.as_deref()) { ": " span.error { (reconciler::redact::urls(e)) } } }
                }
                @match tools {
                    Ok(t) if t.is_empty() => (notice("It lists no tool.")),
                    Ok(t) => p { "Tools: " @for (i, tool) in t.iter().enumerate() { @if i > 0 { ", " } code { (tool) } } },
                    Err(e) if h.is_some_and(|h| h.error.as_deref() == Some(e.as_str())) => p { "Tools unavailable (not connected)." },
                    Err(e) => p { "Tools unavailable: " span.error { (e) } },
                }
                @if sees_tokens {
                    @let who = callers(&v, &name, &s.name, sees_users);
                    p { "May call it: "
                        @if who.is_empty() { span.notice { "no deployed token" } }
                        @for (i, w) in who.iter().enumerate() { @if i > 0 { ", " } code { (w.display_name()) } } }
                }
            }
        }
        h2 { "Calls" }
        @match plots {
            Some(p) => {
                nav aria-label="Plot window" { ul.legend { @for w in WINDOWS {
                    li { a href=(format!("/ui/projects/{}?window={w}", encode(&name))) aria-current=[(w == window.minutes).then_some("page")] { (window_label(w)) } }
                } } }
                (p)
                p { a href=(format!("/ui/audit{}", layout::query(&[("project", Some(&name))]))) { "This project's audit log" } }
            }
            None => (layout::needs_audit("Plots of this project's calls")),
        }
    };
    Ok(layout::page(&format!("Project {name}"), Nav::Projects, Some(&v.caller), body))
}

fn window_label(minutes: i64) -> String {
    match minutes {
        m if m < 120 => format!("{m} minutes"),
        m if m < 2880 => format!("{} hours", m / 60),
        m => format!("{} days", m / 1440),
    }
}
