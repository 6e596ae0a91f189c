//! The MCP server of one project: aggregated lists, routed calls, RBAC per item, the gate of
//! gated projects, audit and metrics of every request.

// Logging, sampling and roots are deprecated by SEP-2577 (2026-07-28) but are part of the
// 2025 revisions this gateway serves, so it forwards them.
#![allow(deprecated)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientRequest, CompleteRequestParams, CompleteResult, ContentBlock,
    GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, Prompt, PromptArgument, PromptMessage, ReadResourceRequestParams,
    ReadResourceResponse, Reference, ResultType, ServerCapabilities, ServerConfig, ServerResult, SetLevelRequestParams,
    SubscribeRequestParams, Tool, UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer};
use rmcp::{ErrorData as McpError, ServerHandler};
use serde_json::json;

use reconciler::audit::AuditEvent;
use schema::spec::Role;

use super::access::Access;
use super::BEGIN_SESSION;
use crate::catalog::{ProjectView, ServerRef};
use crate::upstream::readiness::{Ready, STARTING_META};
use crate::upstream::{CallerKey, Downstream, Relayed, Upstream};
use crate::AppState;

/// The MCP server of one project (one instance per session, or per stateless request).
#[derive(Clone)]
pub struct ProjectHandler {
    pub(crate) app: Arc<AppState>,
    pub(crate) project: String,
    /// The gate of this session.
    pub(crate) opened: Arc<AtomicBool>,
}

/// The caller of this request (shared, not copied: it holds the token's bindings).
fn access_of(ext: &rmcp::model::Extensions) -> Result<Arc<Access>, McpError> {
    ext.get::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<Arc<Access>>())
        // In-process sessions (an agent's tools, `chat::tools`) carry it on the message itself.
        .or_else(|| ext.get::<Arc<Access>>())
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
    pub(super) fn view(&self) -> Result<Arc<ProjectView>, McpError> {
        self.app
            .catalog()
            .projects
            .get(&self.project)
            .cloned()
            .ok_or_else(|| McpError::invalid_request(format!("project `{}` is no longer deployed", self.project), None))
    }

    fn upstream(&self, server: &ServerRef) -> Result<Arc<Upstream>, McpError> {
        self.app
            .upstreams
            .get(&server.key)
            .ok_or_else(|| McpError::internal_error(format!("server `{}` is not deployed", server.name), None))
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
        // Boxed: the query's future is large, and rare (first call of a caller in a gated project).
        let open = matches!(Box::pin(self.app.store.gate_opened_at(&key.0, &key.1)).await, Ok(Some(_)));
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
            thread: access.thread.clone(),
        });
    }

    /// Servers this caller may see, in project order.
    fn visible<'a>(view: &'a ProjectView, access: &Access) -> Vec<&'a ServerRef> {
        view.servers.iter().filter(|s| access.sees_server(&s.name)).collect()
    }

    /// Route a call to `name` (namespaced): the server, its upstream name, with RBAC and the gate.
    /// A tool the caller may not use is refused as such (tools are listed per grant); any other
    /// item (a prompt) is refused exactly like an unknown name, so its existence does not leak.
    async fn route<'a>(
        &self,
        view: &'a ProjectView,
        access: &Access,
        name: &'a str,
        role: Role,
    ) -> Result<(&'a ServerRef, &'a str), McpError> {
        let unknown = || McpError::invalid_params(format!("unknown name `{name}` in project `{}`", self.project), None);
        let (server, inner) = view.split(name).ok_or_else(unknown)?;
        if !access.sees_item(&server.name, inner, role) {
            return Err(if role == Role::Run {
                McpError::invalid_params(format!("this token may not use `{name}`"), None)
            } else {
                unknown()
            });
        }
        if !self.gate_open(view, access).await {
            return Err(McpError::invalid_request(format!("project `{}` is gated: call `{BEGIN_SESSION}` first", self.project), None));
        }
        Ok((server, inner))
    }

    async fn begin_session(
        &self,
        view: &ProjectView,
        access: &Access,
        ctx: &RequestContext<RoleServer>,
        task: Option<&str>,
    ) -> Result<(CallToolResult, Option<crate::gate::Selection>), McpError> {
        self.opened.store(true, Ordering::Relaxed);
        if access.session.is_none() {
            let subject = access.subject();
            self.app
                .store
                .open_gate(&self.project, &subject)
                .await
                .map_err(|e| McpError::internal_error(format!("cannot record the gate opening: {e}"), None))?;
            self.app.endpoints.gates.lock().expect("gates lock").insert((self.project.clone(), subject));
        }
        let _ = ctx.peer.notify_tool_list_changed().await;
        // With a task, the prompts relevant to it follow the instructions (`gate`).
        let (text, selection) = crate::gate::begin_session(&self.app, &self.app.catalog(), view, task).await;
        Ok((CallToolResult::success(vec![ContentBlock::text(text)]), selection))
    }

    fn begin_session_tool() -> Tool {
        let task = "What you are about to do; the answer then adds the project prompts most relevant to it.";
        let schema =
            json!({"type": "object", "properties": {"task": {"type": "string", "description": task}}, "additionalProperties": false});
        let serde_json::Value::Object(schema) = schema else { unreachable!("object literal") };
        Tool::new(
            BEGIN_SESSION,
            "Start working in this project: returns its instructions and rules, then unlocks its tools. Call this first.",
            Arc::new(schema),
        )
    }

    /// Run `request` upstream on `server`, audited.
    async fn forward(
        &self,
        access: &Access,
        what: Audited<'_>,
        request: ClientRequest,
        downstream: Downstream,
    ) -> Result<ServerResult, McpError> {
        self.audited(access, what, |up, caller| async move { up.request(request, downstream, caller).await }).await
    }

    /// Run `send` on `what`'s server (its upstream and the caller's key), audited.
    async fn audited<T, F: Future<Output = Result<T, McpError>>>(
        &self,
        access: &Access,
        what: Audited<'_>,
        send: impl FnOnce(Arc<Upstream>, CallerKey) -> F,
    ) -> Result<T, McpError> {
        let started = Instant::now();
        let server = what.server.expect("forwarded requests name a server");
        let result = match self.upstream(server) {
            Ok(up) => send(up, access.caller_key(&self.project)).await,
            Err(e) => Err(e),
        };
        self.record(access, what, started, &result, false);
        result
    }

    /// `tools/call` of a server's tool (`name` namespaced): RBAC, the gate, then upstream,
    /// audited (rmcp's dispatch).
    pub(super) async fn call_routed(
        &self,
        view: &ProjectView,
        access: &Access,
        req: CallToolRequestParams,
        downstream: Downstream,
    ) -> Result<CallToolResponse, McpError> {
        let send = |up: Arc<Upstream>, req, caller| async move {
            up.request(ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(req)), downstream, caller).await
        };
        tool_response(self.call_via(view, access, req, send).await?)
    }

    /// [`ProjectHandler::call_routed`] answered raw by a local process where it can be
    /// ([`Upstream::call_relayed`]): the direct stateless answer (`stateless`).
    pub(super) async fn call_relayed(
        &self,
        view: &ProjectView,
        access: &Access,
        req: CallToolRequestParams,
        downstream: Downstream,
    ) -> Result<Relayed, McpError> {
        let send = |up: Arc<Upstream>, req, caller| async move { up.call_relayed(req, downstream, caller).await };
        self.call_via(view, access, req, send).await
    }

    /// The route, RBAC and gate of a `tools/call`, then `send` of the upstream's request, audited.
    async fn call_via<T, F: Future<Output = Result<T, McpError>>>(
        &self,
        view: &ProjectView,
        access: &Access,
        mut req: CallToolRequestParams,
        send: impl FnOnce(Arc<Upstream>, CallToolRequestParams, CallerKey) -> F,
    ) -> Result<T, McpError> {
        let name = req.name.to_string();
        let (server, inner) = match self.route(view, access, &name, Role::Run).await {
            Ok(r) => r,
            Err(e) => return self.denied(access, Audited { method: "tools/call", server: None, target: &name }, e),
        };
        req.name = inner.to_string().into();
        req.meta = None;
        let what = Audited { method: "tools/call", server: Some(server), target: inner };
        self.audited(access, what, |up, caller| send(up, req, caller)).await
    }

    fn denied<T>(&self, access: &Access, what: Audited<'_>, err: McpError) -> Result<T, McpError> {
        let r: Result<T, McpError> = Err(err);
        self.record(access, what, Instant::now(), &r, true);
        r
    }
}

/// The caller's answer to a `tools/call` from the upstream's result. Results relayed from a
/// 2025-revision upstream carry no `resultType`; a 2026-07-28 caller requires it (rmcp strips it
/// again for older callers), so relays mark them complete.
///
/// # Errors
/// When the upstream answered with a result that is not one of a `tools/call`.
pub(super) fn tool_response(r: ServerResult) -> Result<CallToolResponse, McpError> {
    match r {
        ServerResult::CallToolResult(mut r) => {
            r.result_type.get_or_insert(ResultType::COMPLETE);
            Ok(CallToolResponse::Complete(r))
        }
        ServerResult::InputRequiredResult(r) => Ok(CallToolResponse::InputRequired(r)),
        ServerResult::CreateTaskResult(r) => Ok(CallToolResponse::Task(r)),
        _ => unexpected(),
    }
}

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
        let mut info =
            ServerConfig::new(caps).with_server_info(Implementation::new(format!("mcpctl/{}", self.project), env!("CARGO_PKG_VERSION")));
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
        // Servers still starting do not delay the answer: they are named in `_meta` and a
        // `tools/list_changed` follows when they arrive (see `upstream::readiness`).
        let lists = futures::future::join_all(servers.iter().map(|s| async move {
            let ready = match self.upstream(s) {
                Ok(u) => u.tools_now().await,
                Err(e) => Ready::Unavailable(e.message.to_string()),
            };
            (*s, ready)
        }))
        .await;
        let (mut ready, mut starting) = (Vec::new(), Vec::new());
        for (server, list) in lists {
            match list {
                Ready::Now(list) => ready.push((server, list)),
                Ready::Starting => starting.push(server.name.clone()),
                Ready::Unavailable(_) => {}
            }
        }
        let mut tools = Vec::new();
        for (server, list) in ready {
            for t in list.iter() {
                if access.sees(&server.name, Some(&t.name), Role::View) {
                    let mut t = t.clone();
                    t.name = view.join(server, &t.name).into();
                    tools.push(t);
                }
            }
        }
        let mut result = ListToolsResult::with_all_items(tools);
        if !starting.is_empty() {
            result.meta = Some(rmcp::model::MetaObject(serde_json::Map::from_iter([(STARTING_META.to_string(), json!(starting))])));
        }
        Ok(result)
    }

    async fn call_tool(&self, req: CallToolRequestParams, ctx: RequestContext<RoleServer>) -> Result<CallToolResponse, McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let name = req.name.to_string();
        if name == BEGIN_SESSION && view.spec.gated {
            let started = Instant::now();
            let task = req.arguments.as_ref().and_then(|a| a.get("task")).and_then(|t| t.as_str()).map(str::to_string);
            let r = self.begin_session(&view, &access, &ctx, task.as_deref()).await;
            // The audit target names how the prompts were chosen, and which (`gate::Selection::detail`).
            let target = match &r {
                Ok((_, Some(sel))) => format!("{BEGIN_SESSION} [{}]", sel.detail()),
                _ => BEGIN_SESSION.to_string(),
            };
            self.record(&access, Audited { method: "tools/call", server: None, target: &target }, started, &r, false);
            return r.map(|(result, _)| CallToolResponse::Complete(result));
        }
        self.call_routed(&view, &access, req, Downstream::of(&ctx)).await
    }

    async fn list_prompts(
        &self,
        _req: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
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
            let lists = futures::future::join_all(
                servers.iter().map(|s| async move { Some((*s, self.upstream(s).ok()?.prompts_now().await.now()?)) }),
            )
            .await;
            for (server, list) in lists.into_iter().flatten() {
                for p in list.iter().filter(|p| access.sees_item(&server.name, &p.name, Role::View)) {
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
        match self
            .forward(&access, what, ClientRequest::GetPromptRequest(rmcp::model::GetPromptRequest::new(req)), Downstream::of(&ctx))
            .await?
        {
            ServerResult::GetPromptResult(mut r) => {
                r.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(GetPromptResponse::Complete(r))
            }
            ServerResult::InputRequiredResult(r) => Ok(GetPromptResponse::InputRequired(r)),
            _ => unexpected(),
        }
    }

    async fn list_resources(
        &self,
        _req: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let mut out = Vec::new();
        if self.gate_open(&view, &access).await {
            for (_, (r, _)) in self.resource_lists(&view, &access, false).await {
                out.extend(r.iter().cloned());
            }
        }
        Ok(ListResourcesResult::with_all_items(out))
    }

    async fn list_resource_templates(
        &self,
        _req: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let mut out = Vec::new();
        if self.gate_open(&view, &access).await {
            for (_, (_, t)) in self.resource_lists(&view, &access, false).await {
                out.extend(t.iter().cloned());
            }
        }
        Ok(ListResourceTemplatesResult::with_all_items(out))
    }

    async fn read_resource(
        &self,
        mut req: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let uri = req.uri.clone();
        let server = match self.resource_owner(&view, &access, &uri).await {
            Ok(s) => s,
            Err(e) => return self.denied(&access, Audited { method: "resources/read", server: None, target: &uri }, e),
        };
        req.meta = None;
        let what = Audited { method: "resources/read", server: Some(server), target: &uri };
        match self
            .forward(&access, what, ClientRequest::ReadResourceRequest(rmcp::model::ReadResourceRequest::new(req)), Downstream::of(&ctx))
            .await?
        {
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
        let uri = req.uri.clone();
        let server = match self.resource_owner(&view, &access, &uri).await {
            Ok(s) => s,
            Err(e) => return self.denied(&access, Audited { method: "resources/subscribe", server: None, target: &uri }, e),
        };
        req.meta = None;
        let what = Audited { method: "resources/subscribe", server: Some(server), target: &uri };
        self.forward(&access, what, ClientRequest::SubscribeRequest(rmcp::model::SubscribeRequest::new(req)), Downstream::of(&ctx)).await?;
        self.upstream(server)?.subscribed(&uri, access.caller_key(&self.project), ctx.peer.clone());
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(&self, mut req: UnsubscribeRequestParams, ctx: RequestContext<RoleServer>) -> Result<(), McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let uri = req.uri.clone();
        let server = match self.resource_owner(&view, &access, &uri).await {
            Ok(s) => s,
            Err(e) => return self.denied(&access, Audited { method: "resources/unsubscribe", server: None, target: &uri }, e),
        };
        req.meta = None;
        let what = Audited { method: "resources/unsubscribe", server: Some(server), target: &uri };
        // The upstream holds one subscription for every caller: end it only with the last one.
        if !self.upstream(server)?.unsubscribed(&uri, &access.caller_key(&self.project)) {
            let r = Ok(());
            self.record(&access, what, Instant::now(), &r, false);
            return r;
        }
        self.forward(&access, what, ClientRequest::UnsubscribeRequest(rmcp::model::UnsubscribeRequest::new(req)), Downstream::of(&ctx))
            .await
            .map(|_| ())
    }

    /// The caller's log level, kept per session at the gateway: it filters the log messages
    /// forwarded to this session and never changes an upstream (shared by every caller). Needs
    /// `run` on a server of the project (a viewer cannot change what a server does).
    async fn set_level(&self, req: SetLevelRequestParams, ctx: RequestContext<RoleServer>) -> Result<(), McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let what = || Audited { method: "logging/setLevel", server: None, target: "-" };
        let runs = Self::visible(&view, &access).iter().any(|s| access.holds_server(&s.name, Role::Run));
        if !runs {
            return self.denied(
                &access,
                what(),
                McpError::invalid_request(format!("logging/setLevel needs the `run` role on a server of project `{}`", self.project), None),
            );
        }
        let caller = access.caller_key(&self.project);
        if caller.has_session() {
            self.app.upstreams.set_level(caller, req.level, ctx.peer.clone());
        }
        let r = Ok(());
        self.record(&access, what(), Instant::now(), &r, false);
        r
    }

    async fn complete(&self, mut req: CompleteRequestParams, ctx: RequestContext<RoleServer>) -> Result<CompleteResult, McpError> {
        let (view, access) = (self.view()?, access_of(&ctx.extensions)?);
        let (server, target) = match &mut req.r#ref {
            Reference::Prompt(p) => {
                let name = p.name.clone();
                match self.route(&view, &access, &name, Role::View).await {
                    Ok((server, inner)) => {
                        let inner = inner.to_string();
                        p.name = inner.clone();
                        (server.clone(), inner)
                    }
                    Err(e) => return self.denied(&access, Audited { method: "completion/complete", server: None, target: &name }, e),
                }
            }
            Reference::Resource(r) => {
                let uri = r.uri.clone();
                match self.resource_owner(&view, &access, &uri).await {
                    Ok(server) => (server.clone(), uri),
                    Err(e) => return self.denied(&access, Audited { method: "completion/complete", server: None, target: &uri }, e),
                }
            }
            _ => return Err(McpError::invalid_params("unsupported completion reference", None)),
        };
        req.meta = None;
        let what = Audited { method: "completion/complete", server: Some(&server), target: &target };
        match self
            .forward(&access, what, ClientRequest::CompleteRequest(rmcp::model::CompleteRequest::new(req)), Downstream::of(&ctx))
            .await?
        {
            ServerResult::CompleteResult(mut r) => {
                r.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(r)
            }
            _ => unexpected(),
        }
    }
}

type ResourceLists = (Vec<rmcp::model::Resource>, Vec<rmcp::model::ResourceTemplate>);

impl ProjectHandler {
    /// The resources and templates of every visible server that the caller may see: all of a
    /// server's with a grant on the server, else those granted by URI / URI template.
    /// Resource lists of the visible servers; `wait`: also of servers still starting (to route a
    /// read), else without them (a listing answers at once).
    async fn resource_lists<'a>(&self, view: &'a ProjectView, access: &Access, wait: bool) -> Vec<(&'a ServerRef, ResourceLists)> {
        let servers = Self::visible(view, access);
        let lists = futures::future::join_all(servers.into_iter().map(|s| async move {
            let up = self.upstream(s).ok()?;
            Some((s, if wait { up.resources().await.ok()? } else { up.resources_now().await.now()? }))
        }))
        .await;
        lists
            .into_iter()
            .flatten()
            .map(|(s, (r, t))| {
                let r = r.iter().filter(|x| access.sees_item(&s.name, &x.uri, Role::View)).cloned().collect();
                let t = t.iter().filter(|x| access.sees_item(&s.name, &x.uri_template, Role::View)).cloned().collect();
                (s, (r, t))
            })
            .collect()
    }

    /// The server serving `uri` among what the caller may see: the one listing it, else the one
    /// whose template prefix matches, else the only visible server when the caller holds it as a
    /// whole. An ungranted URI is answered exactly like an unknown one.
    async fn resource_owner<'a>(&self, view: &'a ProjectView, access: &Access, uri: &str) -> Result<&'a ServerRef, McpError> {
        if !self.gate_open(view, access).await {
            return Err(McpError::invalid_request(format!("project `{}` is gated: call `{BEGIN_SESSION}` first", self.project), None));
        }
        let lists = self.resource_lists(view, access, true).await;
        let prefix_of = |t: &str| t.split('{').next().unwrap_or(t).to_string();
        let found = lists
            .iter()
            .find(|(_, (r, _))| r.iter().any(|x| x.uri == uri))
            .or_else(|| lists.iter().find(|(_, (_, t))| t.iter().any(|x| uri.starts_with(&prefix_of(&x.uri_template)))))
            .map(|(s, _)| *s);
        let visible = Self::visible(view, access);
        let only = match visible[..] {
            [s] if access.holds_server(&s.name, Role::View) => Some(s),
            _ => None,
        };
        found.or(only).ok_or_else(|| McpError::resource_not_found(format!("no server of project `{}` serves `{uri}`", self.project), None))
    }
}
