//! Health checks of upstreams per `Server.spec.health`: every `intervalSeconds`, on each replica's
//! own session, an MCP `ping` and then a `tools/list`, each within `timeoutSeconds`.
//!
//! # Guarantees
//! - **MCP-level, not "process alive".** A process that runs but no longer answers fails its
//!   checks; so does one that never finished `initialize`.
//! - **Restart after the threshold.** After `failureThreshold` consecutive failures a replica is
//!   `unhealthy`; a local one is killed and started again by its supervisor (the [`Restart`]
//!   handle the runtime gave with its pipes); an HTTP one is disconnected, to reconnect on the next
//!   check or call. A restarted process starts over as `starting`.
//! - **Transitions are told.** Becoming `unhealthy` (and a restart) and recovering are sent as
//!   [`Transition`]s: the gateway audits them (method `health`) and stores the current health as
//!   the `health` runtime's server status (`mcpctl status`).
//! - **No credentials.** Error texts are redacted ([`reconciler::redact::urls`]).
//!
//! # Caveats
//! Checks share the session with callers: a server that answers calls slowly but pings in time is
//! healthy. A local process still in `initialize` is `starting`, not failing, for
//! [`STARTUP_GRACE`]; after that each check counts as failed.

use std::sync::{Arc, Weak};
use std::time::Duration;

use rmcp::model::{ClientRequest, ListToolsRequest, PingRequest};
use rmcp::service::PeerRequestOptions;
use schema::spec::HealthCheck;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use reconciler::redact;

use super::{Target, Upstream};

/// How long a local process may take to answer `initialize` before that counts as a failed check
/// (`npx -y` / `uvx` may download the server first).
pub const STARTUP_GRACE: Duration = Duration::from_secs(60);

/// Where a replica stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not checked successfully since it (re)started.
    #[default]
    Starting,
    Healthy,
    /// `failureThreshold` consecutive checks failed.
    Unhealthy,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Healthy => "healthy",
            State::Unhealthy => "unhealthy",
        }
    }
}

/// The health of one replica, as the checks found it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checked {
    pub state: State,
    /// RFC 3339 time of the last check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_check: Option<String>,
    /// Checks run since the process (re)started.
    pub checks: u64,
    pub consecutive_failures: u32,
    /// Why the last failed check failed (redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Restarts the checks asked for.
    pub restarts: u32,
}

impl Checked {
    /// A (re)started process: checks start over; restarts are kept.
    pub(super) fn restarted(&mut self) {
        *self = Checked { restarts: self.restarts, ..Checked::default() };
    }
}

/// A change of a replica's health, for the audit log and the stored status.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The server key.
    pub server: String,
    pub replica: u32,
    pub state: State,
    /// The process was killed to be restarted.
    pub restarted: bool,
    /// The last check's error (redacted), when unhealthy.
    pub error: Option<String>,
    /// How long the failing (or recovering) check took.
    pub took: Duration,
}

/// Run the checks of one server (all its replicas) until it is retired or dropped.
pub(super) async fn watch(up: Weak<Upstream>, retired: CancellationToken) {
    loop {
        let Some(interval) = up.upgrade().map(|u| Duration::from_secs(u64::from(u.check().interval_seconds.max(1)))) else { return };
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = retired.cancelled() => return,
        }
        let Some(u) = up.upgrade() else { return };
        let check = u.check();
        let members = u.members();
        drop(u);
        let checks = members.iter().map(|m| check_one(m, &check));
        futures::future::join_all(checks).await;
    }
}

/// One check of one replica, and what follows from it.
async fn check_one(up: &Arc<Upstream>, check: &HealthCheck) {
    let target = up.target();
    if matches!(target, Target::Unavailable(_)) {
        return;
    }
    let timeout = Duration::from_secs(u64::from(check.timeout_seconds.max(1)));
    let started = tokio::time::Instant::now();
    let result = match up.live() {
        Some(conn) => probe(&conn.peer, timeout).await,
        // A local process that is attached but has not finished `initialize`: starting, until the
        // grace is over.
        None if up.attached_for().is_some_and(|t| t > STARTUP_GRACE) => {
            Err(format!("not answering: `initialize` unanswered after {STARTUP_GRACE:?}"))
        }
        None if matches!(target, Target::Stdio) => return,
        // HTTP (and other remote) upstreams: connecting is the check.
        None => match tokio::time::timeout(timeout, up.connection()).await {
            Ok(Ok(conn)) => probe(&conn.peer, timeout).await,
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("connecting took longer than {timeout:?}")),
        },
    };
    let took = started.elapsed();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let transition = {
        let mut h = up.checked.lock().expect("health lock");
        h.last_check = Some(now);
        h.checks += 1;
        match result {
            Ok(()) => {
                h.consecutive_failures = 0;
                h.last_error = None;
                let was = std::mem::replace(&mut h.state, State::Healthy);
                (was == State::Unhealthy).then(|| Transition {
                    server: up.key.clone(),
                    replica: up.replica,
                    state: State::Healthy,
                    restarted: false,
                    error: None,
                    took,
                })
            }
            Err(e) => {
                let e = redact::urls(&e);
                h.consecutive_failures += 1;
                h.last_error = Some(e.clone());
                if h.consecutive_failures >= check.failure_threshold.max(1) && h.state != State::Unhealthy {
                    h.state = State::Unhealthy;
                    Some(Transition {
                        server: up.key.clone(),
                        replica: up.replica,
                        state: State::Unhealthy,
                        restarted: false,
                        error: Some(e),
                        took,
                    })
                } else {
                    None
                }
            }
        }
    };
    let Some(mut t) = transition else { return };
    if t.state == State::Unhealthy {
        warn!(server = %t.server, replica = t.replica, error = t.error.as_deref().unwrap_or(""), "upstream unhealthy");
        if let Some(restart) = up.restart_handle() {
            up.checked.lock().expect("health lock").restarts += 1;
            restart.restart();
            t.restarted = true;
        } else if !matches!(target, Target::Stdio) {
            up.disconnect();
        }
    }
    let _ = up.events.send(t);
}

/// `ping`, then `tools/list`, each within `timeout`.
async fn probe(peer: &rmcp::service::Peer<rmcp::RoleClient>, timeout: Duration) -> Result<(), String> {
    let ask = |request: ClientRequest, what: &'static str| async move {
        let handle =
            peer.send_request_with_option(request, PeerRequestOptions::with_timeout(timeout)).await.map_err(|e| format!("{what}: {e}"))?;
        match handle.await_response().await {
            Ok(_) => Ok(()),
            // An error answer is still an answer: the server is alive and speaks MCP.
            Err(rmcp::service::ServiceError::McpError(_)) => Ok(()),
            Err(rmcp::service::ServiceError::Timeout { .. }) => Err(format!("{what}: no answer within {timeout:?}")),
            Err(e) => Err(format!("{what}: {e}")),
        }
    };
    ask(ClientRequest::PingRequest(PingRequest { method: Default::default(), extensions: Default::default() }), "ping").await?;
    ask(
        ClientRequest::ListToolsRequest(ListToolsRequest { method: Default::default(), params: None, extensions: Default::default() }),
        "tools/list",
    )
    .await
}

/// The gateway's side of transitions: audit each (method `health`, once per project that exposes
/// the server, outcome `healthy`, `unhealthy` or `restarted`) and store every upstream's health as
/// the `health` runtime's server status, until the registry is dropped.
pub async fn record(state: Weak<crate::AppState>) {
    let Some(mut rx) = state.upgrade().map(|s| s.upstreams.transitions()) else { return };
    loop {
        let t = match rx.recv().await {
            Ok(t) => t,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let Some(state) = state.upgrade() else { return };
        let catalog = state.catalog();
        let mut projects: Vec<String> =
            catalog.projects.values().filter(|p| p.servers.iter().any(|s| s.key == t.server)).map(|p| p.name.clone()).collect();
        projects.sort();
        if projects.is_empty() {
            projects.push(t.server.split_once('/').map_or("-", |(p, _)| p).to_string());
        }
        let outcome = match (t.state, t.restarted) {
            (State::Unhealthy, true) => "restarted",
            (s, _) => s.as_str(),
        };
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for project in projects {
            state.auditor.record(reconciler::audit::AuditEvent {
                id: 0,
                at: at.clone(),
                project,
                token: "-".into(),
                token_prefix: "-".into(),
                session: "-".into(),
                method: "health".into(),
                server: t.server.clone(),
                target: format!("replica {}", t.replica),
                duration_us: i64::try_from(t.took.as_micros()).unwrap_or(i64::MAX),
                outcome: outcome.into(),
                error: t.error.clone(),
                revision: catalog.revision.clone(),
                thread: None,
            });
        }
        let statuses: Vec<(String, serde_json::Value)> =
            state.upstreams.health().into_iter().map(|h| (h.server.clone(), serde_json::to_value(&h).unwrap_or_default())).collect();
        if let Err(e) = state.store.set_server_status("health", &statuses).await {
            warn!(error = %e, "cannot store upstream health");
        }
    }
}
