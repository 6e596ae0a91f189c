//! MCP for every project: Streamable HTTP at `/projects/<project>/mcp`, aggregating the tools,
//! prompts and resources of the project's servers.
//!
//! The protocol itself (both generations: the session-based 2025-06-18/2025-11-25 revisions with
//! `initialize`, `Mcp-Session-Id`, SSE and the GET stream; the stateless 2026-07-28 revision with
//! `server/discover` and per-request `_meta`) is rmcp's `StreamableHttpService`; one per project.
//! This module adds what a gateway is for: authentication before the protocol (401 with
//! `WWW-Authenticate` → RFC 9728 metadata, 403 for another project's token), RBAC on every list
//! and call, `<server>__<tool>` namespacing, gated sessions, audit and metrics.
//!
//! # Gated projects
//! A session of a gated project sees `begin_session` and the project's own prompts; calling
//! `begin_session` returns the instructions, opens the gate and sends `tools/list_changed`.
//! Stateless (2026-07-28) requests have no session, so there the gate opens per token: the
//! opening is stored in the database (any replica sees it) and lasts until the token changes.
//! Anonymous callers of a public gated project share one gate.

// Logging, sampling and roots are deprecated by SEP-2577 (2026-07-28) but are part of the
// 2025 revisions this gateway serves, so it forwards them.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientRequest, CompleteRequestParams, CompleteResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, Prompt, PromptArgument, PromptMessage, ReadResourceRequestParams, ReadResourceResponse, Reference, ResultType,
    ServerCapabilities, ServerConfig, ServerResult, SetLevelRequestParams, SubscribeRequestParams, Tool, UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, Peer, RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, ServerHandler};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use reconciler::audit::AuditEvent;
use schema::rbac::{self, Request as RbacRequest};
use schema::spec::{Role, RoleBinding};

use crate::auth::Caller;
use crate::catalog::{ProjectView, ServerRef};
use crate::error::ApiError;
use crate::upstream::{Change, Upstream};
use crate::AppState;

/// The tool a gated session starts with.
pub const BEGIN_SESSION: &str = "begin_session";

/// Browser origins accepted by default: pages served from this machine.
pub const LOOPBACK_ORIGINS: &[&str] = &["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

/// Settings of the MCP endpoints.
#[derive(Debug, Clone)]
pub struct McpSettings {
    /// `Host` values accepted (DNS-rebinding protection); empty accepts any.
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s accepted (default: loopback pages, any port); any other present
    /// `Origin` gets 403. Requests without `Origin` (non-browser clients) are not affected.
    pub allowed_origins: Vec<String>,
    /// Largest request body (413 above).
    pub max_body_bytes: usize,
    /// Base URL clients use (for RFC 9728 metadata); default `http://<Host>`.
    pub public_url: Option<String>,
}

impl Default for McpSettings {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: LOOPBACK_ORIGINS.iter().map(|o| (*o).to_string()).collect(),
            max_body_bytes: 4 * 1024 * 1024,
            public_url: None,
        }
    }
}

type ProjectService = StreamableHttpService<ProjectHandler, LocalSessionManager>;

/// Per-project protocol services and the sessions they hold.
#[derive(Default)]
pub struct Endpoints {
    services: Mutex<HashMap<String, (ProjectService, CancellationToken)>>,
    sessions: Mutex<HashMap<String, Vec<Peer<RoleServer>>>>,
    /// Stateless gate openings known to be stored: (project, subject).
    gates: Mutex<std::collections::HashSet<(String, String)>>,
}

impl Endpoints {
    fn service(&self, app: &Arc<AppState>, project: &str) -> ProjectService {
        let mut services = self.services.lock().expect("services lock");
        if let Some((s, _)) = services.get(project) {
            return s.clone();
        }
        let ct = CancellationToken::new();
        let s = &app.mcp_settings;
        let mut config = StreamableHttpServerConfig::default()
            .with_allowed_hosts(s.allowed_hosts.clone())
            .with_allowed_origins(s.allowed_origins.clone())
            .enforce_origin_validation()
            .with_json_response(true)
            .with_max_request_body_bytes(s.max_body_bytes)
            .with_cancellation_token(ct.clone());
        if s.allowed_hosts.is_empty() {
            config = config.disable_allowed_hosts();
        }
        let (app2, name) = (app.clone(), project.to_string());
        let factory = move || Ok(ProjectHandler { app: app2.clone(), project: name.clone(), opened: Arc::new(AtomicBool::new(false)) });
        let service = StreamableHttpService::new(factory, Arc::new(LocalSessionManager::default()), config);
        services.insert(project.to_string(), (service.clone(), ct));
        service
    }

    /// Close the endpoints of projects that are gone.
    pub fn retain(&self, projects: &HashMap<String, Arc<ProjectView>>) {
        self.services.lock().expect("services lock").retain(|p, (_, ct)| {
            let keep = projects.contains_key(p);
            if !keep {
                ct.cancel();
            }
            keep
        });
        self.sessions.lock().expect("sessions lock").retain(|p, _| projects.contains_key(p));
    }

    fn peers(&self, project: &str) -> Vec<Peer<RoleServer>> {
        let mut sessions = self.sessions.lock().expect("sessions lock");
        let v = sessions.entry(project.to_string()).or_default();
        v.retain(|p| !p.is_transport_closed());
        v.clone()
    }

    /// Tell every open session of `projects` that `change` happened.
    pub async fn notify(&self, projects: &[String], change: &Change) {
        for p in projects {
            for peer in self.peers(p) {
                let _ = match change {
                    Change::Tools(_) => peer.notify_tool_list_changed().await,
                    Change::Prompts(_) => peer.notify_prompt_list_changed().await,
                    Change::Resources(_) => peer.notify_resource_list_changed().await,
                    Change::ResourceUpdated(_, uri) => peer.notify_resource_updated(rmcp::model::ResourceUpdatedNotificationParam::new(uri.clone())).await,
                };
            }
        }
    }
}

/// Who is calling, attached to the HTTP request before rmcp sees it.
#[derive(Debug, Clone)]
struct Access {
    /// `None`: anonymous caller of a public project.
    caller: Option<Caller>,
    bindings: Arc<Vec<RoleBinding>>,
    /// The `Mcp-Session-Id` header, when the request belongs to a session.
    session: Option<String>,
}

impl Access {
    fn sees(&self, server: &str, item: Option<&str>, role: Role) -> bool {
        if self.caller.is_none() {
            return true;
        }
        let allows = |name: &str| rbac::allows(&self.bindings, RbacRequest::Resource { role, kind: schema::Kind::Server, name: Some(name) });
        allows(server) || item.is_some_and(|i| allows(&format!("{server}/{i}")))
    }

    /// Whether the caller holds any grant on `server` or one of its items.
    fn sees_server(&self, server: &str) -> bool {
        self.sees(server, None, Role::View)
            || self.bindings.iter().any(|b| b.resource.as_deref().is_some_and(|r| r == "*" || r == "servers") && b.name.as_deref().is_some_and(|n| n.starts_with(&format!("{server}/"))))
    }

    fn token_name(&self) -> String {
        self.caller.as_ref().map_or_else(|| "-".to_string(), |c| c.token.name().to_string())
    }

    /// The gate subject: the token's hash (not secret), or `anonymous`.
    fn subject(&self) -> String {
        match self.caller.as_ref().map(|c| &c.token.spec) {
            Some(schema::Spec::McpToken(t)) => t.hash.clone(),
            _ => "anonymous".to_string(),
        }
    }

    fn hash_prefix(&self) -> String {
        let s = self.subject();
        s.strip_prefix("sha256:").map_or_else(|| "-".to_string(), |h| h[..12.min(h.len())].to_string())
    }
}

/// `/projects/<project>/mcp` and the RFC 9728 metadata of each.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/projects/{project}/mcp", any(endpoint))
        .route("/.well-known/oauth-protected-resource/projects/{project}/mcp", get(resource_metadata))
}

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

/// The MCP server of one project (one instance per session, or per stateless request).
#[derive(Clone)]
pub struct ProjectHandler {
    app: Arc<AppState>,
    project: String,
    /// The gate of this session.
    opened: Arc<AtomicBool>,
}

fn access_of(ext: &rmcp::model::Extensions) -> Result<Access, McpError> {
    ext.get::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<Access>())
        .cloned()
        .ok_or_else(|| McpError::internal_error("request without gateway access context", None))
}

/// What one audited request was about.
struct Audited<'a> {
    method: &'static str,
    server: Option<&'a ServerRef>,
    target: &'a str,
}

impl ProjectHandler {
    fn view(&self) -> Result<Arc<ProjectView>, McpError> {
        self.app.catalog().projects.get(&self.project).cloned().ok_or_else(|| McpError::invalid_request(format!("project `{}` is no longer deployed", self.project), None))
    }

    fn upstream(&self, server: &ServerRef) -> Result<Arc<Upstream>, McpError> {
        self.app.upstreams.get(&server.key).ok_or_else(|| McpError::internal_error(format!("server `{}` is not deployed", server.name), None))
    }

    async fn gate_open(&self, view: &ProjectView, access: &Access) -> bool {
        if !view.spec.gated || self.opened.load(Ordering::Relaxed) {
            return true;
        }
        if access.session.is_some() {
            return false;
        }
        let key = (self.project.clone(), access.subject());
        if self.app.endpoints.gates.lock().expect("gates lock").contains(&key) {
            return true;
        }
        let open = matches!(self.app.store.gate_opened_at(&key.0, &key.1).await, Ok(Some(_)));
        if open {
            self.app.endpoints.gates.lock().expect("gates lock").insert(key);
        }
        open
    }

    fn record<T>(&self, access: &Access, what: Audited<'_>, started: Instant, result: &Result<T, McpError>, denied: bool) {
        let elapsed = started.elapsed();
        let outcome = match (result, denied) {
            (_, true) => "denied",
            (Ok(_), _) => "ok",
            (Err(_), _) => "error",
        };
        let server = what.server.map_or("-", |s| s.name.as_str());
        self.app.metrics.mcp_request(&self.project, server, what.target, what.method, outcome, elapsed);
        self.app.auditor.record(AuditEvent {
            id: 0,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            project: self.project.clone(),
            token: access.token_name(),
            token_prefix: access.hash_prefix(),
            session: access.session.clone().unwrap_or_else(|| "-".to_string()),
            method: what.method.to_string(),
            server: server.to_string(),
            target: what.target.to_string(),
            duration_us: i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX),
            outcome: outcome.to_string(),
            error: result.as_ref().err().map(|e| e.message.to_string()),
            revision: self.app.catalog().revision.clone(),
        });
    }

    /// Servers this caller may see, in project order.
    fn visible<'a>(view: &'a ProjectView, access: &Access) -> Vec<&'a ServerRef> {
        view.servers.iter().filter(|s| access.sees_server(&s.name)).collect()
    }

    /// Route a call to `name` (namespaced): the server, its upstream name, with RBAC and the gate.
    async fn route<'a>(&self, view: &'a ProjectView, access: &Access, name: &'a str, role: Role) -> Result<(&'a ServerRef, &'a str), McpError> {
        let (server, inner) = view.split(name).ok_or_else(|| McpError::invalid_params(format!("unknown name `{name}` in project `{}`", self.project), None))?;
        if !access.sees(&server.name, Some(inner), role) {
            return Err(McpError::invalid_params(format!("this token may not use `{name}`"), None));
        }
        if !self.gate_open(view, access).await {
            return Err(McpError::invalid_request(format!("project `{}` is gated: call `{BEGIN_SESSION}` first", self.project), None));
        }
        Ok((server, inner))
    }

    async fn begin_session(&self, view: &ProjectView, access: &Access, ctx: &RequestContext<RoleServer>) -> Result<CallToolResult, McpError> {
        self.opened.store(true, Ordering::Relaxed);
        if access.session.is_none() {
            let subject = access.subject();
            self.app.store.open_gate(&self.project, &subject).await.map_err(|e| McpError::internal_error(format!("cannot record the gate opening: {e}"), None))?;
            self.app.endpoints.gates.lock().expect("gates lock").insert((self.project.clone(), subject));
        }
        let _ = ctx.peer.notify_tool_list_changed().await;
        let text = view.spec.instructions.clone().unwrap_or_else(|| format!("Session open for project `{}`.", self.project));
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
    }

    fn begin_session_tool() -> Tool {
        let schema = json!({"type": "object", "properties": {}, "additionalProperties": false});
        let serde_json::Value::Object(schema) = schema else { unreachable!("object literal") };
        Tool::new(BEGIN_SESSION, "Start working in this project: returns its instructions and rules, then unlocks its tools. Call this first.", Arc::new(schema))
    }

    /// Run `request` upstream on `server`, audited.
    async fn forward(&self, access: &Access, what: Audited<'_>, request: ClientRequest, ctx: &RequestContext<RoleServer>) -> Result<ServerResult, McpError> {
        let started = Instant::now();
        let server = what.server.expect("forwarded requests name a server");
        let result = match self.upstream(server) {
            Ok(up) => up.request(request, ctx).await,
            Err(e) => Err(e),
        };
        self.record(access, what, started, &result, false);
        result
    }

    fn denied<T>(&self, access: &Access, what: Audited<'_>, err: McpError) -> Result<T, McpError> {
        let r: Result<T, McpError> = Err(err);
        self.record(access, what, Instant::now(), &r, true);
        r
    }
}

// Results relayed from a 2025-revision upstream carry no `resultType`; a 2026-07-28 caller
// requires it (rmcp strips it again for older callers), so relays mark them complete.
fn unexpected<T>() -> Result<T, McpError> {
    Err(McpError::internal_error("the upstream answered with an unexpected result type", None))
}

/// `{{name}}` → argument value.
fn render(content: &str, args: Option<&serde_json::Map<String, serde_json::Value>>) -> String {
    let mut out = content.to_string();
    for (k, v) in args.into_iter().flatten() {
        let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
        out = out.replace(&format!("{{{{{k}}}}}"), &v);
    }
    out
}

impl ServerHandler for ProjectHandler {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .enable_logging()
            .enable_completions()
            .build();
        let view = self.app.catalog().projects.get(&self.project).cloned();
        let mut instructions = view.as_ref().and_then(|v| v.spec.instructions.clone()).unwrap_or_default();
        if view.as_ref().is_some_and(|v| v.spec.gated) {
            instructions = format!("This project is gated: call the `{BEGIN_SESSION}` tool before anything else.\n{instructions}");
        }
        let mut info = ServerConfig::new(caps).with_server_info(Implementation::new(format!("mcpctl/{}", self.project), env!("CARGO_PKG_VERSION")));
        if !instructions.trim().is_empty() {
            info = info.with_instructions(instructions.trim_end().to_string());
        }
        info
    }

    async fn on_initialized(&self, ctx: NotificationContext<RoleServer>) {
        self.app.endpoints.sessions.lock().expect("sessions lock").entry(self.project.clone()).or_default().push(ctx.peer.clone());
        if let Ok(access) = access_of(&ctx.extensions) {
            let r: Result<(), McpError> = Ok(());
            self.record(&access, Audited { method: "initialize", server: None, target: "-" }, Instant::now(), &r, false);
        }
    }

    async fn list_tools(&self, _req: Option<PaginatedRequestParams>, ctx: RequestContext<RoleServer>) -> Result<ListToolsResult, McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        if !self.gate_open(&view, &access).await {
            return Ok(ListToolsResult::with_all_items(vec![Self::begin_session_tool()]));
        }
        let servers = Self::visible(&view, &access);
        let lists = futures::future::join_all(servers.iter().map(|s| async move { Some((*s, self.upstream(s).ok()?.tools().await.ok()?)) })).await;
        let mut tools = Vec::new();
        for (server, list) in lists.into_iter().flatten() {
            for t in list.iter() {
                if access.sees(&server.name, Some(&t.name), Role::View) {
                    let mut t = t.clone();
                    t.name = view.join(server, &t.name).into();
                    tools.push(t);
                }
            }
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(&self, mut req: CallToolRequestParams, ctx: RequestContext<RoleServer>) -> Result<CallToolResponse, McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let name = req.name.to_string();
        if name == BEGIN_SESSION && view.spec.gated {
            let started = Instant::now();
            let r = self.begin_session(&view, &access, &ctx).await;
            self.record(&access, Audited { method: "tools/call", server: None, target: BEGIN_SESSION }, started, &r, false);
            return r.map(CallToolResponse::Complete);
        }
        let (server, inner) = match self.route(&view, &access, &name, Role::Run).await {
            Ok(r) => r,
            Err(e) => return self.denied(&access, Audited { method: "tools/call", server: None, target: &name }, e),
        };
        req.name = inner.to_string().into();
        req.meta = None;
        let what = Audited { method: "tools/call", server: Some(server), target: inner };
        match self.forward(&access, what, ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(req)), &ctx).await? {
            ServerResult::CallToolResult(mut r) => {
                r.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(CallToolResponse::Complete(r))
            }
            ServerResult::InputRequiredResult(r) => Ok(CallToolResponse::InputRequired(r)),
            ServerResult::CreateTaskResult(r) => Ok(CallToolResponse::Task(r)),
            _ => unexpected(),
        }
    }

    async fn list_prompts(&self, _req: Option<PaginatedRequestParams>, ctx: RequestContext<RoleServer>) -> Result<ListPromptsResult, McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let mut prompts: Vec<Prompt> = view
            .prompts
            .iter()
            .map(|(name, p)| {
                let args = p.arguments.iter().map(|a| {
                    let mut pa = PromptArgument::new(a.name.clone());
                    pa.description = a.description.clone();
                    pa.required = Some(a.required);
                    pa
                });
                Prompt::new(name.clone(), p.description.clone(), Some(args.collect()))
            })
            .collect();
        if self.gate_open(&view, &access).await {
            let servers = Self::visible(&view, &access);
            let lists = futures::future::join_all(servers.iter().map(|s| async move { Some((*s, self.upstream(s).ok()?.prompts().await.ok()?)) })).await;
            for (server, list) in lists.into_iter().flatten() {
                for p in list.iter() {
                    let mut p = p.clone();
                    p.name = view.join(server, &p.name);
                    prompts.push(p);
                }
            }
        }
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(&self, mut req: GetPromptRequestParams, ctx: RequestContext<RoleServer>) -> Result<GetPromptResponse, McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let name = req.name.clone();
        if let Some((_, p)) = view.prompts.iter().find(|(n, _)| *n == name) {
            let started = Instant::now();
            let text = render(&p.content, req.arguments.as_ref());
            let mut result = GetPromptResult::new(vec![PromptMessage::new_text(rmcp::model::Role::User, text)]);
            result.description = p.description.clone();
            let r = Ok(result);
            self.record(&access, Audited { method: "prompts/get", server: None, target: &name }, started, &r, false);
            return r.map(GetPromptResponse::Complete);
        }
        let (server, inner) = match self.route(&view, &access, &name, Role::View).await {
            Ok(r) => r,
            Err(e) => return self.denied(&access, Audited { method: "prompts/get", server: None, target: &name }, e),
        };
        req.name = inner.to_string();
        req.meta = None;
        let what = Audited { method: "prompts/get", server: Some(server), target: inner };
        match self.forward(&access, what, ClientRequest::GetPromptRequest(rmcp::model::GetPromptRequest::new(req)), &ctx).await? {
            ServerResult::GetPromptResult(mut r) => {
                r.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(GetPromptResponse::Complete(r))
            }
            ServerResult::InputRequiredResult(r) => Ok(GetPromptResponse::InputRequired(r)),
            _ => unexpected(),
        }
    }

    async fn list_resources(&self, _req: Option<PaginatedRequestParams>, ctx: RequestContext<RoleServer>) -> Result<ListResourcesResult, McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let mut out = Vec::new();
        if self.gate_open(&view, &access).await {
            for (_, (r, _)) in self.resource_lists(&view, &access).await {
                out.extend(r.iter().cloned());
            }
        }
        Ok(ListResourcesResult::with_all_items(out))
    }

    async fn list_resource_templates(&self, _req: Option<PaginatedRequestParams>, ctx: RequestContext<RoleServer>) -> Result<ListResourceTemplatesResult, McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let mut out = Vec::new();
        if self.gate_open(&view, &access).await {
            for (_, (_, t)) in self.resource_lists(&view, &access).await {
                out.extend(t.iter().cloned());
            }
        }
        Ok(ListResourceTemplatesResult::with_all_items(out))
    }

    async fn read_resource(&self, mut req: ReadResourceRequestParams, ctx: RequestContext<RoleServer>) -> Result<ReadResourceResponse, McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let uri = req.uri.clone();
        let server = match self.resource_owner(&view, &access, &uri).await {
            Ok(s) => s,
            Err(e) => return self.denied(&access, Audited { method: "resources/read", server: None, target: &uri }, e),
        };
        req.meta = None;
        let what = Audited { method: "resources/read", server: Some(server), target: &uri };
        match self.forward(&access, what, ClientRequest::ReadResourceRequest(rmcp::model::ReadResourceRequest::new(req)), &ctx).await? {
            ServerResult::ReadResourceResult(mut r) => {
                r.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(ReadResourceResponse::Complete(r))
            }
            ServerResult::InputRequiredResult(r) => Ok(ReadResourceResponse::InputRequired(r)),
            _ => unexpected(),
        }
    }

    #[allow(deprecated)]
    async fn subscribe(&self, mut req: SubscribeRequestParams, ctx: RequestContext<RoleServer>) -> Result<(), McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let server = self.resource_owner(&view, &access, &req.uri).await?;
        req.meta = None;
        self.upstream(server)?.request(ClientRequest::SubscribeRequest(rmcp::model::SubscribeRequest::new(req)), &ctx).await.map(|_| ())
    }

    #[allow(deprecated)]
    async fn unsubscribe(&self, mut req: UnsubscribeRequestParams, ctx: RequestContext<RoleServer>) -> Result<(), McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let server = self.resource_owner(&view, &access, &req.uri).await?;
        req.meta = None;
        self.upstream(server)?.request(ClientRequest::UnsubscribeRequest(rmcp::model::UnsubscribeRequest::new(req)), &ctx).await.map(|_| ())
    }

    async fn set_level(&self, req: SetLevelRequestParams, ctx: RequestContext<RoleServer>) -> Result<(), McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        for s in Self::visible(&view, &access) {
            if let Ok(up) = self.upstream(s) {
                let mut r = req.clone();
                r.meta = None;
                let _ = up.request(ClientRequest::SetLevelRequest(rmcp::model::SetLevelRequest::new(r)), &ctx).await;
            }
        }
        Ok(())
    }

    async fn complete(&self, mut req: CompleteRequestParams, ctx: RequestContext<RoleServer>) -> Result<CompleteResult, McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let server = match &mut req.r#ref {
            Reference::Prompt(p) => {
                let name = p.name.clone();
                let (server, inner) = self.route(&view, &access, &name, Role::View).await?;
                p.name = inner.to_string();
                server.clone()
            }
            Reference::Resource(r) => self.resource_owner(&view, &access, &r.uri).await?.clone(),
            _ => return Err(McpError::invalid_params("unsupported completion reference", None)),
        };
        req.meta = None;
        match self.upstream(&server)?.request(ClientRequest::CompleteRequest(rmcp::model::CompleteRequest::new(req)), &ctx).await? {
            ServerResult::CompleteResult(mut r) => {
                r.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(r)
            }
            _ => unexpected(),
        }
    }
}

type ResourceLists = (Arc<Vec<rmcp::model::Resource>>, Arc<Vec<rmcp::model::ResourceTemplate>>);

impl ProjectHandler {
    async fn resource_lists<'a>(&self, view: &'a ProjectView, access: &Access) -> Vec<(&'a ServerRef, ResourceLists)> {
        let servers = Self::visible(view, access);
        futures::future::join_all(servers.into_iter().map(|s| async move { Some((s, self.upstream(s).ok()?.resources().await.ok()?)) })).await.into_iter().flatten().collect()
    }

    /// The server serving `uri`: the one listing it, else the one whose template prefix matches,
    /// else the only visible server.
    async fn resource_owner<'a>(&self, view: &'a ProjectView, access: &Access, uri: &str) -> Result<&'a ServerRef, McpError> {
        if !self.gate_open(view, access).await {
            return Err(McpError::invalid_request(format!("project `{}` is gated: call `{BEGIN_SESSION}` first", self.project), None));
        }
        let lists = self.resource_lists(view, access).await;
        let prefix_of = |t: &str| t.split('{').next().unwrap_or(t).to_string();
        let found = lists
            .iter()
            .find(|(_, (r, _))| r.iter().any(|x| x.uri == uri))
            .or_else(|| lists.iter().find(|(_, (_, t))| t.iter().any(|x| uri.starts_with(&prefix_of(&x.uri_template)))))
            .map(|(s, _)| *s);
        let visible = Self::visible(view, access);
        found.or(if visible.len() == 1 { Some(visible[0]) } else { None }).ok_or_else(|| McpError::resource_not_found(format!("no server of project `{}` serves `{uri}`", self.project), None))
    }
}

/// Forward upstream changes to the sessions that can see them, until the sender closes.
pub async fn forward_changes(app: Arc<AppState>) {
    let mut rx = app.upstreams.subscribe();
    loop {
        let change = match rx.recv().await {
            Ok(c) => c,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        let key = match &change {
            Change::Tools(k) | Change::Prompts(k) | Change::Resources(k) | Change::ResourceUpdated(k, _) => k.clone(),
        };
        let projects: Vec<String> = app.catalog().projects.values().filter(|p| p.servers.iter().any(|s| s.key == key)).map(|p| p.name.clone()).collect();
        app.endpoints.notify(&projects, &change).await;
    }
}
