//! The HTTP front door of `/projects/<project>/mcp`: authentication against the snapshot in force
//! (401 with `WWW-Authenticate` → RFC 9728 metadata, 403 for another project's token), the
//! per-token rate limit (429), session ownership (404 for a session another caller opened), body
//! size, body-read time and JSON-RPC shape checks, name/URI length limits (-32602), then the
//! hand-off to the project's rmcp service (or, for a canonical stateless `tools/call`, the direct
//! answer of `stateless`); the session id of an `initialize` answer is recorded with its owner.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::access::Access;
use super::limits::{oversized, ANONYMOUS};
use crate::auth::Judged;
use crate::error::ApiError;
use crate::AppState;

fn base_url(app: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &app.mcp_settings.public_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

/// RFC 9728 protected-resource metadata of a project's MCP endpoint.
#[utoipa::path(get, path = "/.well-known/oauth-protected-resource/projects/{project}/mcp", tag = "mcp",
    params(("project" = String, Path, description = "Project name")),
    responses((status = 200, description = "`{resource, resource_name, bearer_methods_supported, authorization_servers}`", body = Object), (status = 404, body = crate::openapi::ErrorBody)))]
pub(crate) async fn resource_metadata(State(app): State<Arc<AppState>>, Path(project): Path<String>, headers: HeaderMap) -> Response {
    if !app.catalog().projects.contains_key(&project) {
        return ApiError::NotFound(format!("project `{project}`")).into_response();
    }
    let base = base_url(&app, &headers);
    Json(json!({
        "resource": format!("{base}/projects/{project}/mcp"),
        "resource_name": format!("mcpctl project {project}"),
        "bearer_methods_supported": ["header"],
        "authorization_servers": [],
        "resource_documentation": "https://example.invalid/mcpctl/docs/gateway.md#tokens",
    }))
    .into_response()
}

/// MCP Streamable HTTP (POST JSON-RPC; GET opens the server stream; DELETE ends a session).
/// Both protocol generations: session-based (2025-06-18, 2025-11-25; `Mcp-Session-Id`) and
/// stateless 2026-07-28 (`server/discover`, per-request `_meta`).
#[utoipa::path(post, path = "/projects/{project}/mcp", tag = "mcp",
    params(("project" = String, Path, description = "Project name")),
    request_body(content = Object, description = "One JSON-RPC 2.0 message"),
    responses(
        (status = 200, description = "JSON-RPC response (application/json or text/event-stream)", body = Object),
        (status = 202, description = "notification or response accepted"),
        (status = 400, description = "not JSON-RPC (-32700/-32600) or unsupported MCP-Protocol-Version", body = Object),
        (status = 401, description = "missing, unknown, expired or revoked token; `WWW-Authenticate` names the RFC 9728 metadata", body = crate::openapi::ErrorBody),
        (status = 403, description = "token of another project, or a foreign Origin/Host", body = crate::openapi::ErrorBody),
        (status = 404, description = "unknown project, or a session unknown or opened by another caller", body = Object),
        (status = 408, description = "body not received within --body-read-timeout", body = Object),
        (status = 413, description = "body larger than --max-body-bytes", body = Object),
        (status = 429, description = "over the token's --rate-limit; `Retry-After` says when to retry", body = Object)),
    security(("bearer" = []), ()))]
pub(crate) async fn endpoint(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    Judged { snapshot, caller }: Judged,
    mut req: Request,
) -> Response {
    let Some(view) = snapshot.catalog.projects.get(&project).cloned() else {
        return ApiError::NotFound(format!("project `{project}`")).into_response();
    };
    let caller = match (caller, view.spec.public) {
        (Err(ApiError::NoToken), true) => None,
        (caller, _) => match caller {
            Ok(c) if c.acts_in(&project) => Some(c),
            Ok(_) => return ApiError::Forbidden(format!("use project `{project}` (the token belongs to another project)")).into_response(),
            Err(e) => {
                let url = format!("{}/.well-known/oauth-protected-resource/projects/{project}/mcp", base_url(&app, req.headers()));
                return e.with_resource_metadata(&url);
            }
        },
    };
    let subject = caller.as_ref().map_or_else(|| ANONYMOUS_SUBJECT.to_string(), |c| c.hash.clone());
    let bucket = caller.as_ref().map_or_else(|| format!("{ANONYMOUS}{project}"), |c| c.hash.clone());
    if let Err(wait) = app.limiter.check(&bucket) {
        let secs = wait.as_secs_f64().ceil().max(1.0);
        let mut resp =
            jsonrpc_error(StatusCode::TOO_MANY_REQUESTS, Value::Null, -32000, &format!("rate limit exceeded; retry in {secs} s"));
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs as u64));
        return resp;
    }
    let session = req.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(id) = &session {
        if !app.endpoints.owned_by(&project, id, &subject) {
            return jsonrpc_error(StatusCode::NOT_FOUND, Value::Null, -32600, "session not found");
        }
    }
    let bindings = caller.as_ref().map_or_else(|| Arc::new(Vec::new()), |c| c.bindings_in(&project));
    let access = Arc::new(Access { caller, bindings, session: session.clone(), thread: None });
    if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        let limit = app.mcp_settings.max_body_bytes;
        let bytes = match tokio::time::timeout(app.mcp_settings.body_read_timeout, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => {
                return jsonrpc_error(StatusCode::PAYLOAD_TOO_LARGE, Value::Null, -32600, &format!("request body exceeds {limit} bytes"))
            }
            Err(_) => {
                let secs = app.mcp_settings.body_read_timeout.as_secs_f64();
                let mut resp =
                    jsonrpc_error(StatusCode::REQUEST_TIMEOUT, Value::Null, -32600, &format!("request body not received within {secs} s"));
                resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                return resp;
            }
        };
        if !super::shape::acceptable(&bytes) {
            if let Err(resp) = check_jsonrpc(&bytes) {
                return resp;
            }
        }
        if session.is_none() {
            if let Some(call) = super::stateless::direct(&app.mcp_settings.allowed_hosts, &parts.headers, &bytes) {
                return super::stateless::answer(app.clone(), project, access, call).await;
            }
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    let delete = req.method() == Method::DELETE;
    req.extensions_mut().insert(access);
    let service = app.endpoints.service(&app, &project);
    let resp = service.handle(req).await.map(Body::new);
    match &session {
        None => {
            if let Some(id) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
                app.endpoints.opened(&app, &project, id, &subject, app.mcp_settings.max_sessions_per_token).await;
            }
        }
        Some(id) if delete && resp.status().is_success() => app.endpoints.forget(id),
        Some(_) => {}
    }
    resp
}

/// The session owner of a public project's anonymous callers.
const ANONYMOUS_SUBJECT: &str = "anonymous";

/// A JSON-RPC error answered by the gateway itself.
fn jsonrpc_error(status: StatusCode, id: serde_json::Value, code: i64, message: &str) -> Response {
    (status, Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))).into_response()
}

/// A POST body must be one JSON-RPC message: 400 with -32700 (not JSON) or -32600 (not JSON-RPC);
/// names and URIs over [`super::limits`]' bounds get -32602 (invalid params).
/// The fast path of well-formed bodies is [`super::shape::acceptable`]; this check runs for the
/// others.
#[allow(clippy::result_large_err)] // built once, on the refusal path only
pub(super) fn check_jsonrpc(bytes: &[u8]) -> Result<(), Response> {
    let v: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| jsonrpc_error(StatusCode::BAD_REQUEST, serde_json::Value::Null, -32700, &format!("parse error: {e}")))?;
    let id = v.get("id").cloned().unwrap_or(serde_json::Value::Null);
    let valid = v.get("jsonrpc").and_then(|j| j.as_str()) == Some("2.0")
        && (v.get("method").is_some_and(|m| m.is_string()) || v.get("result").is_some() || v.get("error").is_some());
    if !valid {
        return Err(jsonrpc_error(StatusCode::BAD_REQUEST, id, -32600, "invalid request: expected one JSON-RPC 2.0 message"));
    }
    match oversized(&v) {
        Some(why) => Err(jsonrpc_error(StatusCode::OK, id, -32602, &format!("invalid params: {why}"))),
        None => Ok(()),
    }
}
