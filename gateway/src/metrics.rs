//! `/metrics` in the Prometheus text format: HTTP requests and latency per route and status; MCP
//! requests and latency per project, server, tool (or prompt/resource) and outcome; upstream
//! health; dropped audit events; and the reconcile state (deployed revision, last outcome, drift)
//! read from the store at scrape time.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevisionLabels {
    revision: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct McpLabels {
    project: String,
    server: String,
    target: String,
    method: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    server: String,
    transport: String,
}

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    mcp_requests: Family<McpLabels, Counter>,
    mcp_latency: Family<McpLabels, Histogram>,
    upstream_up: Family<UpstreamLabels, Gauge>,
    upstream_healthy: Family<ServerLabels, Gauge>,
    audit_dropped: Gauge,
    requests: Family<RouteLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    deployed: Family<RevisionLabels, Gauge>,
    drift: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mcpctl");
        let requests = Family::<RouteLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.0001, 2.0, 16)));
        let deployed = Family::<RevisionLabels, Gauge>::default();
        let drift = Gauge::default();
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route and status", latency.clone());
        registry.register("deployed_info", "1 for the revision in force (label: last attempt's outcome)", deployed.clone());
        registry.register("drift", "1 when the store has drifted from the deployed commit", drift.clone());
        let mcp_requests = Family::<McpLabels, Counter>::default();
        let mcp_latency = Family::<McpLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.0001, 2.0, 18)));
        let upstream_up = Family::<UpstreamLabels, Gauge>::default();
        let upstream_healthy = Family::<ServerLabels, Gauge>::default();
        let audit_dropped = Gauge::default();
        registry.register("mcp_requests", "MCP requests by project, server, target (tool, prompt or resource), method and outcome", mcp_requests.clone());
        registry.register("mcp_request_duration_seconds", "MCP request latency through the gateway (upstream included)", mcp_latency.clone());
        registry.register("upstream_up", "1 when the gateway holds a live MCP session with the server", upstream_up.clone());
        registry.register("upstream_healthy", "1 when the server's last health check (ping, then tools/list) passed on one of its replicas", upstream_healthy.clone());
        registry.register("audit_dropped", "Audit events dropped because the queue was full", audit_dropped.clone());
        Self { registry, requests, latency, deployed, drift, mcp_requests, mcp_latency, upstream_up, upstream_healthy, audit_dropped }
    }
}

impl Metrics {
    /// Count one MCP request.
    pub fn mcp_request(&self, project: &str, server: &str, target: &str, method: &str, outcome: &str, elapsed: std::time::Duration) {
        let labels = McpLabels { project: project.into(), server: server.into(), target: target.into(), method: method.into(), outcome: outcome.into() };
        self.mcp_requests.get_or_create(&labels).inc();
        self.mcp_latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/metrics", get(scrape))
}

/// Middleware counting every request by matched route and status.
pub async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let start = Instant::now();
    let resp = next.run(req).await;
    let labels = RouteLabels { route, status: resp.status().as_u16() };
    state.metrics.requests.get_or_create(&labels).inc();
    state.metrics.latency.get_or_create(&labels).observe(start.elapsed().as_secs_f64());
    resp
}

/// Prometheus / OpenMetrics text.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "OpenMetrics text", body = String)))]
pub(crate) async fn scrape(State(state): State<Arc<AppState>>) -> Response {
    let m = &state.metrics;
    m.deployed.clear();
    if let (Ok(good), Ok(last)) = (state.store.last_good_deploy().await, state.store.deploys(1).await) {
        if let Some(d) = good {
            let outcome = last.first().map_or_else(String::new, |l| l.outcome.clone());
            m.deployed.get_or_create(&RevisionLabels { revision: d.revision, outcome }).set(1);
        }
    }
    m.drift.set(i64::from(state.store.drift().await.is_ok_and(|d| !d.is_empty())));
    m.upstream_up.clear();
    m.upstream_healthy.clear();
    for h in state.upstreams.health() {
        m.upstream_healthy.get_or_create(&ServerLabels { server: h.server.clone() }).set(i64::from(h.health == crate::upstream::health::State::Healthy));
        m.upstream_up.get_or_create(&UpstreamLabels { server: h.server, transport: h.transport.to_string() }).set(i64::from(h.connected));
    }
    m.audit_dropped.set(i64::try_from(state.auditor.dropped()).unwrap_or(i64::MAX));
    let mut body = String::new();
    if encode(&mut body, &m.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}
