//! The read-only REST API: `/api/v1/<kind>[/<name>]`, `/api/v1/status`, `/api/v1/deploys`,
//! `/api/v1/auditevents`; described by the OpenAPI document at `/api/openapi.json`.
//! Desired state is changed through git only. Every request is authenticated and RBAC-checked;
//! a resource the caller may not view is reported as not found.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use schema::rbac::{self, Request};
use schema::spec::Role;
use schema::{DesiredState, Kind, Resource, Scope};

use crate::auth::Caller;
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

async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let h = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    state.auth.authenticate(h).await
}

/// The stored state as a desired state (for RBAC resolution and visibility).
async fn stored(state: &AppState) -> Result<DesiredState, ApiError> {
    let rows = state.store.resources().await?;
    Ok(DesiredState::new(rows.iter().filter_map(|r| Resource::from_body(&r.body).ok()).collect()))
}

/// Whether the caller may see `res`: its project (or none) and a `view` grant.
fn visible(bindings: &[schema::spec::RoleBinding], caller: &Caller, res: &Resource) -> bool {
    let in_scope = match res.metadata.project.as_deref() {
        None => true,
        Some(p) => p == caller.project,
    };
    in_scope && rbac::allows(bindings, Request::Resource { role: Role::View, kind: res.kind(), name: Some(res.name()) })
}

/// JSON of a resource for API answers: secret values never leave, not even as ciphertext.
fn public_json(res: &Resource) -> Value {
    let mut v = res.to_json();
    if let Some(Value::Object(data)) = v.pointer_mut("/spec/data") {
        for val in data.values_mut() {
            *val = json!("(redacted)");
        }
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
pub(crate) async fn list(State(state): State<Arc<AppState>>, Path(kind): Path<String>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let c = caller(&state, &headers).await?;
    let kind = parse_kind(&kind)?;
    let all = stored(&state).await?;
    let bindings = rbac::token_bindings(&all, &c.token);
    let items: Vec<Value> = all.of_kind(kind).filter(|r| visible(&bindings, &c, r)).map(public_json).collect();
    Ok(Json(json!({"kind": kind.as_str(), "items": items})))
}

/// One resource, resolved in the token's project first, then globally.
#[utoipa::path(get, path = "/api/v1/{kind}/{name}", tag = "resources",
    params(("kind" = String, Path, description = "Plural kind"), ("name" = String, Path, description = "Resource name")),
    responses((status = 200, description = "The resource document (JSON)", body = Object), (status = 401, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn one(State(state): State<Arc<AppState>>, Path((kind, name)): Path<(String, String)>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let c = caller(&state, &headers).await?;
    let kind = parse_kind(&kind)?;
    let all = stored(&state).await?;
    let bindings = rbac::token_bindings(&all, &c.token);
    let project = (kind.scope() != Scope::Cluster).then_some(c.project.as_str());
    let res = all.resolve(kind, &name, project).filter(|r| visible(&bindings, &c, r)).ok_or_else(|| ApiError::NotFound(format!("{kind} `{name}`")))?;
    Ok(Json(public_json(res)))
}

/// Deployed revision, last attempt, drift, and the gateway's upstream connections.
#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    responses((status = 200, description = "`{deployed, lastAttempted, lastOutcome, drift, upstreams: [{server, transport, connected, error, health, check: {state, lastCheck, checks, consecutiveFailures, lastError, restarts}, replicas}]}`", body = Object), (status = 401, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn status(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    caller(&state, &headers).await?;
    let good = state.store.last_good_deploy().await?;
    let last = state.store.deploys(1).await?.into_iter().next();
    let drift = state.store.drift().await?;
    Ok(Json(json!({
        "deployed": good.map(|d| d.revision),
        "lastAttempted": last.as_ref().map(|d| d.revision.clone()),
        "lastOutcome": last.map(|d| d.outcome),
        "drift": if drift.is_empty() { None } else { Some(drift) },
        "upstreams": state.upstreams.health(),
    })))
}

/// The caller, if it holds `{role: run, action: audit}`.
async fn auditor(state: &AppState, headers: &HeaderMap, what: &str) -> Result<Caller, ApiError> {
    let c = caller(state, headers).await?;
    let all = stored(state).await?;
    if !rbac::allows(&rbac::token_bindings(&all, &c.token), Request::Action("audit")) {
        return Err(ApiError::Forbidden(format!("read {what} (needs `{{role: run, action: audit}}`)")));
    }
    Ok(c)
}

/// The deploy history, newest first (needs action `audit`).
#[utoipa::path(get, path = "/api/v1/deploys", tag = "audit",
    responses((status = 200, description = "`{items: [deploy]}`", body = Object), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn deploys(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    auditor(&state, &headers, "deploys").await?;
    Ok(Json(json!({"items": state.store.deploys(100).await?})))
}

/// Query of `/api/v1/auditevents`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(crate) struct AuditQuery {
    /// Only events of this token (its resource name).
    token: Option<String>,
    /// RFC 3339 lower bound.
    since: Option<String>,
    /// At most this many events (default 100, max 1000).
    limit: Option<i64>,
}

/// MCP audit events of the token's project, newest first (needs action `audit`).
#[utoipa::path(get, path = "/api/v1/auditevents", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "`{items: [auditEvent]}`", body = Object), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn audit_events(State(state): State<Arc<AppState>>, headers: HeaderMap, axum::extract::Query(q): axum::extract::Query<AuditQuery>) -> Result<Json<Value>, ApiError> {
    let c = auditor(&state, &headers, "audit events").await?;
    let filter = reconciler::audit::AuditFilter { project: Some(c.project.clone()), token: q.token, since: q.since, limit: q.limit.unwrap_or(100).clamp(1, 1000) };
    Ok(Json(json!({"items": state.store.audit_events(&filter).await?})))
}
