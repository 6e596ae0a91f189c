//! Who the caller is and what it may do: `GET /api/v1/whoami` (what `mcpctl login` checks a
//! token with) and `GET /api/v1/can-i` (what the CLI asks before an action that has no gateway
//! route: reveal-secrets, migrate-secrets, reconcile). Both answer from the deployed snapshot
//! with schema's RBAC engine, like every other route.

use std::sync::Arc;

use axum::extract::Query;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use schema::rbac::{self, Request};
use schema::spec::Role;
use schema::{Kind, Resource, Spec};

use crate::auth::{Authenticated, Principal};
use crate::error::ApiError;
use crate::AppState;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/whoami", get(whoami)).route("/api/v1/can-i", get(can_i))
}

/// The caller: kind (`User` or `McpToken`), name, the McpToken's project, the token's name and
/// prefix, expiry, a user's groups, and every grant with where it applies and where it comes from.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "access",
    responses((status = 200, description = "`{kind, name, project?, token, prefix, expiresAt?, groups: [..], grants: [{binding, project?, definition?, group?}]}`", body = Object), (status = 401, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn whoami(Authenticated { caller: c, snapshot }: Authenticated) -> Json<Value> {
    let grants: Vec<Value> = c
        .grants
        .iter()
        .map(|e| {
            json!({
                "binding": rbac::binding_syntax(&e.binding),
                "project": e.project,
                "definition": e.definition.as_ref().map(ToString::to_string),
                "group": e.group,
            })
        })
        .collect();
    let (kind, name, project, token) = match &c.principal {
        Principal::McpToken { name, project, .. } => ("McpToken", name.clone(), Some(project.clone()), name.clone()),
        Principal::User { name, token } => ("User", name.clone(), None, token.clone()),
    };
    let user = match &c.principal {
        Principal::User { name, .. } => Some(name.clone()),
        Principal::McpToken { name, project, .. } => {
            snapshot.catalog.state.resolve(Kind::McpToken, name, Some(project)).and_then(|r| match &r.spec {
                Spec::McpToken(t) => t.user.clone(),
                _ => None,
            })
        }
    };
    let groups: Vec<&str> = match &user {
        Some(u) => snapshot
            .catalog
            .state
            .of_kind(Kind::Group)
            .filter(|g| matches!(&g.spec, Spec::Group(gs) if gs.members.contains(u)))
            .map(Resource::name)
            .collect(),
        None => Vec::new(),
    };
    Json(json!({
        "kind": kind,
        "name": name,
        "project": project,
        "user": user,
        "token": token,
        "prefix": c.prefix,
        "expiresAt": c.expires_at,
        "groups": groups,
        "grants": grants,
    }))
}

/// Query of `/api/v1/can-i`: an `action`, or a `verb` on a `resource` (plural kind) and
/// optionally one `name`; `project` is where it is asked (default: the McpToken's project; for
/// a user, the global grants).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(crate) struct CanIQuery {
    /// A named operation: chat, logs, audit, reconcile, migrate-secrets, reveal-secrets.
    action: Option<String>,
    /// view, edit, create, delete or run (with `resource`).
    verb: Option<String>,
    /// Plural kind (`servers`, …).
    resource: Option<String>,
    /// One resource by name.
    name: Option<String>,
    project: Option<String>,
}

/// Whether the caller may do it: `{allowed, subject, project?}`, 200 either way; a malformed
/// question is 400 (404 for an unknown kind).
#[utoipa::path(get, path = "/api/v1/can-i", tag = "access", params(CanIQuery),
    responses((status = 200, description = "`{allowed: bool, subject, project?}`", body = Object), (status = 400, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn can_i(Authenticated { caller: c, .. }: Authenticated, Query(q): Query<CanIQuery>) -> Result<Json<Value>, ApiError> {
    let role;
    let kind;
    let req = match (&q.action, &q.verb, &q.resource) {
        (Some(a), None, None) => Request::Action(a),
        (None, Some(v), Some(r)) => {
            role = serde_json::from_value::<Role>(json!(v)).map_err(|_| ApiError::BadQuery(format!("unknown verb `{v}`")))?;
            kind = Kind::ALL.iter().copied().find(|k| k.plural() == r).ok_or_else(|| ApiError::UnknownKind(r.clone()))?;
            Request::Resource { role, kind, name: q.name.as_deref() }
        }
        _ => return Err(ApiError::BadQuery("ask `action=…`, or `verb=…&resource=…[&name=…]`".into())),
    };
    let allowed = c.can(q.project.as_deref(), req);
    Ok(Json(json!({"allowed": allowed, "subject": c.subject().to_string(), "project": q.project.as_deref().or(c.project())})))
}
