//! Per-project protocol services (one rmcp `StreamableHttpService` each), the sessions they
//! hold, and the change notifications sent to them.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use rmcp::service::{Peer, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::handler::ProjectHandler;
use crate::catalog::ProjectView;
use crate::upstream::Change;
use crate::AppState;

type ProjectService = StreamableHttpService<ProjectHandler, LocalSessionManager>;

/// Per-project protocol services and the sessions they hold.
#[derive(Default)]
pub struct Endpoints {
    pub(crate) services: Mutex<HashMap<String, (ProjectService, CancellationToken)>>,
    pub(crate) sessions: Mutex<HashMap<String, Vec<Peer<RoleServer>>>>,
    /// Stateless gate openings known to be stored: (project, subject).
    pub(crate) gates: Mutex<std::collections::HashSet<(String, String)>>,
}

impl Endpoints {
    pub(crate) fn service(&self, app: &Arc<AppState>, project: &str) -> ProjectService {
        let mut services = self.services.lock().expect("services lock");
        if let Some((s, _)) = services.get(project) {
            return s.clone();
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
        let service = StreamableHttpService::new(factory, Arc::new(LocalSessionManager::default()), config);
        services.insert(project.to_string(), (service.clone(), ct));
        service
    }

    /// Close the endpoints of projects that are gone.
    pub fn retain(&self, projects: &HashMap<String, Arc<ProjectView>>) {
        self.services.lock().expect("services lock").retain(|p, (_, ct)| {
            let keep = projects.contains_key(p);
            if !keep {
                ct.cancel();
            }
            keep
        });
        self.sessions.lock().expect("sessions lock").retain(|p, _| projects.contains_key(p));
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
                    Change::ResourceUpdated(_, uri) => peer.notify_resource_updated(rmcp::model::ResourceUpdatedNotificationParam::new(uri.clone())).await,
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
        let projects: Vec<String> = app.catalog().projects.values().filter(|p| p.servers.iter().any(|s| s.key == key)).map(|p| p.name.clone()).collect();
        app.endpoints.notify(&projects, &change).await;
    }
}
