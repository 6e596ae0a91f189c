//! The Kubernetes runtime: each `image` server becomes a Deployment (and, for `http`/`sse`
//! servers, a Service on port 8080) in one namespace, applied server-side with field manager
//! `mcpctl`. Objects are named per project ([`object_name`]: `mcp-<project>-<server>`) and
//! labelled `app.kubernetes.io/managed-by=mcpctl`, `app.kubernetes.io/name=<server>`,
//! `app.kubernetes.io/instance=<object>`, `mcpctl.dev/server=<server>` and
//! `mcpctl.dev/project=<project>`; Deployments and Services select on the instance label only, so
//! servers of the same name in two projects never share pods. Objects no longer desired are pruned
//! by the managed-by label. Readiness is read back from the Deployment status.
//!
//! Env from secrets goes through a Kubernetes Secret `<object>-env` (one key per variable),
//! applied first with the values decrypted in memory (secrets resolved in the server's project);
//! the Deployment references it.
//!
//! Stdio images get no Service: the gateway reaches them through the pod attach API
//! ([`Attacher`]: the container's stdin and stdout over a WebSocket, kube's `ws` feature).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::{json, Value};
use tracing::warn;

use schema::spec::{ServerSpec, Transport};
use schema::{DesiredState, Kind};

/// The field manager of every apply.
pub const FIELD_MANAGER: &str = "mcpctl";
/// Selects everything mcpctl manages.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=mcpctl";
/// Name of the one container of a server's pod (what the gateway attaches to).
pub const CONTAINER: &str = "server";
/// Port an `http`/`sse` image is expected to serve MCP on.
pub const HTTP_PORT: u16 = 8080;

/// Error talking to the API server.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// Shown with URLs reduced to host and path (see [`crate::redact::urls`]).
    #[error("kubernetes API: {}", crate::redact::urls(&.0.to_string()))]
    Api(#[from] kube::Error),
    #[error("server {server}: {source}")]
    Secret {
        server: String,
        #[source]
        source: crate::secrets::SecretError,
    },
    #[error("no running pod of `{object}` in namespace `{namespace}` (yet)")]
    NoPod { object: String, namespace: String },
    /// Cannot happen with [`Attacher::params`]; an error rather than a panic all the same.
    #[error("the attach to pod `{pod}` gave no stdin/stdout")]
    NoPipes { pod: String },
}

/// Readiness of one server's Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    /// The server's key: `project/server`, or `server` for a global one.
    pub server: String,
    /// Name of its Deployment (and Service).
    pub object: String,
    pub replicas: i32,
    pub ready: i32,
    /// Why it was not applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Longest object name made: a DNS-1123 label, as Services (and label values) require.
pub const MAX_NAME: usize = 63;
/// Hex digits of the hash suffix of a shortened name.
const HASH_LEN: usize = 8;

/// Kubernetes object name of a server: `mcp-<project>-<server>` (`mcp-<server>` for a global
/// server). Pure.
///
/// # Guarantees
/// At most [`MAX_NAME`] characters, a valid DNS-1123 label when project and server are. A name
/// that would be longer keeps its first 54 characters and gets `-` and 8 hex digits of a SHA-256
/// of `project/server`, so long names that share a prefix stay distinct.
///
/// # Caveats
/// Different servers can still meet on one name (`a-b/c` and `a/b-c`; global `a-b` and `a/b`);
/// [`KubeRuntime::sync`] refuses every server of such a name rather than let one take over
/// another's objects.
pub fn object_name(project: Option<&str>, server: &str) -> String {
    let readable = match project {
        Some(p) => format!("mcp-{p}-{server}"),
        None => format!("mcp-{server}"),
    };
    if readable.len() <= MAX_NAME {
        return readable;
    }
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(format!("{}/{server}", project.unwrap_or("")).as_bytes()));
    let prefix = readable[..MAX_NAME - 1 - HASH_LEN].trim_end_matches('-');
    format!("{prefix}-{}", &digest[..HASH_LEN])
}

/// The server key used by the runtimes and the gateway (`project/server`, or `server` for a
/// global one) split into project and server.
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((p, s)) => (Some(p), s),
        None => (None, key),
    }
}

/// The in-cluster URL of an HTTP image server's MCP endpoint (its Service, path `/mcp`).
pub fn service_url(project: Option<&str>, server: &str, namespace: &str) -> String {
    format!("http://{}.{namespace}.svc:{HTTP_PORT}/mcp", object_name(project, server))
}

/// Name of the Secret holding a server's env values from secrets.
pub fn env_secret_name(project: Option<&str>, server: &str) -> String {
    format!("{}-env", object_name(project, server))
}

/// Labels of every object of a server. The selector of its Deployment and Service is
/// [`INSTANCE_LABEL`] alone: one value per object name, which `sync` keeps unique.
fn labels(project: Option<&str>, server: &str) -> Value {
    let mut l = json!({
        "app.kubernetes.io/managed-by": "mcpctl",
        "app.kubernetes.io/name": server,
        INSTANCE_LABEL: object_name(project, server),
        SERVER_LABEL: server,
    });
    if let Some(p) = project {
        l[PROJECT_LABEL] = json!(p);
    }
    l
}

/// Label naming the object a pod belongs to; the selector of Deployments and Services.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// Label carrying the server's project (absent for a global server).
pub const PROJECT_LABEL: &str = "mcpctl.dev/project";
/// Label carrying the server's name.
pub const SERVER_LABEL: &str = "mcpctl.dev/server";

fn selector(project: Option<&str>, server: &str) -> Value {
    json!({INSTANCE_LABEL: object_name(project, server)})
}

/// The Deployment (and Service, for HTTP servers) of one image server. Pure.
pub fn manifests(project: Option<&str>, name: &str, spec: &ServerSpec, namespace: &str) -> Option<(Value, Option<Value>)> {
    let image = spec.image.as_ref()?;
    let env: Vec<Value> = spec
        .env
        .iter()
        .map(|e| match (&e.value, &e.value_from) {
            (Some(v), _) => json!({"name": e.name, "value": v}),
            _ => json!({"name": e.name, "valueFrom": {"secretKeyRef": {"name": env_secret_name(project, name), "key": e.name}}}),
        })
        .collect();
    let http = spec.effective_transport() != Transport::Stdio;
    let mut container = json!({"name": CONTAINER, "image": image});
    if !spec.args.is_empty() {
        container["args"] = json!(spec.args);
    }
    if !env.is_empty() {
        container["env"] = json!(env);
    }
    if let Some(r) = &spec.resources {
        let mut limits = serde_json::Map::new();
        if let Some(c) = &r.cpu {
            limits.insert("cpu".into(), json!(c));
        }
        if let Some(m) = &r.memory {
            limits.insert("memory".into(), json!(m));
        }
        container["resources"] = json!({"limits": limits});
    }
    if http {
        container["ports"] = json!([{"name": "mcp", "containerPort": HTTP_PORT}]);
    } else {
        // stdio over the attach API.
        container["stdin"] = json!(true);
        container["tty"] = json!(false);
    }
    let obj = object_name(project, name);
    let labels = labels(project, name);
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": obj, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": selector(project, name)},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec(container)},
        }
    });
    let service = http.then(|| {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": obj, "namespace": namespace, "labels": labels},
            "spec": {"selector": selector(project, name), "ports": [{"name": "mcp", "port": HTTP_PORT, "targetPort": HTTP_PORT}]}
        })
    });
    Some((deployment, service))
}

/// The pod of a server: its one container, no API token (a server has no business with the
/// Kubernetes API, and the namespace's default service account could read other projects'
/// Secrets), no environment variables describing the other Services of the namespace, and no
/// privilege escalation (setuid binaries) inside the container.
fn pod_spec(mut container: Value) -> Value {
    container["securityContext"] = json!({"allowPrivilegeEscalation": false});
    json!({"automountServiceAccountToken": false, "enableServiceLinks": false, "containers": [container]})
}

/// One image server of a desired state.
#[derive(Debug, Clone)]
pub struct ImageServer {
    /// Its project; `None` for a global server.
    pub project: Option<String>,
    pub name: String,
    /// The effective (template-expanded) spec.
    pub spec: ServerSpec,
}

impl ImageServer {
    /// `project/name`, or `name` for a global server (the key statuses are stored under).
    pub fn key(&self) -> String {
        match &self.project {
            Some(p) => format!("{p}/{}", self.name),
            None => self.name.clone(),
        }
    }

    pub fn object_name(&self) -> String {
        object_name(self.project.as_deref(), &self.name)
    }
}

/// Image servers of a desired state with their effective specs, in key order.
pub fn image_servers(state: &DesiredState) -> Vec<ImageServer> {
    let mut v: Vec<ImageServer> = state
        .of_kind(Kind::Server)
        .filter_map(|r| {
            let spec = state.server_spec(r)?;
            spec.image.is_some().then(|| ImageServer { project: r.metadata.project.clone(), name: r.name().to_string(), spec })
        })
        .collect();
    v.sort_by_key(|s| s.key());
    v
}

/// Object names claimed by more than one server, with the keys of the servers claiming each. Pure.
pub fn name_collisions(servers: &[ImageServer]) -> BTreeMap<String, Vec<String>> {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in servers {
        by_name.entry(s.object_name()).or_default().push(s.key());
    }
    by_name.retain(|_, keys| keys.len() > 1);
    by_name
}

/// The Secret holding a server's env values from secrets (`None` when it has none). Pure.
pub fn env_secret(project: Option<&str>, name: &str, namespace: &str, values: &[(String, String)]) -> Option<Value> {
    if values.is_empty() {
        return None;
    }
    let data: serde_json::Map<String, Value> = values.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    Some(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": env_secret_name(project, name), "namespace": namespace, "labels": labels(project, name)},
        "type": "Opaque",
        "stringData": data,
    }))
}

/// Applies servers to one namespace.
pub struct KubeRuntime {
    client: kube::Client,
    namespace: String,
    secrets: crate::secrets::SecretResolver,
}

impl KubeRuntime {
    pub fn new(client: kube::Client, namespace: impl Into<String>) -> Self {
        Self { client, namespace: namespace.into(), secrets: crate::secrets::SecretResolver::none() }
    }

    /// Decrypt env values from secrets with `secrets`.
    pub fn with_secrets(mut self, secrets: crate::secrets::SecretResolver) -> Self {
        self.secrets = secrets;
        self
    }

    /// Apply every image server, prune the ones no longer desired, and read readiness back.
    ///
    /// # Guarantees
    /// Env values from secrets are resolved in the server's own project (then globally), never in
    /// another project. Servers whose object names collide ([`name_collisions`]) are not applied
    /// and their objects are pruned: reported with the reason, none of them takes over another's
    /// Deployment, Service or Secret. Pruning is by the managed-by label, so objects made under
    /// older names (e.g. `mcp-<server>` of a project server) go too. A Deployment whose selector
    /// changed (immutable in Kubernetes) is deleted and applied again.
    ///
    /// # Errors
    /// The first API error; objects already applied stay (the next sync converges).
    pub async fn sync(&self, state: &DesiredState) -> Result<Vec<Readiness>, KubeError> {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let services: Api<Service> = Api::namespaced(self.client.clone(), &self.namespace);
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut wanted_secrets = BTreeSet::new();
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        let mut wanted = BTreeSet::new();
        let mut wanted_services = BTreeSet::new();
        let mut readiness = Vec::new();
        let servers = image_servers(state);
        let collisions = name_collisions(&servers);
        for server in servers {
            let obj = server.object_name();
            let project = server.project.as_deref();
            if let Some(keys) = collisions.get(&obj) {
                let error = format!("object name `{obj}` is shared by servers {}; rename one", keys.join(", "));
                warn!(server = %server.key(), %error, "not applied");
                readiness.push(Readiness {
                    server: server.key(),
                    object: obj,
                    replicas: server.spec.replicas as i32,
                    ready: 0,
                    error: Some(error),
                });
                continue;
            }
            let Some((d, s)) = manifests(project, &server.name, &server.spec, &self.namespace) else { continue };
            let mut values = Vec::new();
            for e in &server.spec.env {
                if let Some(vf) = &e.value_from {
                    let v = self
                        .secrets
                        .resolve(state, project, &vf.secret_ref)
                        .map_err(|source| KubeError::Secret { server: server.key(), source })?;
                    values.push((e.name.clone(), v));
                }
            }
            if let Some(secret) = env_secret(project, &server.name, &self.namespace, &values) {
                let sname = env_secret_name(project, &server.name);
                secrets.patch(&sname, &pp, &Patch::Apply(&secret)).await?;
                wanted_secrets.insert(sname);
            }
            let applied = apply_deployment(&deployments, &obj, &d, &pp).await?;
            if let Some(s) = s {
                services.patch(&obj, &pp, &Patch::Apply(&s)).await?;
                wanted_services.insert(obj.clone());
            }
            let status = applied.status.unwrap_or_default();
            readiness.push(Readiness {
                server: server.key(),
                object: obj.clone(),
                replicas: server.spec.replicas as i32,
                ready: status.ready_replicas.unwrap_or(0),
                error: None,
            });
            wanted.insert(obj);
        }
        let lp = ListParams::default().labels(MANAGED_SELECTOR);
        for d in deployments.list(&lp).await?.items {
            let n = d.metadata.name.unwrap_or_default();
            if !wanted.contains(&n) {
                delete(&deployments, &n).await?;
            }
        }
        for s in services.list(&lp).await?.items {
            let n = s.metadata.name.unwrap_or_default();
            if !wanted_services.contains(&n) {
                delete(&services, &n).await?;
            }
        }
        for s in secrets.list(&lp).await?.items {
            let n = s.metadata.name.unwrap_or_default();
            if !wanted_secrets.contains(&n) {
                delete(&secrets, &n).await?;
            }
        }
        Ok(readiness)
    }
}

/// Reaches stdio image servers: the stdin and stdout of their pod's container through the attach
/// API (a WebSocket, `v4.channel.k8s.io`/`v5.channel.k8s.io`).
///
/// # Guarantees
/// - Attaches only to a pod of the server's own object (selected on [`INSTANCE_LABEL`]) that is
///   `Running` and not being deleted; the most recently started one when a rollout leaves several.
/// - Stdin and stdout only (no TTY, no stderr): the pipe is the MCP stdio transport.
///
/// # Caveats
/// The server process lives as long as its container, not as long as an attach: a re-attach
/// (gateway restart, dropped connection) meets an already initialized server, and what it wrote
/// to stdout while nobody was attached is lost. Attaching needs `get` on `pods` and `create` on
/// `pods/attach` in the namespace.
#[derive(Clone)]
pub struct Attacher {
    namespace: String,
    client: std::sync::Arc<tokio::sync::OnceCell<kube::Client>>,
}

impl std::fmt::Debug for Attacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attacher").field("namespace", &self.namespace).finish_non_exhaustive()
    }
}

/// Two attachers are the same when they reach the same namespace (of the one cluster a process
/// talks to).
impl PartialEq for Attacher {
    fn eq(&self, other: &Self) -> bool {
        self.namespace == other.namespace
    }
}

impl Eq for Attacher {}

/// A live attach to a server's container: its stdin, its stdout, and the connection (dropping it
/// closes the WebSocket).
pub struct Attached {
    pub pod: String,
    pub stdin: tokio::io::WriteHalf<tokio::io::SimplexStream>,
    pub stdout: tokio::io::ReadHalf<tokio::io::SimplexStream>,
    pub process: kube::api::AttachedProcess,
}

impl Attacher {
    /// An attacher whose client is made on first use from the kubeconfig or the in-cluster
    /// service account (as `kube::Client::try_default`).
    pub fn new(namespace: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), client: std::sync::Arc::default() }
    }

    /// An attacher using `client`.
    pub fn with_client(client: kube::Client, namespace: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), client: std::sync::Arc::new(tokio::sync::OnceCell::new_with(Some(client))) }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    async fn client(&self) -> Result<kube::Client, KubeError> {
        Ok(self.client.get_or_try_init(kube::Client::try_default).await?.clone())
    }

    /// The parameters of every attach: container [`CONTAINER`], stdin and stdout, no TTY.
    pub fn params() -> kube::api::AttachParams {
        kube::api::AttachParams::default().container(CONTAINER).stdin(true).stdout(true).stderr(false).tty(false)
    }

    /// The pod of server `key` (`project/server` or `server`) to attach to.
    ///
    /// # Errors
    /// [`KubeError::NoPod`] when none is running; API errors.
    pub async fn pod(&self, key: &str) -> Result<String, KubeError> {
        let (project, server) = split_key(key);
        let object = object_name(project, server);
        let pods: Api<Pod> = Api::namespaced(self.client().await?, &self.namespace);
        let list = pods.list(&ListParams::default().labels(&format!("{INSTANCE_LABEL}={object}"))).await?;
        list.items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .max_by_key(|p| p.status.as_ref().and_then(|s| s.start_time.clone()).map(|t| t.0))
            .and_then(|p| p.metadata.name)
            .ok_or(KubeError::NoPod { object, namespace: self.namespace.clone() })
    }

    /// Attach to the container of server `key`'s running pod.
    ///
    /// # Errors
    /// [`KubeError::NoPod`]; API and upgrade errors (RBAC refusals come back as API errors).
    pub async fn attach(&self, key: &str) -> Result<Attached, KubeError> {
        let pod = self.pod(key).await?;
        let pods: Api<Pod> = Api::namespaced(self.client().await?, &self.namespace);
        let mut process = pods.attach(&pod, &Self::params()).await?;
        let (Some(stdin), Some(stdout)) = (process.stdin(), process.stdout()) else {
            return Err(KubeError::NoPipes { pod });
        };
        Ok(Attached { pod, stdin, stdout, process })
    }
}

/// Delete `name`; already gone is success.
async fn delete<K>(api: &Api<K>, name: &str) -> Result<(), kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Server-side apply a Deployment. When the API server refuses it (422) because the existing
/// Deployment has another selector (an immutable field: objects made by an older mcpctl selected
/// on `mcpctl.io/server`), delete it and apply again; any other refusal is returned.
async fn apply_deployment(api: &Api<Deployment>, name: &str, d: &Value, pp: &PatchParams) -> Result<Deployment, kube::Error> {
    match api.patch(name, pp, &Patch::Apply(d)).await {
        Err(kube::Error::Api(status)) if status.code == 422 => {
            let existing = api.get_opt(name).await?;
            let theirs = existing.as_ref().map(|e| serde_json::to_value(e.spec.as_ref().map(|s| &s.selector)).unwrap_or_default());
            let ours = json!(&d["spec"]["selector"]);
            if theirs.is_some_and(|t| t != ours) {
                warn!(deployment = name, "selector changed; deleting and re-creating the Deployment");
                delete(api, name).await?;
                return api.patch(name, pp, &Patch::Apply(d)).await;
            }
            Err(kube::Error::Api(status))
        }
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use schema::validate::is_dns_label;

    fn label(n: usize, c: char) -> String {
        std::iter::repeat_n(c, n).collect()
    }

    #[test]
    fn short_names_are_readable_and_carry_the_project() {
        assert_eq!(object_name(Some("home"), "fs"), "mcp-home-fs");
        assert_eq!(object_name(Some("work"), "fs"), "mcp-work-fs");
        assert_eq!(object_name(None, "fs"), "mcp-fs");
        assert_eq!(env_secret_name(Some("home"), "fs"), "mcp-home-fs-env");
        assert_eq!(service_url(Some("home"), "fs", "mcp"), "http://mcp-home-fs.mcp.svc:8080/mcp");
        assert_eq!(split_key("home/fs"), (Some("home"), "fs"));
        assert_eq!(split_key("fs"), (None, "fs"));
    }

    #[test]
    fn names_of_exactly_63_are_kept_and_longer_ones_hashed_to_63() {
        // "mcp-" + 29 + "-" + 29 = 63.
        let (p, s) = (label(29, 'p'), label(29, 's'));
        let exact = object_name(Some(&p), &s);
        assert_eq!((exact.len(), exact.clone()), (63, format!("mcp-{p}-{s}")));
        let s30 = label(30, 's');
        let long = object_name(Some(&p), &s30);
        assert_eq!(long.len(), 63, "{long}");
        assert!(long.starts_with(&format!("mcp-{p}-sss")), "{long}");
        let (prefix, hash) = long.rsplit_once('-').unwrap();
        assert_eq!(prefix.len(), 54);
        assert!(hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit()), "{long}");
        assert!(is_dns_label(&long));
        // Longest possible inputs.
        let max = object_name(Some(&label(63, 'a')), &label(63, 'b'));
        assert!(max.len() == 63 && is_dns_label(&max), "{max}");
    }

    #[test]
    fn long_names_sharing_a_prefix_stay_distinct() {
        let p = label(40, 'p');
        let a = object_name(Some(&p), &format!("{}-one", label(30, 's')));
        let b = object_name(Some(&p), &format!("{}-two", label(30, 's')));
        assert_eq!(a[..54], b[..54]);
        assert_ne!(a, b);
        // Same server, different projects, both shortened.
        assert_ne!(object_name(Some(&format!("{p}x")), &label(30, 's')), object_name(Some(&format!("{p}y")), &label(30, 's')));
        // A global and a project server of the same long name.
        assert_ne!(object_name(None, &label(63, 's')), object_name(Some("p"), &label(63, 's')));
    }

    #[test]
    fn a_cut_at_a_hyphen_does_not_leave_a_double_hyphen() {
        // Character 54 of the readable name (index 53) is '-': trimmed before the hash.
        let p = label(49, 'p');
        let name = object_name(Some(&p), &label(30, 's'));
        assert!(!name.contains("--") && is_dns_label(&name), "{name}");
        assert!(name.len() < 63);
    }

    #[test]
    fn ambiguous_names_are_reported_as_collisions() {
        let spec: ServerSpec = serde_json::from_value(json!({"image": "i"})).unwrap();
        let s =
            |project: Option<&str>, name: &str| ImageServer { project: project.map(String::from), name: name.into(), spec: spec.clone() };
        let servers = [
            s(Some("a-b"), "c"),
            s(Some("a"), "b-c"),
            s(None, "x-y"),
            s(Some("x"), "y"),
            s(Some("home"), "fs"),
            s(Some("work"), "fs"),
            s(None, "fs"),
        ];
        let c = name_collisions(&servers);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c["mcp-a-b-c"], ["a-b/c", "a/b-c"]);
        assert_eq!(c["mcp-x-y"], ["x-y", "x/y"]);
    }

    proptest! {
        #[test]
        fn every_name_is_a_dns_label_of_at_most_63(p in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", s in "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", global in any::<bool>()) {
            let project = (!global).then_some(p.as_str());
            let name = object_name(project, &s);
            prop_assert!(name.len() <= MAX_NAME);
            prop_assert!(is_dns_label(&name), "{}", name);
            let readable = project.map_or_else(|| format!("mcp-{s}"), |p| format!("mcp-{p}-{s}"));
            if readable.len() <= MAX_NAME {
                prop_assert_eq!(name, readable);
            } else {
                prop_assert!(name.starts_with(readable[..40].trim_end_matches('-')));
            }
        }
    }
}
