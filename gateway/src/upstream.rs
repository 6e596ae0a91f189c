//! Upstream connections: one persistent MCP client session per server, shared by every
//! downstream client of every project that exposes the server.
//!
//! # Guarantees
//! - **One upstream session per server, ids remapped.** Each downstream request becomes a new
//!   request on the shared session with an id the gateway's client assigns (rmcp's `Peer`), so any
//!   number of concurrent callers are pipelined over one stdio pipe or HTTP session. Progress
//!   tokens are remapped the same way and progress notifications routed back to their caller.
//! - **Never a hung request.** A call ends with the upstream's answer, the server's timeout
//!   (`timeoutSeconds`, default 60 s), the caller's cancellation (forwarded upstream as
//!   `notifications/cancelled`) or the connection closing (crash), whichever comes first.
//! - **Crash → error, then restart.** stdio servers are restarted by the local runtime, which hands
//!   the new process's pipes to [`Upstreams::attach`]; HTTP upstreams reconnect on the next use.
//!
//! # Caveats
//! Requests an upstream sends to its client (sampling, elicitation, roots) and its log messages
//! are routed to the caller of the newest call in flight on that upstream; with several
//! concurrent callers of one server that is a best guess (stdio carries no request association).
//! Legacy HTTP+SSE (2024-11-05) upstreams are not supported: rmcp 3 has no client for it.

// Sampling, logging and roots are deprecated by SEP-2577 but part of the 2025 revisions.
#![allow(deprecated)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use rmcp::model::{
    CancelledNotificationParam, ClientCapabilities, ClientConfig, ClientRequest, ClientResult, CreateMessageRequestParams, CreateMessageResult,
    ElicitRequestParams, ElicitResult, Implementation, ListRootsResult, LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken, Prompt,
    Resource, ResourceTemplate, ResourceUpdatedNotificationParam, ServerRequest, ServerResult, Tool,
};
use rmcp::service::{NotificationContext, Peer, PeerRequestOptions, RequestContext, RoleClient, RoleServer, ServiceError};
use rmcp::{ClientHandler, ErrorData as McpError, ServiceExt};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Default per-call timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a call waits for a server that is starting (or reconnecting) before failing.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

/// How the gateway reaches a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A local process whose pipes the runtime attaches.
    Stdio,
    /// MCP Streamable HTTP at this URL.
    Http(String),
    /// Not reachable from this gateway, with the reason.
    Unavailable(String),
}

/// What changed on an upstream (forwarded to the sessions that can see it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Tools(String),
    Prompts(String),
    Resources(String),
    ResourceUpdated(String, String),
}

#[derive(Clone)]
struct Conn {
    peer: Peer<RoleClient>,
    closed: CancellationToken,
}

#[derive(Default)]
struct Lists {
    tools: Option<Arc<Vec<Tool>>>,
    prompts: Option<Arc<Vec<Prompt>>>,
    resources: Option<Arc<Vec<Resource>>>,
    templates: Option<Arc<Vec<ResourceTemplate>>>,
}

#[derive(Default)]
struct Calls {
    /// Callers with a request in flight, oldest first.
    inflight: Vec<(u64, Peer<RoleServer>)>,
    /// Upstream progress token → the ordered forwarder of that call's progress.
    progress: HashMap<ProgressToken, tokio::sync::mpsc::UnboundedSender<ProgressNotificationParam>>,
    /// Progress that arrived before its call was registered (the upstream may answer with
    /// progress before `send` returns); bounded, oldest dropped.
    early: std::collections::VecDeque<ProgressNotificationParam>,
    /// The caller of the call that finished last (log messages processed after the answer).
    last: Option<Peer<RoleServer>>,
}

/// One server as the gateway sees it.
pub struct Upstream {
    key: String,
    target: RwLock<Target>,
    timeout: RwLock<Duration>,
    conn: watch::Sender<Option<Conn>>,
    connecting: tokio::sync::Mutex<()>,
    last_error: Mutex<Option<String>>,
    lists: Mutex<Lists>,
    calls: Mutex<Calls>,
    next_call: AtomicU64,
    changes: broadcast::Sender<Change>,
}

/// The registry of upstreams, keyed like the local runtime: `name`, or `project/name` for a
/// server defined inside a project.
pub struct Upstreams {
    entries: RwLock<HashMap<String, Arc<Upstream>>>,
    changes: broadcast::Sender<Change>,
}

impl Default for Upstreams {
    fn default() -> Self {
        Self { entries: RwLock::new(HashMap::new()), changes: broadcast::channel(256).0 }
    }
}

/// Health of one upstream, for `/api/v1/status` and metrics.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub server: String,
    pub transport: &'static str,
    pub connected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Upstreams {
    /// Changes of every upstream (list_changed, resource updates).
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    fn entry(&self, key: &str) -> Arc<Upstream> {
        if let Some(u) = self.entries.read().expect("upstreams lock").get(key) {
            return u.clone();
        }
        let mut w = self.entries.write().expect("upstreams lock");
        w.entry(key.to_string())
            .or_insert_with(|| {
                Arc::new(Upstream {
                    key: key.to_string(),
                    target: RwLock::new(Target::Stdio),
                    timeout: RwLock::new(DEFAULT_TIMEOUT),
                    conn: watch::channel(None).0,
                    connecting: tokio::sync::Mutex::new(()),
                    last_error: Mutex::new(None),
                    lists: Mutex::new(Lists::default()),
                    calls: Mutex::new(Calls::default()),
                    next_call: AtomicU64::new(0),
                    changes: self.changes.clone(),
                })
            })
            .clone()
    }

    /// The upstream registered under `key`, if any.
    pub fn get(&self, key: &str) -> Option<Arc<Upstream>> {
        self.entries.read().expect("upstreams lock").get(key).cloned()
    }

    /// Make the registry match the deployed servers: `(key, target, timeout)`. Removed servers are
    /// disconnected; a changed HTTP URL reconnects.
    pub fn sync(&self, wanted: &[(String, Target, Duration)]) {
        let keep: std::collections::HashSet<&str> = wanted.iter().map(|(k, _, _)| k.as_str()).collect();
        let gone: Vec<Arc<Upstream>> = {
            let mut w = self.entries.write().expect("upstreams lock");
            let keys: Vec<String> = w.keys().filter(|k| !keep.contains(k.as_str())).cloned().collect();
            keys.iter().filter_map(|k| w.remove(k)).collect()
        };
        for u in gone {
            u.disconnect();
        }
        for (key, target, timeout) in wanted {
            let u = self.entry(key);
            *u.timeout.write().expect("timeout lock") = *timeout;
            let changed = {
                let mut t = u.target.write().expect("target lock");
                let changed = *t != *target;
                *t = target.clone();
                changed
            };
            if changed && !matches!(target, Target::Stdio) {
                u.disconnect();
            }
        }
    }

    /// Take over the pipes of a freshly started stdio process (the local runtime's hook).
    pub fn attach(self: &Arc<Self>, key: &str, stdin: tokio::process::ChildStdin, stdout: tokio::process::ChildStdout) {
        let up = self.entry(key);
        tokio::spawn(async move {
            let handler = UpstreamClient { up: Arc::downgrade(&up) };
            match handler.serve((stdout, stdin)).await {
                Ok(running) => {
                    info!(server = %up.key, "upstream connected (stdio)");
                    let closed = CancellationToken::new();
                    up.connected(Conn { peer: running.peer().clone(), closed: closed.clone() });
                    let _ = running.waiting().await;
                    closed.cancel();
                    up.lost("the process exited; the runtime restarts it");
                }
                Err(e) => up.lost(&format!("MCP initialize failed: {e}")),
            }
        });
    }

    /// Health of every upstream, sorted by key.
    pub fn health(&self) -> Vec<Health> {
        let mut v: Vec<Health> = self.entries.read().expect("upstreams lock").values().map(|u| u.health()).collect();
        v.sort_by(|a, b| a.server.cmp(&b.server));
        v
    }

    /// Connect every HTTP upstream that is not connected (background health check).
    pub async fn reconnect_http(&self) {
        let all: Vec<Arc<Upstream>> = self.entries.read().expect("upstreams lock").values().cloned().collect();
        for u in all {
            if matches!(u.target(), Target::Http(_)) && u.conn.borrow().is_none() {
                let _ = u.connection().await;
            }
        }
    }
}

/// A call in flight; unregisters itself when dropped.
struct InFlight<'a> {
    up: &'a Upstream,
    id: u64,
    progress: Option<ProgressToken>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut c = self.up.calls.lock().expect("calls lock");
        if let Some(pos) = c.inflight.iter().position(|(i, _)| *i == self.id) {
            let (_, peer) = c.inflight.remove(pos);
            c.last = Some(peer);
        }
        if let Some(p) = &self.progress {
            c.progress.remove(p);
        }
    }
}

impl Upstream {
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether `name` is a tool, prompt or resource URI in the cached lists (no I/O; the gateway's
    /// metric labels use only such names).
    pub fn lists_name(&self, name: &str) -> bool {
        let l = self.lists.lock().expect("lists lock");
        l.tools.as_ref().is_some_and(|v| v.iter().any(|t| t.name == name))
            || l.prompts.as_ref().is_some_and(|v| v.iter().any(|p| p.name == name))
            || l.resources.as_ref().is_some_and(|v| v.iter().any(|r| r.uri == name))
    }

    fn target(&self) -> Target {
        self.target.read().expect("target lock").clone()
    }

    fn health(&self) -> Health {
        let transport = match self.target() {
            Target::Stdio => "stdio",
            Target::Http(_) => "http",
            Target::Unavailable(_) => "unavailable",
        };
        let connected = self.conn.borrow().is_some();
        let error = match self.target() {
            Target::Unavailable(r) => Some(r),
            _ if connected => None,
            _ => self.last_error.lock().expect("error lock").clone(),
        };
        Health { server: self.key.clone(), transport, connected, error }
    }

    fn connected(&self, conn: Conn) {
        *self.last_error.lock().expect("error lock") = None;
        *self.lists.lock().expect("lists lock") = Lists::default();
        self.conn.send_replace(Some(conn));
        let _ = self.changes.send(Change::Tools(self.key.clone()));
    }

    fn lost(&self, why: &str) {
        warn!(server = %self.key, reason = why, "upstream disconnected");
        *self.last_error.lock().expect("error lock") = Some(why.to_string());
        self.conn.send_replace(None);
    }

    fn disconnect(&self) {
        if let Some(c) = self.conn.send_replace(None) {
            c.closed.cancel();
        }
    }

    /// The live connection: waits for a starting stdio server, connects an HTTP one.
    async fn connection(self: &Arc<Self>) -> Result<Conn, String> {
        if let Some(c) = self.conn.borrow().clone() {
            return Ok(c);
        }
        match self.target() {
            Target::Unavailable(reason) => Err(reason),
            Target::Stdio => {
                let mut rx = self.conn.subscribe();
                let waited = tokio::time::timeout(CONNECT_WAIT, rx.wait_for(Option::is_some)).await;
                match waited {
                    Ok(Ok(c)) => Ok(c.clone().expect("checked")),
                    _ => Err(self.last_error.lock().expect("error lock").clone().unwrap_or_else(|| "not running (yet)".to_string())),
                }
            }
            Target::Http(url) => {
                let _guard = self.connecting.lock().await;
                if let Some(c) = self.conn.borrow().clone() {
                    return Ok(c);
                }
                let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(url.clone());
                let handler = UpstreamClient { up: Arc::downgrade(self) };
                match tokio::time::timeout(CONNECT_WAIT, handler.serve(transport)).await {
                    Ok(Ok(running)) => {
                        info!(server = %self.key, %url, "upstream connected (http)");
                        let closed = CancellationToken::new();
                        let conn = Conn { peer: running.peer().clone(), closed: closed.clone() };
                        self.connected(conn.clone());
                        let me = self.clone();
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = running.waiting() => me.lost("the HTTP session ended"),
                                _ = closed.cancelled() => {}
                            }
                        });
                        Ok(conn)
                    }
                    Ok(Err(e)) => {
                        let why = format!("cannot connect to {url}: {e}");
                        self.lost(&why);
                        Err(why)
                    }
                    Err(_) => {
                        let why = format!("cannot connect to {url}: timed out");
                        self.lost(&why);
                        Err(why)
                    }
                }
            }
        }
    }

    /// Send one request upstream on behalf of a downstream caller, with the guarantees above.
    ///
    /// # Errors
    /// The upstream's own JSON-RPC error, or an internal error naming the server and the reason.
    pub async fn request(self: &Arc<Self>, request: ClientRequest, ctx: &RequestContext<RoleServer>) -> Result<ServerResult, McpError> {
        let unavailable = |why: String| McpError::internal_error(format!("server `{}` is unavailable: {why}", self.key), None);
        let conn = self.connection().await.map_err(unavailable)?;
        let timeout = *self.timeout.read().expect("timeout lock");
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        self.calls.lock().expect("calls lock").inflight.push((id, ctx.peer.clone()));
        let mut guard = InFlight { up: self, id, progress: None };
        let options = PeerRequestOptions::with_timeout(timeout);
        let handle = conn.peer.send_request_with_option(request, options).await.map_err(|e| unavailable(e.to_string()))?;
        // Progress is forwarded in order by one task per call, which is drained before the
        // result is returned (so a caller sees every progress before the answer).
        let mut forwarder = None;
        if let Some(token) = ctx.meta.get_progress_token() {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ProgressNotificationParam>();
            {
                let mut calls = self.calls.lock().expect("calls lock");
                let early: Vec<_> = calls.early.iter().filter(|p| p.progress_token == handle.progress_token).cloned().collect();
                calls.early.retain(|p| p.progress_token != handle.progress_token);
                for p in early {
                    let _ = tx.send(p);
                }
                calls.progress.insert(handle.progress_token.clone(), tx);
            }
            guard.progress = Some(handle.progress_token.clone());
            let downstream = ctx.peer.clone();
            forwarder = Some(tokio::spawn(async move {
                while let Some(mut p) = rx.recv().await {
                    p.progress_token = token.clone();
                    let _ = downstream.notify_progress(p).await;
                }
            }));
        }
        let (req_id, peer) = (handle.id.clone(), handle.peer.clone());
        let result = tokio::select! {
            r = handle.await_response() => r,
            _ = ctx.ct.cancelled() => {
                let _ = peer.notify_cancelled(CancelledNotificationParam::new(Some(req_id), Some("cancelled by the client".into()))).await;
                return Err(McpError::internal_error("cancelled", None));
            }
            _ = conn.closed.cancelled() => Err(ServiceError::TransportClosed),
        };
        if forwarder.is_some() {
            // The client hands notifications to their handlers concurrently with the answer:
            // give progress the upstream sent before answering a moment to land.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(guard);
        if let Some(f) = forwarder {
            let _ = tokio::time::timeout(Duration::from_secs(5), f).await;
        }
        result.map_err(|e| match e {
            ServiceError::McpError(e) => e,
            ServiceError::Timeout { timeout } => McpError::internal_error(format!("server `{}` did not answer within {timeout:?}", self.key), None),
            ServiceError::TransportClosed => unavailable("the connection closed mid-call (the server exited?); it is being restarted".into()),
            other => unavailable(other.to_string()),
        })
    }

    /// The caller of the newest call in flight.
    fn current_caller(&self) -> Option<Peer<RoleServer>> {
        let c = self.calls.lock().expect("calls lock");
        c.inflight.last().map(|(_, p)| p.clone()).or_else(|| c.last.clone())
    }

    /// Tools, cached until the upstream says they changed.
    ///
    /// # Errors
    /// When the upstream is unavailable or fails.
    pub async fn tools(self: &Arc<Self>) -> Result<Arc<Vec<Tool>>, String> {
        if let Some(t) = self.lists.lock().expect("lists lock").tools.clone() {
            return Ok(t);
        }
        let conn = self.connection().await?;
        let tools = Arc::new(conn.peer.list_all_tools().await.map_err(|e| e.to_string())?);
        self.lists.lock().expect("lists lock").tools = Some(tools.clone());
        Ok(tools)
    }

    /// Prompts (empty when the server has none).
    ///
    /// # Errors
    /// When the upstream is unavailable.
    pub async fn prompts(self: &Arc<Self>) -> Result<Arc<Vec<Prompt>>, String> {
        if let Some(t) = self.lists.lock().expect("lists lock").prompts.clone() {
            return Ok(t);
        }
        let conn = self.connection().await?;
        let has = conn.peer.peer_info().is_some_and(|i| i.capabilities.prompts.is_some());
        let v = Arc::new(if has { conn.peer.list_all_prompts().await.map_err(|e| e.to_string())? } else { Vec::new() });
        self.lists.lock().expect("lists lock").prompts = Some(v.clone());
        Ok(v)
    }

    /// Resources and resource templates (empty when the server has none).
    ///
    /// # Errors
    /// When the upstream is unavailable.
    pub async fn resources(self: &Arc<Self>) -> Result<(Arc<Vec<Resource>>, Arc<Vec<ResourceTemplate>>), String> {
        {
            let l = self.lists.lock().expect("lists lock");
            if let (Some(r), Some(t)) = (l.resources.clone(), l.templates.clone()) {
                return Ok((r, t));
            }
        }
        let conn = self.connection().await?;
        let has = conn.peer.peer_info().is_some_and(|i| i.capabilities.resources.is_some());
        let (r, t) = if has {
            let r = conn.peer.list_all_resources().await.map_err(|e| e.to_string())?;
            let t = conn.peer.list_all_resource_templates().await.unwrap_or_default();
            (r, t)
        } else {
            (Vec::new(), Vec::new())
        };
        let (r, t) = (Arc::new(r), Arc::new(t));
        let mut l = self.lists.lock().expect("lists lock");
        l.resources = Some(r.clone());
        l.templates = Some(t.clone());
        Ok((r, t))
    }
}

/// The gateway's MCP client towards one upstream.
struct UpstreamClient {
    up: Weak<Upstream>,
}

impl UpstreamClient {
    fn up(&self) -> Option<Arc<Upstream>> {
        self.up.upgrade()
    }

    fn invalidate(&self, change: impl FnOnce(String) -> Change, clear: impl FnOnce(&mut Lists)) {
        if let Some(up) = self.up() {
            clear(&mut up.lists.lock().expect("lists lock"));
            let _ = up.changes.send(change(up.key.clone()));
        }
    }

    /// Forward a server→client request to the caller it most likely belongs to.
    async fn forward(&self, request: ServerRequest) -> Result<ClientResult, McpError> {
        let caller = self.up().and_then(|u| u.current_caller()).ok_or_else(|| McpError::internal_error("no client call in flight to forward this request to", None))?;
        caller.send_request(request).await.map_err(|e| match e {
            ServiceError::McpError(e) => e,
            other => McpError::internal_error(other.to_string(), None),
        })
    }
}

impl ClientHandler for UpstreamClient {
    fn get_info(&self) -> ClientConfig {
        let mut caps = ClientCapabilities::default();
        caps.sampling = Some(Default::default());
        caps.elicitation = Some(Default::default());
        caps.roots = Some(Default::default());
        ClientConfig::new(caps, Implementation::new("mcpctl-gateway", env!("CARGO_PKG_VERSION")))
    }

    async fn create_message(&self, params: CreateMessageRequestParams, _ctx: RequestContext<RoleClient>) -> Result<CreateMessageResult, McpError> {
        match self.forward(ServerRequest::CreateMessageRequest(rmcp::model::CreateMessageRequest::new(params))).await? {
            ClientResult::CreateMessageResult(r) => Ok(*r),
            _ => Err(McpError::internal_error("unexpected answer to sampling/createMessage", None)),
        }
    }

    async fn create_elicitation(&self, params: ElicitRequestParams, _ctx: RequestContext<RoleClient>) -> Result<ElicitResult, McpError> {
        match self.forward(ServerRequest::ElicitRequest(rmcp::model::ElicitRequest::new(params))).await? {
            ClientResult::ElicitResult(r) => Ok(r),
            _ => Err(McpError::internal_error("unexpected answer to elicitation/create", None)),
        }
    }

    async fn list_roots(&self, _ctx: RequestContext<RoleClient>) -> Result<ListRootsResult, McpError> {
        match self.forward(ServerRequest::ListRootsRequest(Default::default())).await {
            Ok(ClientResult::ListRootsResult(r)) => Ok(r),
            _ => Ok(ListRootsResult::default()),
        }
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _ctx: NotificationContext<RoleClient>) {
        let Some(up) = self.up() else { return };
        let mut calls = up.calls.lock().expect("calls lock");
        match calls.progress.get(&params.progress_token) {
            Some(tx) => {
                let _ = tx.send(params);
            }
            None => {
                if calls.early.len() >= 256 {
                    calls.early.pop_front();
                }
                calls.early.push_back(params);
            }
        }
    }

    async fn on_logging_message(&self, params: LoggingMessageNotificationParam, _ctx: NotificationContext<RoleClient>) {
        if let Some(caller) = self.up().and_then(|u| u.current_caller()) {
            let _ = caller.notify_logging_message(params).await;
        }
    }

    async fn on_tool_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.invalidate(Change::Tools, |l| l.tools = None);
    }

    async fn on_prompt_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.invalidate(Change::Prompts, |l| l.prompts = None);
    }

    async fn on_resource_list_changed(&self, _ctx: NotificationContext<RoleClient>) {
        self.invalidate(Change::Resources, |l| {
            l.resources = None;
            l.templates = None;
        });
    }

    async fn on_resource_updated(&self, params: ResourceUpdatedNotificationParam, _ctx: NotificationContext<RoleClient>) {
        if let Some(up) = self.up() {
            let _ = up.changes.send(Change::ResourceUpdated(up.key.clone(), params.uri));
        }
    }
}
