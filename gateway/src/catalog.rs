//! The catalog: the deployed state as the gateway serves it — projects, the servers each exposes
//! (resolved project-first, then global), their prompts, and how each server is reached. Rebuilt
//! from the store after every deploy; pure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use schema::spec::{ProjectSpec, PromptScope, PromptSpec, ServerSpec, Transport};
use schema::{DesiredState, Kind, Resource, Spec};

use crate::upstream::{Target, Wanted, DEFAULT_TIMEOUT};

/// Where this gateway can reach servers.
#[derive(Debug, Clone, Default)]
pub struct Reach {
    /// stdio servers run under this process's local runtime (`mcpctl serve`).
    pub local_stdio: bool,
    /// Namespace of the Kubernetes runtime: image servers are reached through their Service
    /// (`http`/`sse`) or pod attach (`stdio`).
    pub kube_namespace: Option<String>,
    /// How stdio image servers are attached to; `None`: a client from the kubeconfig or the
    /// in-cluster service account, made on first use.
    pub attacher: Option<reconciler::runtime::kubernetes::Attacher>,
}

/// One server of a project.
#[derive(Debug, Clone)]
pub struct ServerRef {
    /// The name the project uses (and the tool prefix).
    pub name: String,
    /// The upstream key: `name`, or `project/name` for a server defined inside a project.
    pub key: String,
}

/// A project as served.
#[derive(Debug, Clone)]
pub struct ProjectView {
    pub name: String,
    pub spec: ProjectSpec,
    pub servers: Vec<ServerRef>,
    /// The project's own prompts (scope `project`), by name.
    pub prompts: Vec<(String, PromptSpec)>,
}

impl ProjectView {
    /// Whether tool and prompt names carry the `<server>__` prefix.
    pub fn prefixed(&self) -> bool {
        self.spec.prefix_tools || self.servers.len() != 1
    }

    /// The server a namespaced name belongs to, and the name upstream.
    pub fn split<'a>(&'a self, name: &'a str) -> Option<(&'a ServerRef, &'a str)> {
        if self.prefixed() {
            let (server, rest) = name.split_once(SEPARATOR)?;
            self.servers.iter().find(|s| s.name == server).map(|s| (s, rest))
        } else {
            self.servers.first().map(|s| (s, name))
        }
    }

    /// The name clients see for `name` of `server`.
    pub fn join(&self, server: &ServerRef, name: &str) -> String {
        if self.prefixed() {
            format!("{}{SEPARATOR}{name}", server.name)
        } else {
            name.to_string()
        }
    }
}

/// Between server and tool in namespaced names.
pub const SEPARATOR: &str = "__";

/// The deployed state, indexed for the gateway.
#[derive(Debug, Default)]
pub struct Catalog {
    pub state: Arc<DesiredState>,
    pub projects: HashMap<String, Arc<ProjectView>>,
    /// The deployed revision (commit sha) in force.
    pub revision: String,
}

fn server_key(res: &Resource) -> String {
    match &res.metadata.project {
        Some(p) => format!("{p}/{}", res.name()),
        None => res.name().to_string(),
    }
}

/// How `spec` is reached from a gateway with `reach`; `name` is the server key (`project/server`, or
/// `server` for a global one), which names its Kubernetes Service.
pub fn target(name: &str, spec: &ServerSpec, reach: &Reach) -> Target {
    if let Some(url) = &spec.url {
        return match spec.effective_transport() {
            Transport::Sse => Target::Sse(url.clone()),
            _ => Target::Http(url.clone()),
        };
    }
    if spec.image.is_some() {
        return match (&reach.kube_namespace, spec.effective_transport()) {
            (Some(ns), Transport::Http) => {
                let (project, server) = reconciler::runtime::kubernetes::split_key(name);
                Target::Http(reconciler::runtime::kubernetes::service_url(project, server, ns))
            }
            (Some(ns), Transport::Sse) => {
                let (project, server) = reconciler::runtime::kubernetes::split_key(name);
                let url = reconciler::runtime::kubernetes::service_url(project, server, ns);
                Target::Sse(format!("{}/sse", url.strip_suffix("/mcp").unwrap_or(&url)))
            }
            (Some(ns), Transport::Stdio) => Target::Attach(match &reach.attacher {
                Some(a) if a.namespace() == ns => a.clone(),
                _ => reconciler::runtime::kubernetes::Attacher::new(ns.clone()),
            }),
            (None, _) => Target::Unavailable("image servers run on the kubernetes runtime (--runtime kubernetes)".into()),
        };
    }
    if reach.local_stdio {
        Target::Stdio
    } else {
        Target::Unavailable("stdio servers run under `mcpctl serve` (local runtime); this gateway has none".into())
    }
}

impl Catalog {
    /// Index `state` deployed at `revision`; also returns every upstream to keep.
    pub fn build(state: DesiredState, revision: String, reach: &Reach) -> (Catalog, Vec<Wanted>) {
        let mut upstreams = Vec::new();
        for res in state.of_kind(Kind::Server) {
            if let Some(spec) = state.server_spec(res) {
                let timeout = spec.timeout_seconds.map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(u64::from(s)));
                let health = spec.health.clone().unwrap_or_else(crate::upstream::default_health);
                upstreams.push(Wanted {
                    key: server_key(res),
                    target: target(&server_key(res), &spec, reach),
                    timeout,
                    health,
                    replicas: spec.replicas,
                });
            }
        }
        let mut projects = HashMap::new();
        for res in state.of_kind(Kind::Project) {
            let Spec::Project(spec) = &res.spec else { continue };
            let servers = spec
                .servers
                .iter()
                .filter_map(|s| state.resolve(Kind::Server, s, Some(res.name())).map(|r| ServerRef { name: s.clone(), key: server_key(r) }))
                .collect();
            let prompts = state
                .of_kind(Kind::Prompt)
                .filter(|p| p.metadata.project.as_deref() == Some(res.name()))
                .filter_map(|p| match &p.spec {
                    Spec::Prompt(ps) if ps.scope == PromptScope::Project => Some((p.name().to_string(), ps.clone())),
                    _ => None,
                })
                .collect();
            projects.insert(
                res.name().to_string(),
                Arc::new(ProjectView { name: res.name().to_string(), spec: spec.clone(), servers, prompts }),
            );
        }
        (Catalog { state: Arc::new(state), projects, revision }, upstreams)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> ServerSpec {
        serde_json::from_value(serde_json::to_value(saphyr_free(yaml)).unwrap()).unwrap()
    }

    /// Tiny `key: value` specs without pulling the YAML loader into unit tests.
    fn saphyr_free(flat: &str) -> serde_json::Map<String, serde_json::Value> {
        flat.split(',')
            .filter(|kv| !kv.trim().is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.trim().to_string(), serde_json::Value::String(v.trim().to_string()))
            })
            .collect()
    }

    #[test]
    fn how_each_kind_of_server_is_reached() {
        let local = Reach { local_stdio: true, kube_namespace: None, attacher: None };
        let standalone = Reach { local_stdio: false, kube_namespace: Some("mcp".into()), attacher: None };
        assert_eq!(target("t", &spec("command=uvx"), &local), Target::Stdio);
        assert!(matches!(target("t", &spec("command=uvx"), &standalone), Target::Unavailable(r) if r.contains("mcpctl serve")));
        assert_eq!(target("d", &spec("url=http://x/mcp"), &standalone), Target::Http("http://x/mcp".into()));
        assert_eq!(target("d", &spec("url=http://x/sse,transport=sse"), &local), Target::Sse("http://x/sse".into()));
        assert_eq!(target("f", &spec("image=i,transport=http"), &standalone), Target::Http("http://mcp-f.mcp.svc:8080/mcp".into()));
        assert_eq!(target("p/f", &spec("image=i,transport=http"), &standalone), Target::Http("http://mcp-p-f.mcp.svc:8080/mcp".into()));
        assert!(matches!(target("f", &spec("image=i,transport=stdio"), &standalone), Target::Attach(a) if a.namespace() == "mcp"));
        assert!(matches!(target("f", &spec("image=i"), &standalone), Target::Attach(_)), "stdio is the default");
        assert_eq!(target("p/f", &spec("image=i,transport=sse"), &standalone), Target::Sse("http://mcp-p-f.mcp.svc:8080/sse".into()));
        assert!(matches!(target("f", &spec("image=i"), &local), Target::Unavailable(r) if r.contains("kubernetes")));
    }

    #[test]
    fn names_are_prefixed_unless_a_single_server_project_opts_out() {
        let view = |servers: &[&str], prefix_tools: bool| ProjectView {
            name: "p".into(),
            spec: serde_json::from_value(serde_json::json!({"servers": servers, "prefixTools": prefix_tools})).unwrap(),
            servers: servers.iter().map(|s| ServerRef { name: (*s).into(), key: (*s).into() }).collect(),
            prompts: Vec::new(),
        };
        let two = view(&["time", "web"], true);
        assert_eq!(two.join(&two.servers[1], "fetch"), "web__fetch");
        assert_eq!(two.split("web__fetch__x").map(|(s, n)| (s.name.as_str(), n)), Some(("web", "fetch__x")));
        assert!(two.split("nope__x").is_none() && two.split("plain").is_none());
        let one = view(&["time"], false);
        assert_eq!(one.join(&one.servers[0], "now"), "now");
        assert_eq!(one.split("now").map(|(s, n)| (s.name.as_str(), n)), Some(("time", "now")));
    }
}
