//! The serving state: one immutable [`Snapshot`] of what is deployed (catalog, tokens by hash
//! with their effective bindings), swapped atomically at each deploy by [`AppState::reload`];
//! and [`follow`], the one loop that keeps it current for `mcpctl serve` (woken in-process by
//! the reconciler) and `mcpctl gateway` (polling the database).
//!
//! # Guarantees
//! Auth, MCP and REST judge a request against one snapshot; none of them reads the resources
//! table per request, and `/metrics` reads no table at all (the deploy status is refreshed by
//! [`follow`]). A reload that fails leaves the previous snapshot in force.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use schema::{DesiredState, Resource};

use crate::auth::TokenIndex;
use crate::catalog::{Catalog, Reach};
use crate::mcp::limits::RateLimiter;
use crate::mcp::{self, McpSettings};
use crate::{audit, metrics, upstream, usage};

/// How long a client may take to send a request's head (request line and headers).
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Audit events older than this are deleted unless `--audit-retention` says otherwise.
pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Optional parts of the gateway.
pub struct Options {
    /// Pokes the reconciler running in this process (the webhook route).
    pub poke: Option<reconciler::controller::Handle>,
    /// Shared secret of the git webhook; the route is off without it.
    pub webhook_secret: Option<String>,
    pub mcp: McpSettings,
    pub reach: Reach,
    /// Bearer token `/metrics` requires; open without it.
    pub metrics_token: Option<String>,
    /// Delete audit events older than this (`None`: keep forever).
    pub audit_retention: Option<Duration>,
    /// See [`REQUEST_HEAD_TIMEOUT`].
    pub request_head_timeout: Duration,
    pub chat: crate::chat::ChatSettings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            poke: None,
            webhook_secret: None,
            mcp: McpSettings::default(),
            reach: Reach::default(),
            metrics_token: None,
            audit_retention: Some(DEFAULT_AUDIT_RETENTION),
            request_head_timeout: REQUEST_HEAD_TIMEOUT,
            chat: crate::chat::ChatSettings::default(),
        }
    }
}

/// What is deployed, as every route judges it. Immutable; replaced whole at each deploy.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub catalog: Arc<Catalog>,
    /// Usable tokens by hash.
    pub tokens: TokenIndex,
}

/// The reconcile state shown by `/metrics` and `/api/v1/status`, refreshed by [`follow`].
#[derive(Debug, Clone, Default)]
pub struct DeployStatus {
    /// Revision of the last good deploy.
    pub deployed: Option<String>,
    pub last_attempted: Option<String>,
    pub last_outcome: Option<String>,
    /// Id of the newest deploy row (any outcome).
    pub newest: Option<i64>,
    pub drift: bool,
}

/// Shared state of every route.
pub struct AppState {
    pub store: reconciler::Store,
    pub poke: Option<reconciler::controller::Handle>,
    pub webhook_secret: Option<String>,
    pub metrics: metrics::Metrics,
    pub upstreams: Arc<upstream::Upstreams>,
    pub endpoints: mcp::Endpoints,
    pub auditor: audit::Auditor,
    /// When each token was last used (`gateway::usage`).
    pub usage: Arc<usage::UsageRecorder>,
    pub mcp_settings: McpSettings,
    pub chat: crate::chat::Chat,
    pub(crate) metrics_token: Option<String>,
    pub(crate) request_head_timeout: Duration,
    pub(crate) limiter: RateLimiter,
    reach: Reach,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Bumped after each snapshot swap ([`AppState::reloads`]).
    reloaded: tokio::sync::watch::Sender<u64>,
    status: RwLock<DeployStatus>,
}

impl AppState {
    /// A gateway over `store` with default options (needs a Tokio runtime: it starts the
    /// auditor). Call [`AppState::reload`] to load the deployed state.
    pub fn new(store: reconciler::Store) -> Arc<Self> {
        Self::with_options(store, Options::default())
    }

    pub fn with_options(store: reconciler::Store, o: Options) -> Arc<Self> {
        crate::install_crypto();
        let upstreams = Arc::new(upstream::Upstreams::default());
        tokio::spawn(crate::chat::recover(store.clone(), o.chat.pending_grace));
        let state = Arc::new(Self {
            auditor: audit::Auditor::start(store.clone(), o.audit_retention),
            usage: usage::UsageRecorder::start(store.clone()),
            store,
            poke: o.poke,
            webhook_secret: o.webhook_secret,
            metrics: metrics::Metrics::new(upstreams.clone()),
            upstreams,
            endpoints: mcp::Endpoints::default(),
            limiter: RateLimiter::new(o.mcp.rate_limit, o.mcp.anonymous_rate_limit),
            mcp_settings: o.mcp,
            chat: crate::chat::Chat::new(&o.chat),
            metrics_token: o.metrics_token,
            request_head_timeout: o.request_head_timeout,
            reach: o.reach,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            reloaded: tokio::sync::watch::Sender::new(0),
            status: RwLock::new(DeployStatus::default()),
        });
        tokio::spawn(mcp::forward_changes(state.clone()));
        tokio::spawn(upstream::health::record(Arc::downgrade(&state)));
        state
    }

    /// The snapshot in force. Hold the `Arc` for the whole request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().expect("snapshot lock").clone()
    }

    /// A receiver that sees every snapshot swap (the value counts the swaps since start): for
    /// work that must follow each deploy, such as a standalone gateway's fetch of Secret values,
    /// without polling the snapshot.
    pub fn reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reloaded.subscribe()
    }

    /// The catalog of the snapshot in force.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.snapshot().catalog.clone()
    }

    /// Rate-limit buckets held (one per deployed token that called, plus anonymous ones).
    pub fn limiter_len(&self) -> usize {
        self.limiter.len()
    }

    /// The deploy status last read by [`AppState::reload`] or [`follow`].
    pub fn status(&self) -> DeployStatus {
        self.status.read().expect("status lock").clone()
    }

    /// Read the deploy status (newest deploy, last good one, drift) from the store.
    ///
    /// # Errors
    /// On a store error (the previous status stays).
    pub async fn refresh_status(&self) -> Result<DeployStatus, reconciler::StoreError> {
        let good = self.store.last_good_deploy().await?;
        let last = self.store.deploys(1).await?.into_iter().next();
        let drift = !self.store.drift().await?.is_empty();
        let s = DeployStatus {
            deployed: good.map(|d| d.revision),
            last_attempted: last.as_ref().map(|d| d.revision.clone()),
            last_outcome: last.as_ref().map(|d| d.outcome.clone()),
            newest: last.map(|d| d.id),
            drift,
        };
        *self.status.write().expect("status lock") = s.clone();
        Ok(s)
    }

    /// Build a new snapshot from the store (projects, upstreams, tokens), swap it in, and tell
    /// open sessions their lists may have changed. Call after every deploy.
    ///
    /// # Errors
    /// On a store error (the previous snapshot stays in force).
    pub async fn reload(&self) -> Result<(), reconciler::StoreError> {
        let rows = self.store.resources().await?;
        let state = DesiredState::new(rows.iter().filter_map(|r| Resource::from_body(&r.body).ok()).collect());
        let status = self.refresh_status().await?;
        let (catalog, upstreams) = Catalog::build(state, status.deployed.unwrap_or_default(), &self.reach);
        let tokens = TokenIndex::build(&catalog.state);
        self.upstreams.sync(&upstreams);
        self.endpoints.retain(&catalog.projects);
        let projects: Vec<String> = catalog.projects.keys().cloned().collect();
        self.limiter.retain(|key| tokens.contains(key) || key.starts_with(crate::mcp::limits::ANONYMOUS));
        self.endpoints.forget_owners_except(|subject| tokens.contains(subject));
        let catalog = Arc::new(catalog);
        self.metrics.set_catalog(catalog.clone());
        *self.snapshot.write().expect("snapshot lock") = Arc::new(Snapshot { catalog, tokens });
        self.reloaded.send_modify(|n| *n += 1);
        self.endpoints.notify(&projects, &upstream::Change::Tools(String::new())).await;
        self.endpoints.notify(&projects, &upstream::Change::Prompts(String::new())).await;
        Ok(())
    }

    /// The local runtime's hook: hand stdio processes to the upstream registry.
    pub fn attach(self: &Arc<Self>) -> reconciler::runtime::local::Attach {
        let ups = self.upstreams.clone();
        Arc::new(move |started| ups.attach(started))
    }
}

/// Keep the gateway current, for `serve` and `gateway` alike: every `every`, or at once when
/// `deployed` is notified (the in-process reconciler of `mcpctl serve`), read the deploy status;
/// reload when the newest deploy changed or a notification came; reconnect HTTP upstreams.
/// Runs until the task is dropped.
pub async fn follow(state: Arc<AppState>, deployed: Option<Arc<tokio::sync::Notify>>, every: Duration) {
    let mut seen = state.status().newest;
    loop {
        let notified = match &deployed {
            Some(n) => tokio::select! {
                () = n.notified() => true,
                () = tokio::time::sleep(every) => false,
            },
            None => {
                tokio::time::sleep(every).await;
                false
            }
        };
        match state.refresh_status().await {
            Ok(s) if notified || s.newest != seen => match state.reload().await {
                Ok(()) => seen = s.newest,
                Err(e) => tracing::error!(error = %e, "gateway reload failed; the previous state stays in force"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading the deploy status failed"),
        }
        state.upstreams.reconnect_http().await;
    }
}
