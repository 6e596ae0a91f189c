//! Upstream connections: one persistent MCP client session per server, shared by every
//! downstream client of every project that exposes the server.
//!
//! | file | job |
//! |---|---|
//! | `mod` | the registry of upstreams, their connections, requests on behalf of callers |
//! | `routing` | which caller a message the upstream sends on its own belongs to |
//! | `attach` | stdio servers in images: their pod's stdin/stdout through the attach API |
//! | `readiness` | lists that answer at once, naming the servers still starting |
//! | `sse` | the legacy HTTP+SSE (2024-11-05) client transport |
//! | `health` | MCP-level health checks per `spec.health`, restarts, transitions |
//! | `pool` | which replica (local process) of a server takes a call |
//! | `relay` | a local process's pipes: rmcp's session, and a raw lane for `tools/call` answers |
//!
//! # Guarantees
//! - **One upstream session per server, ids remapped.** Each downstream request becomes a new
//!   request on the shared session with an id the gateway's client assigns (rmcp's `Peer`), so any
//!   number of concurrent callers are pipelined over one stdio pipe or HTTP session. Progress
//!   tokens are remapped the same way and progress notifications routed back to their caller.
//! - **Nothing crosses between callers.** Requests an upstream sends to its client (sampling,
//!   elicitation, roots) and its log messages reach only the caller they belong to, or nobody
//!   (refused to the upstream and counted): see [`routing`]. `logging/setLevel` never changes the
//!   shared upstream; each session's level filters what is forwarded to it.
//! - **Never a hung request.** A call ends with the upstream's answer, the server's timeout
//!   (`timeoutSeconds`, default 60 s), the caller's cancellation (forwarded upstream as
//!   `notifications/cancelled`) or the connection closing (crash), whichever comes first.
//! - **Crash → error, then restart.** stdio servers are restarted by the local runtime, which hands
//!   the new process's pipes to [`Upstreams::attach`]; HTTP, SSE and pod-attach upstreams
//!   reconnect on the next use (and in the background). A process that is alive but stops
//!   answering is found by [`health`] and restarted.
//! - **Raw answers from local processes.** A stateless `tools/call` to a local process goes on
//!   its pipe's raw lane ([`relay`], [`Upstream::call_relayed`]): same routing, timeout,
//!   cancellation and crash handling, but the answer's `result` is relayed as the process wrote
//!   it, not decoded into rmcp's types and encoded again.
//! - **Replicas.** A stdio server with `replicas: N` has N processes, each its own session (and its
//!   own routing of server-to-client messages); calls are spread by [`pool`].
//! - **No credentials in messages.** Every error, health and log text produced here has its URLs
//!   redacted ([`reconciler::redact::urls`]: no userinfo, query or fragment).

// Sampling, logging and roots are deprecated by SEP-2577 but part of the 2025 revisions.
#![allow(deprecated)]

pub mod attach;
pub mod health;
pub mod pool;
pub mod readiness;
pub mod relay;
pub mod routing;
pub mod sse;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CancelledNotificationParam, ClientCapabilities, ClientConfig, ClientRequest, ClientResult,
    CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams, ElicitResult, Implementation, ListRootsResult,
    LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken, Prompt, RequestMetaObject, Resource, ResourceTemplate,
    ResourceUpdatedNotificationParam, ServerRequest, ServerResult, Tool,
};
use rmcp::model::{GetExtensions, LoggingLevel};
use rmcp::service::RunningService;
use rmcp::service::{
    InboundStreamOrigin, NotificationContext, OriginatingRequestId, Peer, PeerRequestOptions, RequestContext, RoleClient, RoleServer,
    ServiceError,
};
use rmcp::transport::IntoTransport;
use rmcp::{ClientHandler, ErrorData as McpError, ServiceExt};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use reconciler::redact;
use reconciler::runtime::local::{Attached, Restart};
use routing::{tagged, AtReceipt, Calls, Destination, Levels, Refused};
pub use routing::{CallerKey, Kind, Unroutable};
use schema::spec::HealthCheck;

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
    /// Legacy HTTP+SSE (2024-11-05): the event stream at this URL ([`sse`]).
    Sse(String),
    /// A stdio server in an image on Kubernetes: its pod's stdin/stdout through attach ([`attach`]).
    Attach(reconciler::runtime::kubernetes::Attacher),
    /// Not reachable from this gateway, with the reason.
    Unavailable(String),
}

impl Target {
    /// The transport's name, as `status` and metrics show it.
    pub fn transport(&self) -> &'static str {
        match self {
            Target::Stdio => "stdio",
            Target::Http(_) => "http",
            Target::Sse(_) => "sse",
            Target::Attach(_) => "attach",
            Target::Unavailable(_) => "unavailable",
        }
    }
}

/// What changed on an upstream (forwarded to the sessions that can see it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Tools(String),
    Prompts(String),
    Resources(String),
    /// Not sent any more: a resource update goes straight to the callers subscribed to it
    /// ([`Upstream::subscribed`]), not to every session that sees the server.
    ResourceUpdated(String, String),
}

#[derive(Clone)]
struct Conn {
    peer: Peer<RoleClient>,
    closed: CancellationToken,
    /// The raw lane of a local process's pipes; `None` on other transports.
    relay: Option<Arc<relay::Relay>>,
    /// What rmcp adds to the `_meta` of every request to a server without `initialize`
    /// (2026-07-28): the lane's requests carry it too.
    meta: Option<Arc<RequestMetaObject>>,
}

impl Conn {
    fn new(peer: Peer<RoleClient>, closed: CancellationToken, relay: Option<Arc<relay::Relay>>) -> Self {
        let meta = peer.peer_info().filter(|i| !i.protocol_version.has_initialize()).map(|i| {
            let config = client_config();
            let mut meta = RequestMetaObject::default();
            meta.set_protocol_version(i.protocol_version.clone());
            meta.set_client_info(config.client_info);
            meta.set_client_capabilities(config.capabilities);
            Arc::new(meta)
        });
        Self { peer, closed, relay, meta }
    }
}

/// The answer of [`Upstream::call_relayed`].
pub enum Relayed {
    /// A local process's `result`, as it wrote it.
    Raw(relay::Answer),
    /// rmcp's decoded result (other transports, or a call with a progress token).
    Typed(Box<ServerResult>),
}

#[derive(Default)]
struct Lists {
    tools: Option<Arc<Vec<Tool>>>,
    prompts: Option<Arc<Vec<Prompt>>>,
    resources: Option<Arc<Vec<Resource>>>,
    templates: Option<Arc<Vec<ResourceTemplate>>>,
}

#[derive(Default)]
struct Progress {
    /// Upstream progress token → the ordered forwarder of that call's progress.
    progress: HashMap<ProgressToken, tokio::sync::mpsc::UnboundedSender<ProgressNotificationParam>>,
    /// Progress that arrived before its call was registered (the upstream may answer with
    /// progress before `send` returns); bounded, oldest dropped.
    early: std::collections::VecDeque<ProgressNotificationParam>,
    /// Progress notifications read from the upstream, per upstream token, counted by the
    /// transport ([`routing::Tagged`]) in the upstream's order: a call whose count is 0 when its
    /// answer arrives has no progress still on its way to the forwarder.
    received: HashMap<ProgressToken, u32>,
}

/// Tokens whose progress [`Progress::received`] keeps at most (counts of ended calls are
/// removed with the call; this bounds those of tokens no call is waiting for).
const MAX_PROGRESS_COUNTS: usize = 1024;

impl Upstream {
    /// Count one progress notification of `token` as read from the transport.
    pub(crate) fn progress_received(&self, token: &ProgressToken) {
        let mut p = self.progress.lock().expect("progress lock");
        if p.received.len() >= MAX_PROGRESS_COUNTS && !p.received.contains_key(token) {
            p.received.clear();
        }
        *p.received.entry(token.clone()).or_default() += 1;
    }
}

/// Resource URI → the callers subscribed to it, with their peers.
type Subscribers = HashMap<String, Vec<(CallerKey, Peer<RoleServer>)>>;

/// One server as the gateway sees it; with `replicas: N` also each further process of it
/// (a *member*, sharing the key, with a session of its own).
pub struct Upstream {
    key: String,
    /// Which process of the server this is (0 for the server's own entry).
    replica: u32,
    /// The server's own entry, for a further replica.
    parent: Option<Weak<Upstream>>,
    /// Replicas 1.. of the server (on the server's own entry only).
    members: RwLock<Vec<Arc<Upstream>>>,
    /// Calls in flight on this process's session.
    in_flight: AtomicUsize,
    /// Round-robin among equally loaded replicas.
    turn: AtomicUsize,
    checked: Mutex<health::Checked>,
    /// The runtime's restart handle of the process attached now, with its attach generation and
    /// when it attached.
    restart: Mutex<Option<(u64, Restart, std::time::Instant)>>,
    generation: AtomicU64,
    check: RwLock<HealthCheck>,
    events: broadcast::Sender<health::Transition>,
    /// Cancelled when the server is no longer deployed (ends its health checks).
    retired: CancellationToken,
    target: RwLock<Target>,
    timeout: RwLock<Duration>,
    conn: watch::Sender<Option<Conn>>,
    connecting: tokio::sync::Mutex<()>,
    last_error: Mutex<Option<String>>,
    lists: Mutex<Lists>,
    calls: Mutex<Calls<Option<Peer<RoleServer>>>>,
    /// Woken when a call's upstream request id is recorded (a message may arrive on its stream
    /// before `send` returns).
    sent: tokio::sync::Notify,
    progress: Mutex<Progress>,
    next_call: AtomicU64,
    changes: broadcast::Sender<Change>,
    levels: Arc<Levels>,
    refused: Refused,
    /// Resource URI → the callers subscribed to it (the upstream holds one subscription for all).
    subscribers: Mutex<Subscribers>,
}

/// The registry of upstreams, keyed like the local runtime: `name`, or `project/name` for a
/// server defined inside a project.
pub struct Upstreams {
    entries: RwLock<HashMap<String, Arc<Upstream>>>,
    changes: broadcast::Sender<Change>,
    levels: Arc<Levels>,
    events: broadcast::Sender<health::Transition>,
}

impl Default for Upstreams {
    fn default() -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            changes: broadcast::channel(256).0,
            levels: Arc::default(),
            events: broadcast::channel(256).0,
        }
    }
}

/// One deployed server as the registry should hold it.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// `name`, or `project/name` for a server defined inside a project.
    pub key: String,
    pub target: Target,
    pub timeout: Duration,
    /// `spec.health`, defaults filled in.
    pub health: HealthCheck,
    /// Processes of a stdio server (`spec.replicas`, at least 1).
    pub replicas: u32,
}

/// The defaults of `spec.health` (interval 30 s, timeout 5 s, 3 failures).
pub fn default_health() -> HealthCheck {
    serde_json::from_value(serde_json::json!({})).expect("HealthCheck has defaults for every field")
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
    /// Messages the server sent on its own that could not be associated with one caller and
    /// were refused, by kind (`sampling`, `elicitation`, `roots`, `logging`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unroutable: BTreeMap<String, u64>,
    /// `healthy` when a replica is, else `unhealthy` when one is, else `starting`.
    pub health: health::State,
    /// The checks of the first replica (the only one unless `replicas` > 1).
    pub check: health::Checked,
    /// Each replica, when there is more than one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaHealth>,
}

/// Health of one process of a server with `replicas` > 1.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaHealth {
    pub replica: u32,
    pub connected: bool,
    pub in_flight: usize,
    pub check: health::Checked,
}

impl Upstreams {
    /// Changes of every upstream (`list_changed`).
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Transitions of any upstream's health ([`health::record`] audits and stores them).
    pub fn transitions(&self) -> broadcast::Receiver<health::Transition> {
        self.events.subscribe()
    }

    fn entry(&self, key: &str) -> Arc<Upstream> {
        if let Some(u) = self.entries.read().expect("upstreams lock").get(key) {
            return u.clone();
        }
        let mut w = self.entries.write().expect("upstreams lock");
        w.entry(key.to_string())
            .or_insert_with(|| {
                let up = Arc::new(Upstream::new(key, 0, None, self.changes.clone(), self.levels.clone(), self.events.clone()));
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(health::watch(Arc::downgrade(&up), up.retired.clone()));
                }
                up
            })
            .clone()
    }

    /// The upstream registered under `key`, if any.
    pub fn get(&self, key: &str) -> Option<Arc<Upstream>> {
        self.entries.read().expect("upstreams lock").get(key).cloned()
    }

    /// Make the registry match the deployed servers. Removed servers are disconnected and their
    /// checks end; a changed HTTP URL reconnects; a stdio server gets one member per replica.
    pub fn sync(&self, wanted: &[Wanted]) {
        let keep: std::collections::HashSet<&str> = wanted.iter().map(|w| w.key.as_str()).collect();
        let gone: Vec<Arc<Upstream>> = {
            let mut w = self.entries.write().expect("upstreams lock");
            let keys: Vec<String> = w.keys().filter(|k| !keep.contains(k.as_str())).cloned().collect();
            keys.iter().filter_map(|k| w.remove(k)).collect()
        };
        for u in gone {
            u.retired.cancel();
            for m in u.members() {
                m.disconnect();
            }
        }
        for want in wanted {
            let u = self.entry(&want.key);
            *u.timeout.write().expect("timeout lock") = want.timeout;
            *u.check.write().expect("check lock") = want.health.clone();
            let changed = {
                let mut t = u.target.write().expect("target lock");
                let changed = *t != want.target;
                *t = want.target.clone();
                changed
            };
            if changed && !matches!(want.target, Target::Stdio) {
                u.disconnect();
            }
            let replicas = if matches!(want.target, Target::Stdio) { want.replicas.max(1) } else { 1 };
            let extra: Vec<Arc<Upstream>> = {
                let mut m = u.members.write().expect("members lock");
                let keep = (replicas - 1) as usize;
                if m.len() > keep {
                    m.split_off(keep)
                } else {
                    Vec::new()
                }
            };
            for m in extra {
                m.disconnect();
            }
        }
    }

    /// Take over the pipes of a freshly started stdio process (the local runtime's hook).
    pub fn attach(self: &Arc<Self>, started: Attached) {
        let Attached { key, replica, pid, stdin, stdout, restart } = started;
        let up = self.entry(&key).member(replica);
        let generation = up.generation.fetch_add(1, Ordering::SeqCst) + 1;
        *up.restart.lock().expect("restart lock") = Some((generation, restart, std::time::Instant::now()));
        up.checked.lock().expect("health lock").restarted();
        tokio::spawn(async move {
            let handler = UpstreamClient { up: Arc::downgrade(&up) };
            let (pipes, relay) = relay::pipes(stdout, stdin);
            match handler.serve(tagged(pipes, Arc::downgrade(&up))).await {
                Ok(running) => {
                    info!(server = %up.key, replica, pid, "upstream connected (stdio)");
                    let closed = CancellationToken::new();
                    up.connected(Conn::new(running.peer().clone(), closed.clone(), Some(relay)));
                    let _ = running.waiting().await;
                    closed.cancel();
                    up.gone(generation, "the process exited; the runtime restarts it");
                }
                Err(e) => up.gone(generation, &format!("MCP initialize failed: {e}")),
            }
        });
    }

    /// Health of every upstream, sorted by key.
    pub fn health(&self) -> Vec<Health> {
        let mut v: Vec<Health> = self.entries.read().expect("upstreams lock").values().map(|u| u.health()).collect();
        v.sort_by(|a, b| a.server.cmp(&b.server));
        v
    }

    /// The health of the upstreams of `keys` that exist, sorted by key (without visiting the
    /// others: the web UI asks for a project's few among many).
    pub fn health_of<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> Vec<Health> {
        let entries = self.entries.read().expect("upstreams lock");
        let mut v: Vec<Health> = keys.into_iter().filter_map(|k| entries.get(k)).map(|u| u.health()).collect();
        drop(entries);
        v.sort_by(|a, b| a.server.cmp(&b.server));
        v.dedup_by(|a, b| a.server == b.server);
        v
    }

    /// Keep `level` as the log level of the session `caller`: log messages of any server below it
    /// are no longer forwarded to that session. The upstreams' own levels are not changed (they
    /// are shared by every caller).
    pub fn set_level(&self, caller: CallerKey, level: LoggingLevel, peer: Peer<RoleServer>) {
        self.levels.set(caller, level, peer);
    }

    /// Connect every HTTP, SSE and pod-attach upstream that is not connected (background health
    /// check; the name is kept for its callers).
    pub async fn reconnect_http(&self) {
        let all: Vec<Arc<Upstream>> = self.entries.read().expect("upstreams lock").values().cloned().collect();
        for u in all {
            if matches!(u.target(), Target::Http(_) | Target::Sse(_) | Target::Attach(_)) && u.conn.borrow().is_none() {
                let _ = u.connection().await;
            }
        }
    }
}

/// A call in flight; unregisters itself when dropped.
/// The downstream side of a request forwarded upstream: where the upstream's own messages about
/// it go, and what ends it.
pub struct Downstream {
    /// The caller's peer; `None` for a stateless request answered directly
    /// (`mcp::stateless`), which has no stream: requests the upstream sends during it are refused
    /// and counted, its log messages dropped, as for any message that belongs to no caller.
    pub peer: Option<Peer<RoleServer>>,
    /// The caller's request id (server-to-client requests name it as their origin).
    pub request: rmcp::model::RequestId,
    /// The caller's progress token (progress is forwarded only with a peer).
    pub progress: Option<ProgressToken>,
    /// Cancelled when the caller cancels (then `notifications/cancelled` goes upstream).
    pub cancelled: CancellationToken,
}

impl Downstream {
    /// The caller of a request served by rmcp (a session, or a stateless request through rmcp).
    pub fn of(ctx: &RequestContext<RoleServer>) -> Self {
        Self { peer: Some(ctx.peer.clone()), request: ctx.id.clone(), progress: ctx.meta.get_progress_token(), cancelled: ctx.ct.clone() }
    }
}

struct InFlight<'a> {
    up: &'a Upstream,
    id: u64,
    progress: Option<ProgressToken>,
}

/// Counts a call on one replica while it lives.
struct Busy<'a>(&'a AtomicUsize);

impl<'a> Busy<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(n)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.up.calls.lock().expect("calls lock").end(self.id);
        if let Some(p) = &self.progress {
            let mut progress = self.up.progress.lock().expect("progress lock");
            progress.progress.remove(p);
            progress.received.remove(p);
        }
    }
}

impl Upstream {
    fn new(
        key: &str,
        replica: u32,
        parent: Option<Weak<Upstream>>,
        changes: broadcast::Sender<Change>,
        levels: Arc<Levels>,
        events: broadcast::Sender<health::Transition>,
    ) -> Self {
        Upstream {
            key: key.to_string(),
            replica,
            parent,
            members: RwLock::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            turn: AtomicUsize::new(0),
            checked: Mutex::new(health::Checked::default()),
            restart: Mutex::new(None),
            generation: AtomicU64::new(0),
            check: RwLock::new(default_health()),
            events,
            retired: CancellationToken::new(),
            target: RwLock::new(Target::Stdio),
            timeout: RwLock::new(DEFAULT_TIMEOUT),
            conn: watch::channel(None).0,
            connecting: tokio::sync::Mutex::new(()),
            last_error: Mutex::new(None),
            lists: Mutex::new(Lists::default()),
            calls: Mutex::new(Calls::default()),
            sent: tokio::sync::Notify::new(),
            progress: Mutex::new(Progress::default()),
            next_call: AtomicU64::new(0),
            changes,
            levels,
            refused: Refused::default(),
            subscribers: Mutex::new(HashMap::new()),
        }
    }

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
        match &self.parent {
            Some(p) => p.upgrade().map_or(Target::Stdio, |p| p.target()),
            None => self.target.read().expect("target lock").clone(),
        }
    }

    fn check(&self) -> HealthCheck {
        self.check.read().expect("check lock").clone()
    }

    /// The server's own entry (itself, unless this is a further replica).
    fn root(self: &Arc<Self>) -> Arc<Upstream> {
        self.parent.as_ref().and_then(Weak::upgrade).unwrap_or_else(|| self.clone())
    }

    /// Every process of the server: this entry, then replicas 1...
    fn members(self: &Arc<Self>) -> Vec<Arc<Upstream>> {
        let mut v = vec![self.clone()];
        v.extend(self.members.read().expect("members lock").iter().cloned());
        v
    }

    /// Replica `replica` of this server (made when its process attaches before a sync).
    fn member(self: &Arc<Self>, replica: u32) -> Arc<Upstream> {
        if replica == 0 {
            return self.clone();
        }
        let mut m = self.members.write().expect("members lock");
        while m.len() < replica as usize {
            let n = m.len() as u32 + 1;
            m.push(Arc::new(Upstream::new(
                &self.key,
                n,
                Some(Arc::downgrade(self)),
                self.changes.clone(),
                self.levels.clone(),
                self.events.clone(),
            )));
        }
        m[replica as usize - 1].clone()
    }

    /// The replica a call of `caller` goes to (see [`pool`]).
    fn pick(self: &Arc<Self>, caller: Option<&CallerKey>) -> Arc<Upstream> {
        if self.members.read().expect("members lock").is_empty() {
            return self.clone();
        }
        pool::pick(&self.members(), caller, &self.turn)
    }

    /// The connection now, without waiting or connecting.
    fn live(&self) -> Option<Conn> {
        self.conn.borrow().clone()
    }

    fn restart_handle(&self) -> Option<Restart> {
        self.restart.lock().expect("restart lock").as_ref().map(|(_, r, _)| r.clone())
    }

    /// How long ago the process attached now attached.
    fn attached_for(&self) -> Option<Duration> {
        self.restart.lock().expect("restart lock").as_ref().map(|(_, _, at)| at.elapsed())
    }

    fn health(self: &Arc<Self>) -> Health {
        let transport = self.target().transport();
        let members = self.members();
        let connected = members.iter().any(|m| m.live().is_some());
        let error = match self.target() {
            Target::Unavailable(r) => Some(redact::urls(&r)),
            _ if connected => None,
            _ => self.last_error.lock().expect("error lock").clone(),
        };
        let checks: Vec<health::Checked> = members.iter().map(|m| m.checked.lock().expect("health lock").clone()).collect();
        let state = if checks.iter().any(|c| c.state == health::State::Healthy) {
            health::State::Healthy
        } else if checks.iter().any(|c| c.state == health::State::Unhealthy) {
            health::State::Unhealthy
        } else {
            health::State::Starting
        };
        let replicas = if members.len() > 1 {
            members
                .iter()
                .zip(&checks)
                .map(|(m, c)| ReplicaHealth {
                    replica: m.replica,
                    connected: m.live().is_some(),
                    in_flight: m.in_flight.load(Ordering::Relaxed),
                    check: c.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut unroutable = BTreeMap::new();
        for m in &members {
            for (k, n) in m.refused.snapshot() {
                *unroutable.entry(k).or_insert(0) += n;
            }
        }
        Health { server: self.key.clone(), transport, connected, error, unroutable, health: state, check: checks[0].clone(), replicas }
    }

    /// The process attached as `generation` is gone; ignored when a newer one attached since.
    fn gone(&self, generation: u64, why: &str) {
        {
            let mut r = self.restart.lock().expect("restart lock");
            if r.as_ref().is_some_and(|(g, _, _)| *g != generation) {
                return;
            }
            *r = None;
        }
        self.lost(why);
    }

    fn connected(&self, conn: Conn) {
        *self.last_error.lock().expect("error lock") = None;
        *self.lists.lock().expect("lists lock") = Lists::default();
        self.conn.send_replace(Some(conn));
        // Lists answered while it was starting left it out (see `readiness`).
        for change in [Change::Tools, Change::Prompts, Change::Resources] {
            let _ = self.changes.send(change(self.key.clone()));
        }
    }

    fn lost(&self, why: &str) {
        let why = redact::urls(why);
        warn!(server = %self.key, reason = %why, "upstream disconnected");
        *self.last_error.lock().expect("error lock") = Some(why);
        self.conn.send_replace(None);
    }

    fn disconnect(&self) {
        if let Some(c) = self.conn.send_replace(None) {
            c.closed.cancel();
        }
    }

    /// [`Upstream::connection`] at once when live. Connecting is boxed: its future (HTTP, SSE and
    /// attach clients) is large, and would otherwise be part of, and moved with, every call's.
    async fn conn(self: &Arc<Self>) -> Result<Conn, String> {
        match self.live() {
            Some(c) => Ok(c),
            None => Box::pin(self.connection()).await,
        }
    }

    /// The live connection: waits for a starting stdio server, connects an HTTP, SSE or
    /// pod-attach one.
    async fn connection(self: &Arc<Self>) -> Result<Conn, String> {
        if let Some(c) = self.conn.borrow().clone() {
            return Ok(c);
        }
        match self.target() {
            Target::Unavailable(reason) => Err(redact::urls(&reason)),
            Target::Stdio => {
                let mut rx = self.conn.subscribe();
                let waited = tokio::time::timeout(CONNECT_WAIT, rx.wait_for(Option::is_some)).await;
                match waited {
                    Ok(Ok(c)) => Ok(c.clone().expect("checked")),
                    _ => Err(self.last_error.lock().expect("error lock").clone().unwrap_or_else(|| "not running (yet)".to_string())),
                }
            }
            target @ (Target::Http(_) | Target::Sse(_) | Target::Attach(_)) => {
                let _guard = self.connecting.lock().await;
                if let Some(c) = self.conn.borrow().clone() {
                    return Ok(c);
                }
                let transport = target.transport();
                let url = match &target {
                    Target::Http(url) | Target::Sse(url) => url.clone(),
                    Target::Attach(a) => format!("pod of `{}` in namespace `{}`", self.key, a.namespace()),
                    _ => String::new(),
                };
                let opened = tokio::time::timeout(CONNECT_WAIT, async {
                    match &target {
                        Target::Sse(url) => self.open(sse::SseTransport::connect(url).await.map_err(|e| e.to_string())?).await,
                        Target::Attach(a) => {
                            let (pod, pipes) = attach::open(a, &self.key).await?;
                            info!(server = %self.key, %pod, "attaching to the pod's stdin/stdout");
                            self.open(pipes).await
                        }
                        _ => self.open(rmcp::transport::StreamableHttpClientTransport::from_uri(url.clone())).await,
                    }
                })
                .await;
                match opened {
                    Ok(Ok(running)) => {
                        info!(server = %self.key, url = %redact::urls(&url), transport, "upstream connected");
                        let closed = CancellationToken::new();
                        let conn = Conn::new(running.peer().clone(), closed.clone(), None);
                        self.connected(conn.clone());
                        let me = self.clone();
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = running.waiting() => me.lost(&format!("the {transport} session ended; reconnecting on next use")),
                                _ = closed.cancelled() => {}
                            }
                        });
                        Ok(conn)
                    }
                    Ok(Err(e)) => {
                        let why = redact::urls(&format!("cannot connect to {url}: {e}"));
                        self.lost(&why);
                        Err(why)
                    }
                    Err(_) => {
                        let why = redact::urls(&format!("cannot connect to {url}: timed out"));
                        self.lost(&why);
                        Err(why)
                    }
                }
            }
        }
    }

    /// Initialize an MCP session over `transport` (messages tagged for routing, see [`routing`]).
    async fn open<E, A: 'static>(
        self: &Arc<Self>,
        transport: impl IntoTransport<RoleClient, E, A>,
    ) -> Result<RunningService<RoleClient, UpstreamClient>, String>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let handler = UpstreamClient { up: Arc::downgrade(self) };
        handler.serve(tagged(transport, Arc::downgrade(self))).await.map_err(|e| e.to_string())
    }

    /// Send one request upstream on behalf of the downstream `caller`, with the guarantees above.
    ///
    /// # Errors
    /// The upstream's own JSON-RPC error, or an internal error naming the server and the reason.
    pub async fn request(
        self: &Arc<Self>,
        request: ClientRequest,
        downstream: Downstream,
        caller: CallerKey,
    ) -> Result<ServerResult, McpError> {
        let replica = self.pick(Some(&caller));
        let _busy = Busy::new(&replica.in_flight);
        replica.request_here(request, downstream, caller).await
    }

    /// [`Upstream::request`] on this very process's session.
    async fn request_here(
        self: &Arc<Self>,
        request: ClientRequest,
        downstream: Downstream,
        caller: CallerKey,
    ) -> Result<ServerResult, McpError> {
        let unavailable = |why: String| self.unavailable(&why);
        let conn = self.conn().await.map_err(unavailable)?;
        let timeout = *self.timeout.read().expect("timeout lock");
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        let Downstream { peer: downstream_peer, request: downstream_id, progress, cancelled } = downstream;
        self.calls.lock().expect("calls lock").begin(id, Destination { caller, peer: downstream_peer.clone(), request: downstream_id });
        let mut guard = InFlight { up: self, id, progress: None };
        let options = PeerRequestOptions::with_timeout(timeout);
        let handle = conn.peer.send_request_with_option(request, options).await.map_err(|e| unavailable(e.to_string()))?;
        self.calls.lock().expect("calls lock").sent(id, handle.id.clone());
        self.sent.notify_waiters();
        // Progress is forwarded in order by one task per call, which is drained before the
        // result is returned (so a caller sees every progress before the answer).
        let mut forwarder = None;
        if let (Some(token), Some(downstream)) = (progress, downstream_peer) {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<ProgressNotificationParam>();
            {
                let mut calls = self.progress.lock().expect("progress lock");
                let early: Vec<_> = calls.early.iter().filter(|p| p.progress_token == handle.progress_token).cloned().collect();
                calls.early.retain(|p| p.progress_token != handle.progress_token);
                for p in early {
                    let _ = tx.send(p);
                }
                calls.progress.insert(handle.progress_token.clone(), tx);
            }
            guard.progress = Some(handle.progress_token.clone());
            forwarder = Some(tokio::spawn(async move {
                while let Some(mut p) = rx.recv().await {
                    p.progress_token = token.clone();
                    let _ = downstream.notify_progress(p).await;
                }
            }));
        }
        let (req_id, peer, upstream_token) = (handle.id.clone(), handle.peer.clone(), handle.progress_token.clone());
        let result = tokio::select! {
            r = handle.await_response() => r,
            _ = cancelled.cancelled() => {
                let _ = peer.notify_cancelled(CancelledNotificationParam::new(Some(req_id), Some("cancelled by the client".into()))).await;
                return Err(McpError::internal_error("cancelled", None));
            }
            _ = conn.closed.cancelled() => Err(ServiceError::TransportClosed),
        };
        // The client hands notifications to their handlers concurrently with the answer: when
        // the upstream sent progress for this call (rmcp clients ask for it on every request),
        // give it a moment to land. Without any, the answer goes at once.
        let sent_progress = self.progress.lock().expect("progress lock").received.remove(&upstream_token).is_some_and(|n| n > 0);
        if forwarder.is_some() && sent_progress {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(guard);
        if let Some(f) = forwarder {
            let _ = tokio::time::timeout(Duration::from_secs(5), f).await;
        }
        result.map_err(|e| self.failed(e))
    }

    fn unavailable(&self, why: &str) -> McpError {
        McpError::internal_error(format!("server `{}` is unavailable: {}", self.key, redact::urls(why)), None)
    }

    /// The caller's error for a request that failed upstream.
    fn failed(&self, e: ServiceError) -> McpError {
        match e {
            ServiceError::McpError(e) => e,
            ServiceError::Timeout { timeout } => {
                McpError::internal_error(format!("server `{}` did not answer within {timeout:?}", self.key), None)
            }
            ServiceError::TransportClosed => self.unavailable("the connection closed mid-call (the server exited?); it is being restarted"),
            other => self.unavailable(&other.to_string()),
        }
    }

    /// A `tools/call` on behalf of `caller`, as [`Upstream::request`] (same replica choice,
    /// routing, timeout, cancellation and crash handling), answered raw by a local process: on its
    /// pipe's lane ([`relay`]) when the call has no progress token; through rmcp otherwise.
    ///
    /// # Errors
    /// As [`Upstream::request`]; an upstream error is decoded into the caller's error.
    pub async fn call_relayed(
        self: &Arc<Self>,
        params: CallToolRequestParams,
        downstream: Downstream,
        caller: CallerKey,
    ) -> Result<Relayed, McpError> {
        let replica = self.pick(Some(&caller));
        let _busy = Busy::new(&replica.in_flight);
        replica.relay_here(params, downstream, caller).await
    }

    async fn relay_here(
        self: &Arc<Self>,
        mut params: CallToolRequestParams,
        downstream: Downstream,
        caller: CallerKey,
    ) -> Result<Relayed, McpError> {
        let conn = self.conn().await.map_err(|why| self.unavailable(&why))?;
        let Some(relay) = conn.relay.clone().filter(|_| downstream.progress.is_none()) else {
            let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
            return self.request_here(request, downstream, caller).await.map(|r| Relayed::Typed(Box::new(r)));
        };
        let timeout = *self.timeout.read().expect("timeout lock");
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        let Downstream { peer, request, cancelled, .. } = downstream;
        self.calls.lock().expect("calls lock").begin(id, Destination { caller, peer, request });
        let _guard = InFlight { up: self, id, progress: None };
        params.meta = conn.meta.as_deref().cloned();
        let pending = relay.send("tools/call", &params).map_err(|e| self.unavailable(&e.to_string()))?;
        // Only stdio has a lane: nothing waits for the id (`associate_by_stream` is for HTTP).
        self.calls.lock().expect("calls lock").sent(id, pending.id());
        let answer = tokio::select! {
            r = pending.answer(timeout, &cancelled) => r,
            _ = conn.closed.cancelled() => Err(relay::RelayError::Closed),
        };
        let answer = answer.map_err(|e| match e {
            relay::RelayError::Cancelled => McpError::internal_error("cancelled", None),
            relay::RelayError::Timeout(timeout) => self.failed(ServiceError::Timeout { timeout }),
            relay::RelayError::Closed => self.failed(ServiceError::TransportClosed),
            other => self.unavailable(&other.to_string()),
        })?;
        if answer.is_error() {
            return Err(serde_json::from_slice(answer.body()).unwrap_or_else(|e| {
                McpError::internal_error(format!("server `{}` answered with an error that is not one: {e}", self.key), None)
            }));
        }
        Ok(Relayed::Raw(answer))
    }

    /// The caller a message the upstream sent on its own belongs to (see [`routing`]); counted
    /// and logged when there is none.
    ///
    /// # Errors
    /// [`Unroutable`] when the message belongs to no caller or cannot be told apart.
    async fn associate(
        &self,
        kind: Kind,
        extensions: &rmcp::model::Extensions,
    ) -> Result<Destination<Option<Peer<RoleServer>>>, Unroutable> {
        let origin = extensions.get::<InboundStreamOrigin>();
        let result = match (origin, extensions.get::<AtReceipt>()) {
            (Some(InboundStreamOrigin::OutboundRequest(_)), _) => self.associate_by_stream(origin).await,
            (_, Some(AtReceipt(at_receipt))) => at_receipt.clone(),
            (_, None) => self.calls.lock().expect("calls lock").associate(None),
        };
        if let Err(why) = &result {
            self.refused.count(kind);
            warn!(server = %self.key, kind = kind.as_str(), reason = %why, "upstream message refused: cannot associate it with one caller");
        }
        result
    }

    /// The call whose upstream request's response stream carried the message; waits (≤ 1 s) for
    /// the id of a call just sent to be recorded.
    async fn associate_by_stream(&self, origin: Option<&InboundStreamOrigin>) -> Result<Destination<Option<Peer<RoleServer>>>, Unroutable> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            // Registered before checking, so an id recorded in between still wakes us.
            let woken = self.sent.notified();
            let decided = {
                let calls = self.calls.lock().expect("calls lock");
                let waiting = match origin {
                    Some(InboundStreamOrigin::OutboundRequest(id)) => !calls.knows(id),
                    _ => false,
                };
                (!waiting || tokio::time::Instant::now() >= deadline).then(|| calls.associate(origin))
            };
            if let Some(result) = decided {
                return result;
            }
            let _ = tokio::time::timeout_at(deadline, woken).await;
        }
    }

    /// Remember that `caller` (at `peer`) subscribed to `uri`.
    pub fn subscribed(&self, uri: &str, caller: CallerKey, peer: Peer<RoleServer>) {
        let mut subs = self.subscribers.lock().expect("subscribers lock");
        let v = subs.entry(uri.to_string()).or_default();
        v.retain(|(k, p)| *k != caller && !p.is_transport_closed());
        v.push((caller, peer));
    }

    /// Forget `caller`'s subscription to `uri`. Returns whether no other caller remains
    /// subscribed — only then may the upstream's (shared) subscription be ended.
    pub fn unsubscribed(&self, uri: &str, caller: &CallerKey) -> bool {
        let mut subs = self.subscribers.lock().expect("subscribers lock");
        let Some(v) = subs.get_mut(uri) else { return true };
        v.retain(|(k, p)| k != caller && !p.is_transport_closed());
        let last = v.is_empty();
        if last {
            subs.remove(uri);
        }
        last
    }

    fn subscribers_of(&self, uri: &str) -> Vec<Peer<RoleServer>> {
        let mut subs = self.subscribers.lock().expect("subscribers lock");
        let Some(v) = subs.get_mut(uri) else { return Vec::new() };
        v.retain(|(_, p)| !p.is_transport_closed());
        v.iter().map(|(_, p)| p.clone()).collect()
    }

    /// Tools, cached until the upstream says they changed.
    ///
    /// # Errors
    /// When the upstream is unavailable or fails.
    pub async fn tools(self: &Arc<Self>) -> Result<Arc<Vec<Tool>>, String> {
        if let Some(t) = self.lists.lock().expect("lists lock").tools.clone() {
            return Ok(t);
        }
        let conn = self.pick(None).connection().await?;
        let tools = Arc::new(conn.peer.list_all_tools().await.map_err(|e| redact::urls(&e.to_string()))?);
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
        let conn = self.pick(None).connection().await?;
        let has = conn.peer.peer_info().is_some_and(|i| i.capabilities.prompts.is_some());
        let v = Arc::new(if has { conn.peer.list_all_prompts().await.map_err(|e| redact::urls(&e.to_string()))? } else { Vec::new() });
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
        let conn = self.pick(None).connection().await?;
        let has = conn.peer.peer_info().is_some_and(|i| i.capabilities.resources.is_some());
        let (r, t) = if has {
            let r = conn.peer.list_all_resources().await.map_err(|e| redact::urls(&e.to_string()))?;
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

    /// The lists are cached on the server's own entry, whichever replica said they changed.
    fn invalidate(&self, change: impl FnOnce(String) -> Change, clear: impl FnOnce(&mut Lists)) {
        if let Some(up) = self.up().map(|u| u.root()) {
            clear(&mut up.lists.lock().expect("lists lock"));
            let _ = up.changes.send(change(up.key.clone()));
        }
    }

    /// Forward a server→client request to the one caller it belongs to, on the stream of that
    /// caller's request; refuse it when there is no such caller.
    async fn forward(&self, kind: Kind, mut request: ServerRequest, ctx: &RequestContext<RoleClient>) -> Result<ClientResult, McpError> {
        let up = self.up().ok_or_else(|| McpError::internal_error("the server is no longer deployed", None))?;
        let to = up.associate(kind, &ctx.extensions).await.map_err(|why| {
            McpError::internal_error(format!("cannot associate this {} request with one caller: {why}", kind.as_str()), None)
        })?;
        let Some(peer) = to.peer else {
            up.refused.count(kind);
            warn!(server = %up.key, kind = kind.as_str(), "upstream request refused: its caller is a stateless request without a stream");
            return Err(McpError::internal_error(
                format!("cannot forward this {} request: its caller is a stateless (2026-07-28) request", kind.as_str()),
                None,
            ));
        };
        request.extensions_mut().insert(OriginatingRequestId(to.request.clone()));
        let timeout = *up.timeout.read().expect("timeout lock");
        // A task of its own: rmcp would otherwise mark the request as originating from the
        // upstream's request id (a task-local), which means nothing on the caller's session.
        let sent = tokio::spawn(async move {
            peer.send_request_with_option(request, PeerRequestOptions::with_timeout(timeout)).await?.await_response().await
        });
        match sent.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(ServiceError::McpError(e))) => Err(e),
            Ok(Err(other)) => Err(McpError::internal_error(redact::urls(&other.to_string()), None)),
            Err(e) => Err(McpError::internal_error(e.to_string(), None)),
        }
    }
}

/// The gateway's client: its identity and capabilities towards every upstream.
fn client_config() -> ClientConfig {
    let mut caps = ClientCapabilities::default();
    caps.sampling = Some(Default::default());
    caps.elicitation = Some(Default::default());
    caps.roots = Some(Default::default());
    ClientConfig::new(caps, Implementation::new("mcpctl-gateway", env!("CARGO_PKG_VERSION")))
}

impl ClientHandler for UpstreamClient {
    fn get_info(&self) -> ClientConfig {
        client_config()
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        ctx: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        match self
            .forward(Kind::Sampling, ServerRequest::CreateMessageRequest(rmcp::model::CreateMessageRequest::new(params)), &ctx)
            .await?
        {
            ClientResult::CreateMessageResult(r) => Ok(*r),
            _ => Err(McpError::internal_error("unexpected answer to sampling/createMessage", None)),
        }
    }

    async fn create_elicitation(&self, params: ElicitRequestParams, ctx: RequestContext<RoleClient>) -> Result<ElicitResult, McpError> {
        match self.forward(Kind::Elicitation, ServerRequest::ElicitRequest(rmcp::model::ElicitRequest::new(params)), &ctx).await? {
            ClientResult::ElicitResult(r) => Ok(r),
            _ => Err(McpError::internal_error("unexpected answer to elicitation/create", None)),
        }
    }

    async fn list_roots(&self, ctx: RequestContext<RoleClient>) -> Result<ListRootsResult, McpError> {
        match self.forward(Kind::Roots, ServerRequest::ListRootsRequest(Default::default()), &ctx).await? {
            ClientResult::ListRootsResult(r) => Ok(r),
            _ => Err(McpError::internal_error("unexpected answer to roots/list", None)),
        }
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _ctx: NotificationContext<RoleClient>) {
        let Some(up) = self.up() else { return };
        let mut calls = up.progress.lock().expect("progress lock");
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

    async fn on_logging_message(&self, params: LoggingMessageNotificationParam, ctx: NotificationContext<RoleClient>) {
        let Some(up) = self.up() else { return };
        if let Ok(Destination { caller, peer: Some(peer), .. }) = up.associate(Kind::Logging, &ctx.extensions).await {
            if up.levels.passes(&caller, params.level) {
                let _ = peer.notify_logging_message(params).await;
            }
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

    /// Only to the callers subscribed to the URI (never to every session that sees the server).
    async fn on_resource_updated(&self, params: ResourceUpdatedNotificationParam, _ctx: NotificationContext<RoleClient>) {
        // Subscriptions are kept on the server's own entry (callers are pinned to a replica).
        let Some(up) = self.up().map(|u| u.root()) else { return };
        for peer in up.subscribers_of(&params.uri) {
            let _ = peer.notify_resource_updated(params.clone()).await;
        }
    }
}
