//! Per-project protocol services (one rmcp `StreamableHttpService` each), the sessions they
//! hold and who owns each, and the change notifications sent to them.
//!
//! # Guarantees
//! A session id belongs to the caller whose `initialize` created it (a token hash, or
//! `anonymous` for a public project's anonymous callers); the endpoint answers 404 to anyone
//! else. One owner holds at most `max_sessions_per_token` sessions: opening one more closes its
//! least recently used one. Idle sessions close after `session_idle_timeout`.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rmcp::service::{Peer, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::handler::ProjectHandler;
use crate::catalog::ProjectView;
use crate::upstream::Change;
use crate::AppState;

/// Shared, not cloned per request: a clone copies the service's whole configuration (host and
/// origin allowlists).
type ProjectService = Arc<StreamableHttpService<ProjectHandler, LocalSessionManager>>;
/// A project's protocol service, its session manager, and what stops them.
type ServiceEntry = (ProjectService, Arc<LocalSessionManager>, CancellationToken);

/// Who opened a session, and when it was last used.
#[derive(Debug, Clone)]
struct Owner {
    project: String,
    subject: String,
    used: Instant,
}

/// Per-project protocol services and the sessions they hold.
#[derive(Default)]
pub struct Endpoints {
    pub(crate) services: Mutex<HashMap<String, ServiceEntry>>,
    /// Session id → owner.
    owners: Mutex<HashMap<String, Owner>>,
    pub(crate) sessions: Mutex<HashMap<String, Vec<Peer<RoleServer>>>>,
    /// Stateless gate openings known to be stored: (project, subject).
    pub(crate) gates: Mutex<std::collections::HashSet<(String, String)>>,
}

impl Endpoints {
    pub(crate) fn service(&self, app: &Arc<AppState>, project: &str) -> ProjectService {
        self.service_and_sessions(app, project).0
    }

    fn service_and_sessions(&self, app: &Arc<AppState>, project: &str) -> (ProjectService, Arc<LocalSessionManager>) {
        let mut services = self.services.lock().expect("services lock");
        if let Some((s, m, _)) = services.get(project) {
            return (s.clone(), m.clone());
        }
        let ct = CancellationToken::new();
        let s = &app.mcp_settings;
        let mut config = StreamableHttpServerConfig::default()
            .with_allowed_hosts(s.allowed_hosts.clone())
            .with_allowed_origins(s.allowed_origins.clone())
            .enforce_origin_validation()
            .with_json_response(true)
            .with_max_request_body_bytes(s.max_body_bytes)
            .with_cancellation_token(ct.clone());
        if s.allowed_hosts.is_empty() {
            config = config.disable_allowed_hosts();
        }
        let (app2, name) = (app.clone(), project.to_string());
        let factory = move || Ok(ProjectHandler { app: app2.clone(), project: name.clone(), opened: Arc::new(AtomicBool::new(false)) });
        let mut manager = LocalSessionManager::default();
        manager.session_config.keep_alive = Some(s.session_idle_timeout);
        let manager = Arc::new(manager);
        let service = Arc::new(StreamableHttpService::new(factory, manager.clone(), config));
        services.insert(project.to_string(), (service.clone(), manager.clone(), ct));
        (service, manager)
    }

    /// Whether session `id` of `project` was opened by `subject` (and mark it used).
    pub(crate) fn owned_by(&self, project: &str, id: &str, subject: &str) -> bool {
        let mut owners = self.owners.lock().expect("owners lock");
        match owners.get_mut(id) {
            Some(o) if o.project == project && o.subject == subject => {
                o.used = Instant::now();
                true
            }
            _ => false,
        }
    }

    /// Record that `subject` opened session `id`, then hold it to `cap` sessions: forget those
    /// rmcp already closed (idle expiry, DELETE), and close the least recently used beyond `cap`.
    pub(crate) async fn opened(&self, app: &Arc<AppState>, project: &str, id: &str, subject: &str, cap: usize) {
        let mine: Vec<(String, Instant)> = {
            let mut owners = self.owners.lock().expect("owners lock");
            owners.insert(id.to_string(), Owner { project: project.to_string(), subject: subject.to_string(), used: Instant::now() });
            owners.iter().filter(|(_, o)| o.project == project && o.subject == subject).map(|(k, o)| (k.clone(), o.used)).collect()
        };
        if mine.len() <= cap {
            return;
        }
        let (_, manager) = self.service_and_sessions(app, project);
        let mut live = Vec::new();
        for (sid, used) in mine {
            if rmcp::transport::streamable_http_server::SessionManager::has_session(&*manager, &sid.clone().into()).await.unwrap_or(false) {
                live.push((sid, used));
            } else {
                self.forget(&sid);
            }
        }
        live.sort_by_key(|(_, used)| *used);
        let excess = live.len().saturating_sub(cap);
        for (sid, _) in live.into_iter().take(excess) {
            self.forget(&sid);
            let _ = rmcp::transport::streamable_http_server::SessionManager::close_session(&*manager, &sid.into()).await;
        }
    }

    /// Forget the owner of session `id` (it was deleted or closed).
    pub(crate) fn forget(&self, id: &str) {
        self.owners.lock().expect("owners lock").remove(id);
    }

    /// Forget the sessions of token subjects `keep` rejects (tokens no longer deployed).
    pub(crate) fn forget_owners_except(&self, keep: impl Fn(&str) -> bool) {
        self.owners.lock().expect("owners lock").retain(|_, o| o.subject == "anonymous" || keep(&o.subject));
    }

    /// Sessions whose owner is recorded.
    pub fn owned_sessions(&self) -> usize {
        self.owners.lock().expect("owners lock").len()
    }

    /// Close the endpoints of projects that are gone.
    pub fn retain(&self, projects: &HashMap<String, Arc<ProjectView>>) {
        self.services.lock().expect("services lock").retain(|p, (_, _, ct)| {
            let keep = projects.contains_key(p);
            if !keep {
                ct.cancel();
            }
            keep
        });
        self.sessions.lock().expect("sessions lock").retain(|p, _| projects.contains_key(p));
        self.owners.lock().expect("owners lock").retain(|_, o| projects.contains_key(&o.project));
    }

    fn peers(&self, project: &str) -> Vec<Peer<RoleServer>> {
        let mut sessions = self.sessions.lock().expect("sessions lock");
        let v = sessions.entry(project.to_string()).or_default();
        v.retain(|p| !p.is_transport_closed());
        v.clone()
    }

    /// Tell every open session of `projects` that `change` happened.
    pub async fn notify(&self, projects: &[String], change: &Change) {
        for p in projects {
            for peer in self.peers(p) {
                let _ = match change {
                    Change::Tools(_) => peer.notify_tool_list_changed().await,
                    Change::Prompts(_) => peer.notify_prompt_list_changed().await,
                    Change::Resources(_) => peer.notify_resource_list_changed().await,
                    Change::ResourceUpdated(_, uri) => {
                        peer.notify_resource_updated(rmcp::model::ResourceUpdatedNotificationParam::new(uri.clone())).await
                    }
                };
            }
        }
    }
}

/// Forward upstream changes to the sessions that can see them, until the sender closes.
pub async fn forward_changes(app: Arc<AppState>) {
    let mut rx = app.upstreams.subscribe();
    loop {
        let change = match rx.recv().await {
            Ok(c) => c,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        let key = match &change {
            Change::Tools(k) | Change::Prompts(k) | Change::Resources(k) | Change::ResourceUpdated(k, _) => k.clone(),
        };
        let projects: Vec<String> =
            app.catalog().projects.values().filter(|p| p.servers.iter().any(|s| s.key == key)).map(|p| p.name.clone()).collect();
        app.endpoints.notify(&projects, &change).await;
    }
}
