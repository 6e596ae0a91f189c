//! The gateway: what users and MCP clients talk to. MCP Streamable HTTP per project
//! (`gateway::mcp`) proxying to upstream servers (`gateway::upstream`), token auth, audit, the
//! read-only REST API, the git webhook, health and metrics.

pub mod api;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod error;
pub mod health;
pub mod mcp;
pub mod metrics;
pub mod openapi;
pub mod upstream;
pub mod webhook;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;

pub use auth::Authenticator;
pub use catalog::{Catalog, Reach};
pub use error::ApiError;
pub use mcp::McpSettings;

use schema::{DesiredState, Resource};

/// Optional parts of the gateway.
#[derive(Default)]
pub struct Options {
    /// Pokes the reconciler running in this process (the webhook route).
    pub poke: Option<reconciler::controller::Handle>,
    /// Shared secret of the git webhook; the route is off without it.
    pub webhook_secret: Option<String>,
    pub mcp: McpSettings,
    pub reach: Reach,
}

/// Shared state of every route.
pub struct AppState {
    pub store: reconciler::Store,
    pub auth: Authenticator,
    pub poke: Option<reconciler::controller::Handle>,
    pub webhook_secret: Option<String>,
    pub metrics: metrics::Metrics,
    pub upstreams: Arc<upstream::Upstreams>,
    pub endpoints: mcp::Endpoints,
    pub auditor: audit::Auditor,
    pub mcp_settings: McpSettings,
    reach: Reach,
    catalog: RwLock<Arc<Catalog>>,
}

impl AppState {
    /// A gateway over `store` with default options (needs a Tokio runtime: it starts the
    /// auditor). Call [`AppState::reload`] to load the deployed state.
    pub fn new(store: reconciler::Store) -> Arc<Self> {
        Self::with_options(store, Options::default())
    }

    pub fn with_options(store: reconciler::Store, o: Options) -> Arc<Self> {
        install_crypto();
        let state = Arc::new(Self {
            auth: Authenticator::new(store.clone()),
            auditor: audit::Auditor::start(store.clone()),
            store,
            poke: o.poke,
            webhook_secret: o.webhook_secret,
            metrics: metrics::Metrics::default(),
            upstreams: Arc::new(upstream::Upstreams::default()),
            endpoints: mcp::Endpoints::default(),
            mcp_settings: o.mcp,
            reach: o.reach,
            catalog: RwLock::new(Arc::new(Catalog::default())),
        });
        tokio::spawn(mcp::forward_changes(state.clone()));
        tokio::spawn(upstream::health::record(Arc::downgrade(&state)));
        state
    }

    /// The deployed state in force.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().expect("catalog lock").clone()
    }

    /// Load the deployed state from the store: projects, upstreams, token cache, and tell open
    /// sessions their lists may have changed. Call after every deploy.
    ///
    /// # Errors
    /// On a store error (the previous state stays in force).
    pub async fn reload(&self) -> Result<(), reconciler::StoreError> {
        let rows = self.store.resources().await?;
        let state = DesiredState::new(rows.iter().filter_map(|r| Resource::from_body(&r.body).ok()).collect());
        let revision = self.store.last_good_deploy().await?.map(|d| d.revision).unwrap_or_default();
        let (catalog, upstreams) = Catalog::build(state, revision, &self.reach);
        self.upstreams.sync(&upstreams);
        self.endpoints.retain(&catalog.projects);
        let projects: Vec<String> = catalog.projects.keys().cloned().collect();
        *self.catalog.write().expect("catalog lock") = Arc::new(catalog);
        self.auth.invalidate();
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

/// Make ring the process's TLS crypto provider (reqwest, for HTTPS upstreams, is built without
/// one so that only ring — which kube already uses — is compiled). Idempotent.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Every route of the gateway.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(health::router())
        .merge(api::router())
        .merge(webhook::router())
        .merge(metrics::router())
        .merge(mcp::router())
        .merge(openapi::router())
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// Keep the gateway current when the reconciler runs in another process (`mcpctl gateway`):
/// reload whenever the newest deploy changes, and reconnect HTTP upstreams, every `every`.
pub async fn follow(state: Arc<AppState>, every: Duration) {
    let mut seen = None;
    loop {
        if let Ok(d) = state.store.deploys(1).await {
            let newest = d.first().map(|d| d.id);
            if newest != seen && state.reload().await.is_ok() {
                seen = newest;
            }
        }
        state.upstreams.reconnect_http().await;
        tokio::time::sleep(every).await;
    }
}

/// Serve on `listener` until `shutdown` resolves; audit events queued by then are stored.
///
/// # Errors
/// When the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let r = axum::serve(listener, router(state.clone())).with_graceful_shutdown(shutdown).await;
    state.auditor.flush().await;
    r
}
