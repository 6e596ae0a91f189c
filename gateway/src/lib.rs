//! The gateway: what users and MCP clients talk to. Today: the authenticated, RBAC-checked,
//! read-only REST API and health endpoints. MCP endpoints, audit, metrics and the webhook route
//! arrive with issue 4.

pub mod api;
pub mod auth;
pub mod error;
pub mod health;
pub mod metrics;
pub mod webhook;

use std::sync::Arc;

use axum::Router;

pub use auth::Authenticator;
pub use error::ApiError;

/// Shared state of every route.
pub struct AppState {
    pub store: reconciler::Store,
    pub auth: Authenticator,
    /// Pokes the reconciler running in this process (the webhook route).
    pub poke: Option<reconciler::controller::Handle>,
    /// Shared secret of the git webhook; the route is off without it.
    pub webhook_secret: Option<String>,
    pub metrics: metrics::Metrics,
}

impl AppState {
    pub fn new(store: reconciler::Store) -> Arc<Self> {
        Self::with_reconciler(store, None, None)
    }

    pub fn with_reconciler(store: reconciler::Store, poke: Option<reconciler::controller::Handle>, webhook_secret: Option<String>) -> Arc<Self> {
        Arc::new(Self { auth: Authenticator::new(store.clone()), store, poke, webhook_secret, metrics: metrics::Metrics::default() })
    }
}

/// Every route of the gateway.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(health::router())
        .merge(api::router())
        .merge(webhook::router())
        .merge(metrics::router())
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// Serve on `listener` until `shutdown` resolves.
///
/// # Errors
/// When the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
