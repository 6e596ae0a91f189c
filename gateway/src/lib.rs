//! The gateway: what users and MCP clients talk to. MCP Streamable HTTP per project
//! (`gateway::mcp`) proxying to upstream servers (`gateway::upstream`), token auth, audit, the
//! read-only REST API and the read-only web UI (`gateway::ui`), chat with agents (`gateway::chat`), the git webhook, health and metrics, all judged against one deployed
//! snapshot (`gateway::state`).

pub mod api;
pub mod audit;
pub mod audit_stream;
pub mod auth;
pub mod catalog;
pub mod chat;
pub mod error;
pub mod gate;
pub mod health;
pub mod identity;
pub mod mcp;
pub mod metrics;
pub mod openapi;
pub mod state;
pub mod surface;
pub mod ui;
pub mod upstream;
pub mod usage;
pub mod webhook;

use std::sync::Arc;

use axum::Router;

pub use catalog::{Catalog, Reach};
pub use error::ApiError;
pub use mcp::McpSettings;
pub use state::{follow, AppState, Options, Snapshot};

/// Make ring the process's TLS crypto provider (reqwest, for HTTPS upstreams, is built without
/// one so that only ring — which kube already uses — is compiled). Idempotent.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Every route of the gateway.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(health::router())
        .merge(chat::router())
        .merge(api::router())
        .merge(audit_stream::router())
        .merge(identity::router())
        .merge(surface::router())
        .merge(webhook::router())
        .merge(metrics::router())
        .merge(mcp::router())
        .merge(openapi::router())
        .merge(ui::router())
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// Serve on `listener` until `shutdown` resolves; audit events queued by then are stored.
///
/// # Guarantees
/// A client must send a request's head within `Options::request_head_timeout` (default
/// [`state::REQUEST_HEAD_TIMEOUT`]) or the connection is closed; bodies of MCP POSTs are bounded
/// by `--body-read-timeout` in the endpoint. Long-lived responses (SSE streams) are not cut.
/// On shutdown, MCP sessions are closed and in-flight requests drained for at most
/// [`SHUTDOWN_DRAIN`]; queued audit events are then stored.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let app = router(state.clone());
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(state.request_head_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let result = loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: wait, then accept again (as axum does).
                Err(e) if is_transient(&e) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => break Err(e),
            },
            () = &mut shutdown => break Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let service =
            TowerToHyperService::new(app.clone().map_request(|req: http::Request<hyper::body::Incoming>| req.map(axum::body::Body::new)));
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    };
    drop(listener);
    // End the MCP sessions (their SSE streams never complete on their own), then let in-flight
    // requests finish, for at most SHUTDOWN_DRAIN.
    state.endpoints.retain(&std::collections::HashMap::new());
    state.auditor.end_streams();
    if tokio::time::timeout(SHUTDOWN_DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {SHUTDOWN_DRAIN:?}; stopping anyway");
    }
    state.auditor.flush().await;
    state.usage.flush().await;
    result
}

/// How long a stopping gateway waits for in-flight requests.
pub const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

fn is_transient(e: &std::io::Error) -> bool {
    !matches!(e.kind(), std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData | std::io::ErrorKind::Unsupported)
}
