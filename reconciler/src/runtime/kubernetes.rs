//! The Kubernetes runtime: each `image` server becomes a Deployment (and, for `http`/`sse`
//! servers, a Service on port 8080) in one namespace, applied server-side with field manager
//! `mcpctl` and labelled `app.kubernetes.io/managed-by=mcpctl`, `mcpctl.io/server=<name>`.
//! Servers no longer desired are pruned by that label. Readiness is read back from the
//! Deployment status.
//!
//! Env from secrets goes through a Kubernetes Secret `mcp-<server>-env` (one key per variable),
//! applied first with the values decrypted in memory; the Deployment references it.
//!
//! # Caveats
//! Stdio images are reached through the pod attach API by the gateway (issue 4), so they get no
//! Service.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde::Serialize;
use serde_json::{json, Value};

use schema::spec::{ServerSpec, Transport};
use schema::{DesiredState, Kind};

/// The field manager of every apply.
pub const FIELD_MANAGER: &str = "mcpctl";
/// Selects everything mcpctl manages.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=mcpctl";
/// Port an `http`/`sse` image is expected to serve MCP on.
pub const HTTP_PORT: u16 = 8080;

/// Error talking to the API server.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error("server {server}: {source}")]
    Secret { server: String, #[source] source: crate::secrets::SecretError },
}

/// Readiness of one server's Deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Readiness {
    pub server: String,
    pub replicas: i32,
    pub ready: i32,
}

/// Kubernetes object name of a server.
pub fn object_name(server: &str) -> String {
    format!("mcp-{server}")
}

/// The in-cluster URL of an HTTP image server's MCP endpoint (its Service, path `/mcp`).
pub fn service_url(server: &str, namespace: &str) -> String {
    format!("http://{}.{namespace}.svc:{HTTP_PORT}/mcp", object_name(server))
}

fn labels(server: &str) -> Value {
    json!({"app.kubernetes.io/managed-by": "mcpctl", "app.kubernetes.io/name": object_name(server), "mcpctl.io/server": server})
}

/// The Deployment (and Service, for HTTP servers) of one image server. Pure.
pub fn manifests(name: &str, spec: &ServerSpec, namespace: &str) -> Option<(Value, Option<Value>)> {
    let image = spec.image.as_ref()?;
    let env: Vec<Value> = spec
        .env
        .iter()
        .map(|e| match (&e.value, &e.value_from) {
            (Some(v), _) => json!({"name": e.name, "value": v}),
            _ => json!({"name": e.name, "valueFrom": {"secretKeyRef": {"name": format!("{}-env", object_name(name)), "key": e.name}}}),
        })
        .collect();
    let http = spec.effective_transport() != Transport::Stdio;
    let mut container = json!({"name": "server", "image": image});
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
    let obj = object_name(name);
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": obj, "namespace": namespace, "labels": labels(name)},
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": {"mcpctl.io/server": name}},
            "template": {"metadata": {"labels": labels(name)}, "spec": {"containers": [container]}},
        }
    });
    let service = http.then(|| {
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": obj, "namespace": namespace, "labels": labels(name)},
            "spec": {"selector": {"mcpctl.io/server": name}, "ports": [{"name": "mcp", "port": HTTP_PORT, "targetPort": HTTP_PORT}]}
        })
    });
    Some((deployment, service))
}

/// Image servers of a desired state with their effective specs, by name.
pub fn image_servers(state: &DesiredState) -> Vec<(String, ServerSpec)> {
    state
        .of_kind(Kind::Server)
        .filter_map(|r| {
            let spec = state.server_spec(r)?;
            spec.image.is_some().then(|| (r.name().to_string(), spec))
        })
        .collect()
}

/// The Secret holding a server's env values from secrets (`None` when it has none). Pure.
pub fn env_secret(name: &str, namespace: &str, values: &[(String, String)]) -> Option<Value> {
    if values.is_empty() {
        return None;
    }
    let data: serde_json::Map<String, Value> = values.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    Some(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": format!("{}-env", object_name(name)), "namespace": namespace, "labels": labels(name)},
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
        for (name, spec) in image_servers(state) {
            let Some((d, s)) = manifests(&name, &spec, &self.namespace) else { continue };
            let obj = object_name(&name);
            let mut values = Vec::new();
            for e in &spec.env {
                if let Some(vf) = &e.value_from {
                    let v = self.secrets.resolve(state, None, &vf.secret_ref).map_err(|source| KubeError::Secret { server: name.clone(), source })?;
                    values.push((e.name.clone(), v));
                }
            }
            if let Some(secret) = env_secret(&name, &self.namespace, &values) {
                let sname = format!("{obj}-env");
                secrets.patch(&sname, &pp, &Patch::Apply(&secret)).await?;
                wanted_secrets.insert(sname);
            }
            let applied = deployments.patch(&obj, &pp, &Patch::Apply(&d)).await?;
            if let Some(s) = s {
                services.patch(&obj, &pp, &Patch::Apply(&s)).await?;
                wanted_services.insert(obj.clone());
            }
            let status = applied.status.unwrap_or_default();
            readiness.push(Readiness { server: name, replicas: spec.replicas as i32, ready: status.ready_replicas.unwrap_or(0) });
            wanted.insert(obj);
        }
        let lp = ListParams::default().labels(MANAGED_SELECTOR);
        for d in deployments.list(&lp).await?.items {
            let n = d.metadata.name.unwrap_or_default();
            if !wanted.contains(&n) {
                deployments.delete(&n, &DeleteParams::default()).await?;
            }
        }
        for s in services.list(&lp).await?.items {
            let n = s.metadata.name.unwrap_or_default();
            if !wanted_services.contains(&n) {
                services.delete(&n, &DeleteParams::default()).await?;
            }
        }
        for s in secrets.list(&lp).await?.items {
            let n = s.metadata.name.unwrap_or_default();
            if !wanted_secrets.contains(&n) {
                secrets.delete(&n, &DeleteParams::default()).await?;
            }
        }
        Ok(readiness)
    }
}
