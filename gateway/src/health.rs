//! `/healthz` (the process is up) and `/readyz` (the store answers).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::AppState;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/healthz", get(live)).route("/readyz", get(ready))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "`ok`", body = String)))]
pub(crate) async fn live() -> &'static str {
    "ok"
}

/// The store answers.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, description = "`ready`", body = String), (status = 503, description = "store unavailable", body = String)))]
pub(crate) async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    match state.store.deploys(1).await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable"),
    }
}
