//! The Kubernetes runtime against kube's mock service (no API server can run here): an "API
//! server verifier" asserts the exact method, path, query and body of every request.

use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{json, Value};

use crate::common::{doc, state};
use mcpctl_reconciler::runtime::kubernetes::{manifests, KubeRuntime};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

async fn expect(handle: &mut Handle, method: Method, path_and_query: &str, body: Option<Value>, reply: Value) {
    let (req, send) = handle.next_request().await.expect("a request");
    assert_eq!(req.method(), method, "{path_and_query}");
    assert_eq!(req.uri().path_and_query().unwrap().as_str(), path_and_query);
    let bytes = req.into_body().collect_bytes().await.unwrap();
    if let Some(want) = body {
        let got: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(got, want, "body of {method} {path_and_query}");
    }
    send.send_response(Response::builder().body(Body::from(serde_json::to_vec(&reply).unwrap())).unwrap());
}

fn list(kind: &str, names: &[&str]) -> Value {
    json!({"apiVersion": if kind == "DeploymentList" { "apps/v1" } else { "v1" }, "kind": kind, "metadata": {},
        "items": names.iter().map(|n| json!({"metadata": {"name": n}})).collect::<Vec<_>>()})
}

#[tokio::test]
async fn image_servers_are_applied_server_side_and_stale_ones_pruned() {
    let repo = doc("Server", "fetch", None, "{image: ghcr.io/example/fetch:1.2, replicas: 2, args: [--verbose], env: [{name: MODE, value: fast}], resources: {cpu: 250m}}")
        + &doc("Server", "docs", None, "{image: ghcr.io/example/docs:3, transport: http}")
        + &doc("Server", "local", None, "{command: npx}");
    let desired = state(&repo);
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "mcp");
    let rt = KubeRuntime::new(client, "mcp");
    let sync = tokio::spawn(async move { rt.sync(&desired).await });

    let apply = "?&force=true&fieldManager=mcpctl";
    let ns = "/apis/apps/v1/namespaces/mcp/deployments";
    let (docs_d, docs_s) = manifests("docs", &state(&repo).resolve(mcpctl_schema_kind(), "docs", None).map(server_spec).unwrap(), "mcp").unwrap();
    // Servers in key order: docs, then fetch. `local` is not an image server.
    expect(&mut handle, Method::PATCH, &format!("{ns}/mcp-docs{apply}"), Some(docs_d), json!({"metadata": {"name": "mcp-docs"}, "status": {"readyReplicas": 1}})).await;
    expect(&mut handle, Method::PATCH, &format!("/api/v1/namespaces/mcp/services/mcp-docs{apply}"), docs_s, json!({"metadata": {"name": "mcp-docs"}})).await;
    let fetch_body = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "mcp-fetch", "namespace": "mcp", "labels": {"app.kubernetes.io/managed-by": "mcpctl", "app.kubernetes.io/name": "mcp-fetch", "mcpctl.io/server": "fetch"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"mcpctl.io/server": "fetch"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/managed-by": "mcpctl", "app.kubernetes.io/name": "mcp-fetch", "mcpctl.io/server": "fetch"}},
                "spec": {"containers": [{"name": "server", "image": "ghcr.io/example/fetch:1.2", "args": ["--verbose"], "env": [{"name": "MODE", "value": "fast"}], "resources": {"limits": {"cpu": "250m"}}, "stdin": true, "tty": false}]}
            }
        }
    });
    expect(&mut handle, Method::PATCH, &format!("{ns}/mcp-fetch{apply}"), Some(fetch_body), json!({"metadata": {"name": "mcp-fetch"}, "status": {}})).await;
    // Prune by label: a stale deployment and service go.
    let sel = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmcpctl";
    expect(&mut handle, Method::GET, &format!("{ns}?&{sel}"), None, list("DeploymentList", &["mcp-docs", "mcp-fetch", "mcp-old"])).await;
    expect(&mut handle, Method::DELETE, &format!("{ns}/mcp-old?"), None, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})).await;
    expect(&mut handle, Method::GET, &format!("/api/v1/namespaces/mcp/services?&{sel}"), None, list("ServiceList", &["mcp-docs", "mcp-old"])).await;
    expect(&mut handle, Method::DELETE, "/api/v1/namespaces/mcp/services/mcp-old?", None, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})).await;
    expect(&mut handle, Method::GET, &format!("/api/v1/namespaces/mcp/secrets?&{sel}"), None, list("SecretList", &["mcp-gone-env"])).await;
    expect(&mut handle, Method::DELETE, "/api/v1/namespaces/mcp/secrets/mcp-gone-env?", None, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})).await;

    let readiness = sync.await.unwrap().unwrap();
    let got: Vec<(String, i32, i32)> = readiness.into_iter().map(|r| (r.server, r.replicas, r.ready)).collect();
    assert_eq!(got, [("docs".to_string(), 1, 1), ("fetch".to_string(), 2, 0)]);
}

#[test]
fn env_secret_manifest_holds_the_values_under_managed_labels() {
    let s = mcpctl_reconciler::runtime::kubernetes::env_secret("docs", "mcp", &[("KEY".into(), "v".into())]).unwrap();
    assert_eq!(s["metadata"]["name"], "mcp-docs-env");
    assert_eq!(s["metadata"]["labels"]["app.kubernetes.io/managed-by"], "mcpctl");
    assert_eq!(s["stringData"], json!({"KEY": "v"}));
    assert!(mcpctl_reconciler::runtime::kubernetes::env_secret("docs", "mcp", &[]).is_none());
}

fn mcpctl_schema_kind() -> schema::Kind {
    schema::Kind::Server
}

fn server_spec(r: &schema::Resource) -> schema::spec::ServerSpec {
    match &r.spec {
        schema::Spec::Server(s) => s.clone(),
        _ => unreachable!(),
    }
}

#[test]
fn manifests_snapshot_for_an_http_server() {
    let desired = state(&(doc("Server", "docs", None, "{image: ghcr.io/example/docs:3, transport: http, env: [{name: KEY, valueFrom: {secretRef: {name: s, key: k}}}]}")
        + &doc("Secret", "s", None, "{data: {k: \"-----BEGIN AGE ENCRYPTED FILE-----\\nYQ\\n-----END AGE ENCRYPTED FILE-----\"}}")));
    let spec = server_spec(desired.resolve(schema::Kind::Server, "docs", None).unwrap());
    let (d, s) = manifests("docs", &spec, "mcp").unwrap();
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["env"], json!([{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "mcp-docs-env", "key": "KEY"}}}]));
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["ports"], json!([{"name": "mcp", "containerPort": 8080}]));
    assert_eq!(s.unwrap()["spec"], json!({"selector": {"mcpctl.io/server": "docs"}, "ports": [{"name": "mcp", "port": 8080, "targetPort": 8080}]}));
}
