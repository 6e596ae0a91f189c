//! The HTTP front door of `/projects/<project>/mcp`: authentication (401 with `WWW-Authenticate`
//! → RFC 9728 metadata, 403 for another project's token), body size and JSON-RPC shape checks,
//! then the hand-off to the project's rmcp service.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use schema::rbac;

use super::access::Access;
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
    if app.catalog().projects.get(&project).is_none() {
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
        (status = 404, description = "unknown project or session", body = Object),
        (status = 413, description = "body larger than --max-body-bytes", body = Object)),
    security(("bearer" = []), ()))]
pub(crate) async fn endpoint(State(app): State<Arc<AppState>>, Path(project): Path<String>, mut req: Request) -> Response {
    let Some(view) = app.catalog().projects.get(&project).cloned() else {
        return ApiError::NotFound(format!("project `{project}`")).into_response();
    };
    let header_value = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let caller = match (&header_value, view.spec.public) {
        (None, true) => None,
        (h, _) => match app.auth.authenticate(h.as_deref()).await {
            Ok(c) if c.project == project => Some(c),
            Ok(_) => return ApiError::Forbidden(format!("use project `{project}` (the token belongs to another project)")).into_response(),
            Err(e) => {
                let mut resp = e.into_response();
                if resp.status() == StatusCode::UNAUTHORIZED {
                    let url = format!("{}/.well-known/oauth-protected-resource/projects/{project}/mcp", base_url(&app, req.headers()));
                    if let Ok(v) = HeaderValue::from_str(&format!("Bearer realm=\"mcpctl\", resource_metadata=\"{url}\"")) {
                        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                    }
                }
                return resp;
            }
        },
    };
    if req.method() == axum::http::Method::POST {
        let (parts, body) = req.into_parts();
        let limit = app.mcp_settings.max_body_bytes;
        let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
            return jsonrpc_error(StatusCode::PAYLOAD_TOO_LARGE, serde_json::Value::Null, -32600, &format!("request body exceeds {limit} bytes"));
        };
        if let Err(resp) = check_jsonrpc(&bytes) {
            return resp;
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    let bindings = Arc::new(caller.as_ref().map(|c| rbac::token_bindings(&app.catalog().state, &c.token)).unwrap_or_default());
    let session = req.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    req.extensions_mut().insert(Access { caller, bindings, session });
    let service = app.endpoints.service(&app, &project);
    service.handle(req).await.map(Body::new)
}

/// A JSON-RPC error answered by the gateway itself.
fn jsonrpc_error(status: StatusCode, id: serde_json::Value, code: i64, message: &str) -> Response {
    (status, Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}))).into_response()
}

/// A POST body must be one JSON-RPC message: 400 with -32700 (not JSON) or -32600 (not JSON-RPC).
fn check_jsonrpc(bytes: &[u8]) -> Result<(), Response> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| jsonrpc_error(StatusCode::BAD_REQUEST, serde_json::Value::Null, -32700, &format!("parse error: {e}")))?;
    let id = v.get("id").cloned().unwrap_or(serde_json::Value::Null);
    let valid = v.get("jsonrpc").and_then(|j| j.as_str()) == Some("2.0") && (v.get("method").is_some_and(|m| m.is_string()) || v.get("result").is_some() || v.get("error").is_some());
    if valid {
        Ok(())
    } else {
        Err(jsonrpc_error(StatusCode::BAD_REQUEST, id, -32600, "invalid request: expected one JSON-RPC 2.0 message"))
    }
}
