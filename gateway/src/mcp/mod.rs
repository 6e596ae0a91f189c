//! MCP for every project: Streamable HTTP at `/projects/<project>/mcp`, aggregating the tools,
//! prompts and resources of the project's servers.
//!
//! The protocol itself (both generations: the session-based 2025-06-18/2025-11-25 revisions with
//! `initialize`, `Mcp-Session-Id`, SSE and the GET stream; the stateless 2026-07-28 revision with
//! `server/discover` and per-request `_meta`) is rmcp's `StreamableHttpService`; one per project.
//! This module adds what a gateway is for: authentication before the protocol (401 with
//! `WWW-Authenticate` → RFC 9728 metadata, 403 for another project's token), RBAC on every list
//! and call, `<server>__<tool>` namespacing, gated sessions, audit and metrics.
//!
//! | file | job |
//! |---|---|
//! | `endpoint` | the HTTP front door: auth, rate limit, session owners, body checks, RFC 9728 metadata, hand-off to rmcp |
//! | `limits` | name/URI length limits and the per-token rate limiter |
//! | `access` | who is calling one request, and what their bindings let them see |
//! | `handler` | the MCP server of one project: lists, calls, gating, audit |
//! | `sessions` | per-project protocol services, open sessions and their owners, change notifications |
//! | `shape` | a fast, tree-free look at a POST body's JSON-RPC shape and bounded fields |
//! | `stateless` | the direct answer of a canonical stateless `tools/call`, without an rmcp service per request |
//!
//! # Gated projects
//! A session of a gated project sees `begin_session` and the project's own prompts; calling
//! `begin_session` returns the instructions, opens the gate and sends `tools/list_changed`.
//! Stateless (2026-07-28) requests have no session, so there the gate opens per token: the
//! opening is stored in the database (any replica sees it) and lasts until the token changes.
//! Anonymous callers of a public gated project share one gate.

pub(crate) mod access;
pub(crate) mod endpoint;
mod handler;
pub mod limits;
mod sessions;
mod shape;
mod stateless;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{any, get};
use axum::Router;

use crate::AppState;

pub use handler::ProjectHandler;
pub use sessions::{forward_changes, Endpoints};

/// The tool a gated session starts with.
pub const BEGIN_SESSION: &str = "begin_session";

/// Browser origins accepted by default: pages served from this machine.
pub const LOOPBACK_ORIGINS: &[&str] = &["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

/// Settings of the MCP endpoints.
#[derive(Debug, Clone)]
pub struct McpSettings {
    /// `Host` values accepted (DNS-rebinding protection); empty accepts any.
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s accepted (default: loopback pages, any port); any other present
    /// `Origin` gets 403. Requests without `Origin` (non-browser clients) are not affected.
    pub allowed_origins: Vec<String>,
    /// Largest request body (413 above).
    pub max_body_bytes: usize,
    /// Base URL clients use (for RFC 9728 metadata); default `http://<Host>`.
    pub public_url: Option<String>,
    /// Open sessions one token (or a public project's anonymous callers) may hold; creating one
    /// more closes the token's least recently used session.
    pub max_sessions_per_token: usize,
    /// A session with no traffic for this long is closed (rmcp's keep-alive).
    pub session_idle_timeout: Duration,
    /// Time allowed to receive a POST body (408 after).
    pub body_read_timeout: Duration,
    /// Requests per token (`None`: unlimited).
    pub rate_limit: Option<limits::RateLimit>,
    /// Requests of a public project's anonymous callers, per project (`None`: unlimited).
    pub anonymous_rate_limit: Option<limits::RateLimit>,
}

/// Default of [`McpSettings::max_sessions_per_token`].
pub const DEFAULT_MAX_SESSIONS_PER_TOKEN: usize = 64;
/// Default of [`McpSettings::session_idle_timeout`].
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Default of [`McpSettings::body_read_timeout`].
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`McpSettings::rate_limit`]: 50 requests per second, bursts of 100.
pub const DEFAULT_RATE_LIMIT: limits::RateLimit = limits::RateLimit { per_second: 50.0, burst: 100.0 };

impl Default for McpSettings {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: LOOPBACK_ORIGINS.iter().map(|o| (*o).to_string()).collect(),
            max_body_bytes: 4 * 1024 * 1024,
            public_url: None,
            max_sessions_per_token: DEFAULT_MAX_SESSIONS_PER_TOKEN,
            session_idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            rate_limit: Some(DEFAULT_RATE_LIMIT),
            anonymous_rate_limit: None,
        }
    }
}

/// `/projects/<project>/mcp` and the RFC 9728 metadata of each.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/projects/{project}/mcp", any(endpoint::endpoint))
        .route("/.well-known/oauth-protected-resource/projects/{project}/mcp", get(endpoint::resource_metadata))
}

/// The front door's two looks at a POST body, for the fuzz targets (`fuzz/`) and their corpus
/// replay: (the fast tree-free look of `shape`, the tree-based `endpoint` check). `shape`'s
/// guarantee is that the first implies the second.
#[doc(hidden)]
pub fn body_checks(bytes: &[u8]) -> (bool, bool) {
    (shape::acceptable(bytes), endpoint::check_jsonrpc(bytes).is_ok())
}
