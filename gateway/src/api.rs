//! The read-only REST API: `/api/v1/<kind>[/<name>]`, `/api/v1/status`, `/api/v1/deploys`,
//! `/api/v1/auditevents`; described by the OpenAPI document at `/api/openapi.json`.
//! Desired state is changed through git only. Every request is authenticated and RBAC-checked
//! against the deployed snapshot (no request reads the resources table) by schema's RBAC engine
//! ([`crate::auth::Caller::can`]); a resource the caller may not view is reported as not found.
//! A project's resource is judged in its project (a Project in itself), a global one (shared by every project) by any
//! grant of the caller (an McpToken's all apply in its project; a user's global grants and those
//! of each project it holds some in). Status and audit events are scoped to the
//! projects the caller may see. `whoami` and `can-i` live in [`crate::identity`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use schema::rbac::{self, Request};
use schema::spec::Role;
use schema::{Kind, Resource, Scope};

use crate::auth::{Authenticated, Caller};
use crate::error::ApiError;
use crate::{AppState, Snapshot};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/deploys", get(deploys))
        .route("/api/v1/auditevents", get(audit_events))
        .route("/api/v1/{kind}", get(list))
        .route("/api/v1/{kind}/{name}", get(one))
}

/// Whether the caller may see `res`: a `view` grant in its project (a Project counts as inside
/// itself, so a caller sees only the projects its grants reach), or, for another global one, in
/// any place the caller acts (an McpToken: its project).
pub(crate) fn visible(caller: &Caller, res: &Resource) -> bool {
    let req = Request::Resource { role: Role::View, kind: res.kind(), name: Some(res.name()) };
    let at = if res.kind() == Kind::Project { Some(res.name()) } else { res.metadata.project.as_deref() };
    match at {
        Some(p) => caller.can(Some(p), req),
        None => caller.can_anywhere(req),
    }
}

/// The health of the caller's servers (an McpToken: every server of its project, as before
/// users existed; a user: the servers it may view, each judged in its project), URLs in errors
/// redacted: what `/api/v1/status` and the web UI show.
pub(crate) fn shown_upstreams(state: &AppState, c: &Caller, snapshot: &Snapshot) -> Vec<crate::upstream::Health> {
    let shown = |p: &str, server: &str| match c.project() {
        Some(own) => own == p,
        None => c.can(Some(p), Request::Resource { role: Role::View, kind: Kind::Server, name: Some(server) }),
    };
    let keys = snapshot
        .catalog
        .projects
        .iter()
        .flat_map(|(p, view)| view.servers.iter().filter(move |s| shown(p, &s.name)).map(|s| s.key.as_str()));
    state
        .upstreams
        .health_of(keys)
        .into_iter()
        .map(|mut h| {
            h.error = h.error.map(|e| reconciler::redact::urls(&e));
            h
        })
        .collect()
}

/// Who may read the deploy history: `Ok(true)` for a holder of `audit` globally (sees errors),
/// `Ok(false)` for one whose `audit` grant is confined to a project (every McpToken: rows without
/// their `error` text, which may concern other projects).
///
/// # Errors
/// 403 without any `audit` grant.
pub(crate) fn deploy_access(c: &Caller) -> Result<bool, ApiError> {
    let global = c.project().is_none() && c.can(None, Request::Action("audit"));
    if !global && !c.grants.iter().any(|e| rbac::binding_allows(&e.binding, Request::Action("audit"))) {
        c.require(None, Request::Action("audit"))?;
    }
    Ok(global)
}

/// Query of the resource routes.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(crate) struct ResourceQuery {
    /// Only resources of this project (as `mcpctl get -p`); for one resource, the project to
    /// look in first (default: the McpToken's project; for a user, global resources only).
    project: Option<String>,
}

/// JSON of a resource for API answers: secret values never leave, not even as ciphertext.
pub(crate) fn public_json(res: &Resource) -> Value {
    let mut v = res.to_json();
    if let Some(Value::Object(data)) = v.pointer_mut("/spec/data") {
        for val in data.values_mut() {
            *val = json!("(redacted)");
        }
    }
    if let Some(Value::String(u)) = v.pointer_mut("/spec/url") {
        *u = reconciler::redact::urls(u);
    }
    v
}

pub(crate) fn parse_kind(s: &str) -> Result<Kind, ApiError> {
    Kind::ALL.iter().copied().find(|k| k.plural() == s).ok_or_else(|| ApiError::UnknownKind(s.to_string()))
}

/// Resources of one kind the token may view.
#[utoipa::path(get, path = "/api/v1/{kind}", tag = "resources",
    params(("kind" = String, Path, description = "Plural kind: servers, projects, agents, secrets (values redacted), …"), ResourceQuery),
    responses((status = 200, description = "`{kind, items: [resource]}`", body = Object), (status = 401, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    Authenticated { caller: c, snapshot }: Authenticated,
    Path(kind): Path<String>,
    axum::extract::Query(q): axum::extract::Query<ResourceQuery>,
) -> Result<Json<Value>, ApiError> {
    let kind = parse_kind(&kind)?;
    let items: Vec<Value> = snapshot
        .catalog
        .state
        .of_kind(kind)
        .filter(|r| q.project.is_none() || r.metadata.project == q.project)
        .filter(|r| visible(&c, r))
        .map(public_json)
        .collect();
    Ok(Json(json!({"kind": kind.as_str(), "items": items})))
}

/// One resource, resolved in `?project=` (default: the McpToken's project) first, then globally.
#[utoipa::path(get, path = "/api/v1/{kind}/{name}", tag = "resources",
    params(("kind" = String, Path, description = "Plural kind"), ("name" = String, Path, description = "Resource name"), ResourceQuery),
    responses((status = 200, description = "The resource document (JSON)", body = Object), (status = 401, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn one(
    Authenticated { caller: c, snapshot }: Authenticated,
    Path((kind, name)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<ResourceQuery>,
) -> Result<Json<Value>, ApiError> {
    let kind = parse_kind(&kind)?;
    let project = (kind.scope() != Scope::Cluster).then(|| q.project.as_deref().or(c.project())).flatten();
    let res = snapshot
        .catalog
        .state
        .resolve(kind, &name, project)
        .filter(|r| visible(&c, r))
        .ok_or_else(|| ApiError::NotFound(format!("{kind} `{name}`")))?;
    Ok(Json(public_json(res)))
}

/// Deployed revision, last attempt, drift, and the health of the caller's servers (an McpToken:
/// every server of its project; a user: those it may view).
#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    responses((status = 200, description = "`{deployed, lastAttempted, lastOutcome, drift: bool, reconcilers?: [{name, role: leader|standby}] (Postgres), upstreams: [{server, transport, connected, error, unroutable, health, check: {state, lastCheck, checks, consecutiveFailures, lastError, restarts}, replicas}]}`: upstreams of the caller's servers (an McpToken: its project's; a user: those it may view), URLs in errors redacted", body = Object), (status = 401, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn status(
    State(state): State<Arc<AppState>>,
    Authenticated { caller: c, snapshot }: Authenticated,
) -> Result<Json<Value>, ApiError> {
    let s = state.status();
    let upstreams: Vec<Value> = shown_upstreams(&state, &c, &snapshot).into_iter().map(|h| json!(h)).collect();
    let mut body = json!({
        "deployed": s.deployed,
        "lastAttempted": s.last_attempted,
        "lastOutcome": s.last_outcome,
        "drift": s.drift,
        "upstreams": upstreams,
    });
    // Postgres: which reconciler leads and which wait (scale-out); SQLite knows none.
    // Left out while the database is unreachable: the rest of the answer is the snapshot's.
    let reconcilers = state.store.reconcilers().await.unwrap_or_default();
    if !reconcilers.is_empty() {
        body["reconcilers"] = reconcilers.iter().map(|(name, role)| json!({"name": name, "role": role})).collect();
    }
    Ok(Json(body))
}

/// The deploy history, newest first (needs action `audit` where the caller acts). Deploys are of
/// the whole repo, so a caller whose `audit` grant is confined to a project (every McpToken)
/// sees each row without its `error` text (which may concern other projects): `errorHidden:
/// true` marks the rows that had one. A user holding `audit` globally sees the errors.
#[utoipa::path(get, path = "/api/v1/deploys", tag = "audit",
    responses((status = 200, description = "`{items: [deploy]}`; `error` replaced by `errorHidden: true`", body = Object), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn deploys(
    State(state): State<Arc<AppState>>,
    Authenticated { caller: c, .. }: Authenticated,
) -> Result<Json<Value>, ApiError> {
    let global = deploy_access(&c)?;
    let items: Vec<Value> = state
        .store
        .deploys(100)
        .await?
        .into_iter()
        .map(|mut d| {
            let hidden = !global && d.error.take().is_some();
            let mut v = json!(d);
            if hidden {
                v["errorHidden"] = json!(true);
            }
            v
        })
        .collect();
    Ok(Json(json!({"items": items})))
}

/// Query of `/api/v1/auditevents`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(crate) struct AuditQuery {
    /// Only events of this token (its resource name).
    token: Option<String>,
    /// Only events of this project (an McpToken: always its own; a user without a global
    /// `audit` grant must name a project it holds `audit` in).
    project: Option<String>,
    /// RFC 3339 lower bound.
    since: Option<String>,
    /// Only the tool calls of this chat thread.
    thread: Option<String>,
    /// At most this many events (default 100, max 1000).
    limit: Option<i64>,
}

/// MCP audit events, newest first, of the project asked (an McpToken: its own), which needs
/// action `audit` there; without a project, a user needs `audit` globally. Session ids are not
/// shown: a session id is a bearer credential of its session.
#[utoipa::path(get, path = "/api/v1/auditevents", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "`{items: [auditEvent]}` (without `session`)", body = Object), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn audit_events(
    State(state): State<Arc<AppState>>,
    Authenticated { caller: c, .. }: Authenticated,
    axum::extract::Query(q): axum::extract::Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let project = c.project().map(str::to_owned).or(q.project);
    c.require(project.as_deref(), Request::Action("audit"))?;
    let filter = reconciler::audit::AuditFilter {
        project,
        token: q.token,
        since: q.since,
        thread: q.thread,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
        ..Default::default()
    };
    let items: Vec<Value> = state
        .store
        .audit_events(&filter)
        .await?
        .into_iter()
        .map(|e| {
            let mut v = json!(e);
            if let Some(o) = v.as_object_mut() {
                o.remove("session");
            }
            v
        })
        .collect();
    Ok(Json(json!({"items": items})))
}
