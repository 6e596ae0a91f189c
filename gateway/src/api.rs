//! The read-only REST API: `/api/v1/<kind>[/<name>]`, `/api/v1/status`, `/api/v1/deploys`,
//! `/api/v1/auditevents`; described by the OpenAPI document at `/api/openapi.json`.
//! Desired state is changed through git only. Every request is authenticated and RBAC-checked
//! against the deployed snapshot (no request reads the resources table); a resource the caller
//! may not view is reported as not found. Status, deploys and audit events are scoped to the
//! token's project.

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
use crate::AppState;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/deploys", get(deploys))
        .route("/api/v1/auditevents", get(audit_events))
        .route("/api/v1/{kind}", get(list))
        .route("/api/v1/{kind}/{name}", get(one))
}

/// Whether the caller may see `res`: its project (or none) and a `view` grant.
fn visible(caller: &Caller, res: &Resource) -> bool {
    let in_scope = match res.metadata.project.as_deref() {
        None => true,
        Some(p) => p == caller.project,
    };
    in_scope && rbac::allows(&caller.bindings, Request::Resource { role: Role::View, kind: res.kind(), name: Some(res.name()) })
}

/// JSON of a resource for API answers: secret values never leave, not even as ciphertext.
fn public_json(res: &Resource) -> Value {
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

fn parse_kind(s: &str) -> Result<Kind, ApiError> {
    Kind::ALL.iter().copied().find(|k| k.plural() == s).ok_or_else(|| ApiError::UnknownKind(s.to_string()))
}

/// Resources of one kind the token may view.
#[utoipa::path(get, path = "/api/v1/{kind}", tag = "resources",
    params(("kind" = String, Path, description = "Plural kind: servers, projects, agents, secrets (values redacted), …")),
    responses((status = 200, description = "`{kind, items: [resource]}`", body = Object), (status = 401, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list(Authenticated { caller: c, snapshot }: Authenticated, Path(kind): Path<String>) -> Result<Json<Value>, ApiError> {
    let kind = parse_kind(&kind)?;
    let items: Vec<Value> = snapshot.catalog.state.of_kind(kind).filter(|r| visible(&c, r)).map(public_json).collect();
    Ok(Json(json!({"kind": kind.as_str(), "items": items})))
}

/// One resource, resolved in the token's project first, then globally.
#[utoipa::path(get, path = "/api/v1/{kind}/{name}", tag = "resources",
    params(("kind" = String, Path, description = "Plural kind"), ("name" = String, Path, description = "Resource name")),
    responses((status = 200, description = "The resource document (JSON)", body = Object), (status = 401, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn one(
    Authenticated { caller: c, snapshot }: Authenticated,
    Path((kind, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let kind = parse_kind(&kind)?;
    let project = (kind.scope() != Scope::Cluster).then_some(c.project.as_str());
    let res = snapshot
        .catalog
        .state
        .resolve(kind, &name, project)
        .filter(|r| visible(&c, r))
        .ok_or_else(|| ApiError::NotFound(format!("{kind} `{name}`")))?;
    Ok(Json(public_json(res)))
}

/// Deployed revision, last attempt, drift, and the health of the token's project's servers.
#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    responses((status = 200, description = "`{deployed, lastAttempted, lastOutcome, drift: bool, upstreams: [{server, transport, connected, error, unroutable, health, check: {state, lastCheck, checks, consecutiveFailures, lastError, restarts}, replicas}]}`: upstreams of the token's project only, URLs in errors redacted", body = Object), (status = 401, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn status(
    State(state): State<Arc<AppState>>,
    Authenticated { caller: c, snapshot }: Authenticated,
) -> Result<Json<Value>, ApiError> {
    let s = state.status();
    let keys: Vec<&str> =
        snapshot.catalog.projects.get(&c.project).map(|p| p.servers.iter().map(|s| s.key.as_str()).collect()).unwrap_or_default();
    let upstreams: Vec<Value> = state
        .upstreams
        .health()
        .into_iter()
        .filter(|h| keys.contains(&h.server.as_str()))
        .map(|mut h| {
            h.error = h.error.map(|e| reconciler::redact::urls(&e));
            json!(h)
        })
        .collect();
    Ok(Json(json!({
        "deployed": s.deployed,
        "lastAttempted": s.last_attempted,
        "lastOutcome": s.last_outcome,
        "drift": s.drift,
        "upstreams": upstreams,
    })))
}

/// The caller, if it holds `{role: run, action: audit}`.
fn auditor(c: &Caller, what: &str) -> Result<(), ApiError> {
    if !rbac::allows(&c.bindings, Request::Action("audit")) {
        return Err(ApiError::Forbidden(format!("read {what} (needs `{{role: run, action: audit}}`)")));
    }
    Ok(())
}

/// The deploy history, newest first (needs action `audit`). Deploys are of the whole repo, so a
/// project's token sees each row without its `error` text (which may concern other projects):
/// `errorHidden: true` marks the rows that had one; `mcpctl history` shows it to operators.
#[utoipa::path(get, path = "/api/v1/deploys", tag = "audit",
    responses((status = 200, description = "`{items: [deploy]}`; `error` replaced by `errorHidden: true`", body = Object), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn deploys(
    State(state): State<Arc<AppState>>,
    Authenticated { caller: c, .. }: Authenticated,
) -> Result<Json<Value>, ApiError> {
    auditor(&c, "deploys")?;
    let items: Vec<Value> = state
        .store
        .deploys(100)
        .await?
        .into_iter()
        .map(|mut d| {
            let hidden = d.error.take().is_some();
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
    /// RFC 3339 lower bound.
    since: Option<String>,
    /// Only the tool calls of this chat thread.
    thread: Option<String>,
    /// At most this many events (default 100, max 1000).
    limit: Option<i64>,
}

/// MCP audit events of the token's project, newest first (needs action `audit`). Session ids are
/// not shown: a session id is a bearer credential of its session.
#[utoipa::path(get, path = "/api/v1/auditevents", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "`{items: [auditEvent]}` (without `session`)", body = Object), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn audit_events(
    State(state): State<Arc<AppState>>,
    Authenticated { caller: c, .. }: Authenticated,
    axum::extract::Query(q): axum::extract::Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    auditor(&c, "audit events")?;
    let filter = reconciler::audit::AuditFilter {
        project: Some(c.project.clone()),
        token: q.token,
        since: q.since,
        thread: q.thread,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
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
