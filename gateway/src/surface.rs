//! A project's tool surface and who used it: `GET /api/v1/projects/{project}/tools` lists the
//! tools the project serves (as clients name them), each with the `tools/call` counts per token
//! of the last `days` (default 30, at most [`MAX_DAYS`]) from the audit log. Read-only; the
//! blast radius of `mcpctl plan --base`.
//!
//! # Guarantees
//! A token sees only its own project (another is 404) and only the servers it may `view`; the
//! counts come only with `{role: run, action: audit}` (without it, `calls` is absent). Tool
//! lists come from the upstreams' caches; a server that cannot list its tools is named under
//! `unavailable` rather than failing the request.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use schema::rbac::Request;
use schema::spec::Role;
use schema::Kind;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::AppState;

/// Longest look-back of the counts, in days.
pub const MAX_DAYS: u32 = 90;
/// Look-back when `days` is not given.
pub const DEFAULT_DAYS: u32 = 30;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/projects/{project}/tools", get(tools))
}

#[derive(Debug, Deserialize)]
pub(crate) struct Window {
    days: Option<u32>,
}

/// The project's tools and who called them (the blast radius of a review).
#[utoipa::path(get, path = "/api/v1/projects/{project}/tools", tag = "resources",
    params(("project" = String, Path, description = "The caller's project"), ("days" = Option<u32>, Query, description = "Look-back of the call counts (default 30, at most 90)")),
    responses((status = 200, description = "`{project, days, tools: [{name, server, tool, calls?: [{token, count}]}], unavailable: [{server, error}]}`", body = Object), (status = 401, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn tools(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    Query(w): Query<Window>,
    Authenticated { caller, snapshot }: Authenticated,
) -> Result<Json<Value>, ApiError> {
    let view = snapshot
        .catalog
        .projects
        .get(&project)
        .filter(|_| caller.acts_in(&project))
        .ok_or_else(|| ApiError::NotFound(format!("project `{project}`")))?;
    let days = w.days.unwrap_or(DEFAULT_DAYS).clamp(1, MAX_DAYS);
    let counts = if caller.can(Some(&project), Request::Action("audit")) {
        let since = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
        let rows = app.store.tool_calls(&project, &since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).await?;
        let mut by_tool: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
        for r in rows {
            by_tool.entry((r.server, r.tool)).or_default().push(json!({"token": r.token, "count": r.count}));
        }
        Some(by_tool)
    } else {
        None
    };
    let mut tools = Vec::new();
    let mut unavailable = Vec::new();
    for server in &view.servers {
        let may_view = caller.can(Some(&project), Request::Resource { role: Role::View, kind: Kind::Server, name: Some(&server.name) });
        if !may_view {
            continue;
        }
        let listed = match app.upstreams.get(&server.key) {
            Some(up) => up.tools().await,
            None => Err("not running".into()),
        };
        match listed {
            Ok(list) => {
                for t in list.iter() {
                    let mut item = json!({"name": view.join(server, &t.name), "server": server.name, "tool": t.name});
                    if let Some(c) = &counts {
                        item["calls"] = json!(c.get(&(server.name.clone(), t.name.to_string())).cloned().unwrap_or_default());
                    }
                    tools.push(item);
                }
            }
            Err(e) => unavailable.push(json!({"server": server.name, "error": reconciler::redact::urls(&e)})),
        }
    }
    Ok(Json(json!({"project": project, "days": days, "tools": tools, "unavailable": unavailable})))
}
