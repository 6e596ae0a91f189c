//! The read-only REST API: `/api/v1/<kind>[/<name>]`, `/api/v1/status`, `/api/v1/deploys`.
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

async fn list(State(state): State<Arc<AppState>>, Path(kind): Path<String>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let c = caller(&state, &headers).await?;
    let kind = parse_kind(&kind)?;
    let all = stored(&state).await?;
    let bindings = rbac::token_bindings(&all, &c.token);
    let items: Vec<Value> = all.of_kind(kind).filter(|r| visible(&bindings, &c, r)).map(public_json).collect();
    Ok(Json(json!({"kind": kind.as_str(), "items": items})))
}

async fn one(State(state): State<Arc<AppState>>, Path((kind, name)): Path<(String, String)>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let c = caller(&state, &headers).await?;
    let kind = parse_kind(&kind)?;
    let all = stored(&state).await?;
    let bindings = rbac::token_bindings(&all, &c.token);
    let project = (kind.scope() != Scope::Cluster).then_some(c.project.as_str());
    let res = all.resolve(kind, &name, project).filter(|r| visible(&bindings, &c, r)).ok_or_else(|| ApiError::NotFound(format!("{kind} `{name}`")))?;
    Ok(Json(public_json(res)))
}

async fn status(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    caller(&state, &headers).await?;
    let good = state.store.last_good_deploy().await?;
    let last = state.store.deploys(1).await?.into_iter().next();
    let drift = state.store.drift().await?;
    Ok(Json(json!({
        "deployed": good.map(|d| d.revision),
        "lastAttempted": last.as_ref().map(|d| d.revision.clone()),
        "lastOutcome": last.map(|d| d.outcome),
        "drift": if drift.is_empty() { None } else { Some(drift) },
    })))
}

async fn deploys(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let c = caller(&state, &headers).await?;
    let all = stored(&state).await?;
    if !rbac::allows(&rbac::token_bindings(&all, &c.token), Request::Action("audit")) {
        return Err(ApiError::Forbidden("read deploys (needs `{role: run, action: audit}`)".into()));
    }
    Ok(Json(json!({"items": state.store.deploys(100).await?})))
}
