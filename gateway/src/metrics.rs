//! `/metrics` in the Prometheus text format: HTTP requests and latency per route and status; MCP
//! requests and latency per project, server, tool (or prompt/resource) and outcome; upstream
//! health; dropped audit events; and the reconcile state (deployed revision, last outcome, drift)
//! as last read by the follow loop.
//!
//! # Guarantees
//! - Label values come only from known names: projects and servers of the deployed snapshot,
//!   tools/prompts/resources an upstream has listed, the project's own prompts; anything else is
//!   counted as `(unknown)`. So callers cannot grow the label set.
//! - A scrape runs no SQL.
//! - `/metrics` obeys the `Host` allowlist of the MCP endpoints (`--allowed-host`; 403) and, with
//!   `--metrics-token-file`, requires that bearer token (401).

use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
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

use subtle::ConstantTimeEq;

use crate::catalog::Catalog;
use crate::error::ApiError;
use crate::upstream::Upstreams;
use crate::AppState;

/// The label of a name the gateway does not know.
pub const UNKNOWN: &str = "(unknown)";

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
struct UnroutableLabels {
    server: String,
    kind: String,
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
    upstream_unroutable: Family<UnroutableLabels, Counter>,
    upstream_healthy: Family<ServerLabels, Gauge>,
    audit_dropped: Gauge,
    requests: Family<RouteLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    deployed: Family<RevisionLabels, Gauge>,
    drift: Gauge,
    /// Where label values are checked: the deployed catalog and the upstreams' lists.
    catalog: RwLock<Arc<Catalog>>,
    upstreams: Arc<Upstreams>,
}

impl Metrics {
    /// Metrics whose MCP labels are checked against `upstreams`' lists and the catalog set by
    /// [`Metrics::set_catalog`].
    pub fn new(upstreams: Arc<Upstreams>) -> Self {
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
        let upstream_unroutable = Family::<UnroutableLabels, Counter>::default();
        let upstream_healthy = Family::<ServerLabels, Gauge>::default();
        let audit_dropped = Gauge::default();
        registry.register(
            "mcp_requests",
            "MCP requests by project, server, target (tool, prompt or resource), method and outcome",
            mcp_requests.clone(),
        );
        registry.register(
            "mcp_request_duration_seconds",
            "MCP request latency through the gateway (upstream included)",
            mcp_latency.clone(),
        );
        registry.register("upstream_up", "1 when the gateway holds a live MCP session with the server", upstream_up.clone());
        registry.register("upstream_unroutable", "Messages an upstream sent on its own, refused because they could not be associated with one caller (kind: sampling, elicitation, roots, log)", upstream_unroutable.clone());
        registry.register("audit_dropped", "Audit events dropped because the queue was full", audit_dropped.clone());
        registry.register(
            "upstream_healthy",
            "1 when the server's last health check (ping, then tools/list) passed on one of its replicas",
            upstream_healthy.clone(),
        );
        let catalog = RwLock::new(Arc::new(Catalog::default()));
        Self {
            registry,
            requests,
            latency,
            deployed,
            drift,
            mcp_requests,
            mcp_latency,
            upstream_up,
            upstream_unroutable,
            upstream_healthy,
            audit_dropped,
            catalog,
            upstreams,
        }
    }

    /// The deployed catalog label values are checked against (set at each reload).
    pub fn set_catalog(&self, catalog: Arc<Catalog>) {
        *self.catalog.write().expect("catalog lock") = catalog;
    }

    /// `(project, server, target)` with every value the gateway does not know replaced by
    /// [`UNKNOWN`]. `server` is `-` when the gateway answered itself, `target` `-` for
    /// `initialize`.
    fn known(&self, project: &str, server: &str, target: &str) -> (String, String, String) {
        let catalog = self.catalog.read().expect("catalog lock").clone();
        let Some(view) = catalog.projects.get(project) else { return (UNKNOWN.into(), UNKNOWN.into(), UNKNOWN.into()) };
        if server == "-" {
            // `begin_session [bm25: a, b]` (a task's prompts, see `gate`) counts as `begin_session`.
            if target.starts_with(crate::mcp::BEGIN_SESSION) {
                return (project.into(), server.into(), crate::mcp::BEGIN_SESSION.into());
            }
            let own = target == "-" || target == crate::mcp::BEGIN_SESSION || view.prompts.iter().any(|(n, _)| n == target);
            return (project.into(), server.into(), if own { target.into() } else { UNKNOWN.into() });
        }
        let Some(s) = view.servers.iter().find(|s| s.name == server) else { return (project.into(), UNKNOWN.into(), UNKNOWN.into()) };
        let listed = self.upstreams.get(&s.key).is_some_and(|u| u.lists_name(target));
        (project.into(), server.into(), if listed { target.into() } else { UNKNOWN.into() })
    }

    /// Count one MCP request (names the gateway does not know are counted as [`UNKNOWN`]).
    pub fn mcp_request(&self, project: &str, server: &str, target: &str, method: &str, outcome: &str, elapsed: std::time::Duration) {
        let (project, server, target) = self.known(project, server, target);
        let labels = McpLabels { project, server, target, method: method.into(), outcome: outcome.into() };
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

/// Whether `host` (a `Host` header value) is in `allowed` (empty: any), with rmcp's rules for
/// the MCP endpoints: case-insensitive, brackets of IPv6 literals ignored, an allowed entry with
/// a port matches that port only.
pub(crate) fn host_allowed(allowed: &[String], host: Option<&str>) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(authority) = host.and_then(|h| h.parse::<http::uri::Authority>().ok()) else { return false };
    let norm = |h: &str| h.trim_matches(['[', ']']).to_ascii_lowercase();
    let (host, port) = (norm(authority.host()), authority.port_u16());
    allowed.iter().any(|a| match a.parse::<http::uri::Authority>() {
        Ok(a) => norm(a.host()) == host && a.port_u16().is_none_or(|p| Some(p) == port),
        Err(_) => norm(a) == host,
    })
}

/// The `Host` allowlist, then the metrics token when one is set.
fn admit(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if !host_allowed(&state.mcp_settings.allowed_hosts, host) {
        let shown: String = host.unwrap_or("").chars().take(100).collect();
        return Err(ApiError::ForbiddenHost(shown));
    }
    if let Some(want) = &state.metrics_token {
        let got = crate::auth::bearer(headers).ok_or(ApiError::NoToken)?;
        if !bool::from(got.as_bytes().ct_eq(want.as_bytes())) {
            return Err(ApiError::BadToken);
        }
    }
    Ok(())
}

/// Prometheus / OpenMetrics text.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "OpenMetrics text", body = String), (status = 401, description = "--metrics-token-file is set and the bearer token is missing or wrong", body = crate::openapi::ErrorBody), (status = 403, description = "`Host` not in --allowed-host", body = crate::openapi::ErrorBody)),
    security((), ("bearer" = [])))]
pub(crate) async fn scrape(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = admit(&state, &headers) {
        return e.into_response();
    }
    let m = &state.metrics;
    let status = state.status();
    m.deployed.clear();
    if let Some(revision) = status.deployed {
        m.deployed.get_or_create(&RevisionLabels { revision, outcome: status.last_outcome.unwrap_or_default() }).set(1);
    }
    m.drift.set(i64::from(status.drift));
    m.upstream_up.clear();
    m.upstream_healthy.clear();
    for h in state.upstreams.health() {
        for (kind, n) in &h.unroutable {
            let c = m.upstream_unroutable.get_or_create(&UnroutableLabels { server: h.server.clone(), kind: kind.clone() });
            c.inc_by(n.saturating_sub(c.get()));
        }
        m.upstream_healthy
            .get_or_create(&ServerLabels { server: h.server.clone() })
            .set(i64::from(h.health == crate::upstream::health::State::Healthy));
        m.upstream_up.get_or_create(&UpstreamLabels { server: h.server, transport: h.transport.to_string() }).set(i64::from(h.connected));
    }
    m.audit_dropped.set(i64::try_from(state.auditor.dropped()).unwrap_or(i64::MAX));
    let mut body = String::new();
    if encode(&mut body, &m.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}
