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
    let repo = doc(
        "Server",
        "fetch",
        None,
        "{image: ghcr.io/example/fetch:1.2, replicas: 2, args: [--verbose], env: [{name: MODE, value: fast}], resources: {cpu: 250m}}",
    ) + &doc("Server", "docs", None, "{image: ghcr.io/example/docs:3, transport: http}")
        + &doc("Server", "local", None, "{command: npx}");
    let desired = state(&repo);
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "mcp");
    let rt = KubeRuntime::new(client, "mcp");
    let sync = tokio::spawn(async move { rt.sync(&desired).await });

    let apply = "?&force=true&fieldManager=mcpctl";
    let ns = "/apis/apps/v1/namespaces/mcp/deployments";
    let (docs_d, docs_s) =
        manifests(None, "docs", &state(&repo).resolve(mcpctl_schema_kind(), "docs", None).map(server_spec).unwrap(), "mcp").unwrap();
    // Servers in key order: docs, then fetch. `local` is not an image server.
    expect(
        &mut handle,
        Method::PATCH,
        &format!("{ns}/mcp-docs{apply}"),
        Some(docs_d),
        json!({"metadata": {"name": "mcp-docs"}, "status": {"readyReplicas": 1}}),
    )
    .await;
    expect(
        &mut handle,
        Method::PATCH,
        &format!("/api/v1/namespaces/mcp/services/mcp-docs{apply}"),
        docs_s,
        json!({"metadata": {"name": "mcp-docs"}}),
    )
    .await;
    let fetch_body = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "mcp-fetch", "namespace": "mcp", "labels": global_labels("fetch")},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app.kubernetes.io/instance": "mcp-fetch"}},
            "template": {
                "metadata": {"labels": global_labels("fetch")},
                "spec": {"automountServiceAccountToken": false, "enableServiceLinks": false,
                    "containers": [{"name": "server", "image": "ghcr.io/example/fetch:1.2", "args": ["--verbose"], "env": [{"name": "MODE", "value": "fast"}], "resources": {"limits": {"cpu": "250m"}}, "stdin": true, "tty": false, "securityContext": {"allowPrivilegeEscalation": false}}]}
            }
        }
    });
    expect(
        &mut handle,
        Method::PATCH,
        &format!("{ns}/mcp-fetch{apply}"),
        Some(fetch_body),
        json!({"metadata": {"name": "mcp-fetch"}, "status": {}}),
    )
    .await;
    // Prune by label: a stale deployment and service go.
    let sel = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmcpctl";
    expect(&mut handle, Method::GET, &format!("{ns}?&{sel}"), None, list("DeploymentList", &["mcp-docs", "mcp-fetch", "mcp-old"])).await;
    expect(
        &mut handle,
        Method::DELETE,
        &format!("{ns}/mcp-old?"),
        None,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
    )
    .await;
    expect(
        &mut handle,
        Method::GET,
        &format!("/api/v1/namespaces/mcp/services?&{sel}"),
        None,
        list("ServiceList", &["mcp-docs", "mcp-old"]),
    )
    .await;
    expect(
        &mut handle,
        Method::DELETE,
        "/api/v1/namespaces/mcp/services/mcp-old?",
        None,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
    )
    .await;
    expect(&mut handle, Method::GET, &format!("/api/v1/namespaces/mcp/secrets?&{sel}"), None, list("SecretList", &["mcp-gone-env"])).await;
    expect(
        &mut handle,
        Method::DELETE,
        "/api/v1/namespaces/mcp/secrets/mcp-gone-env?",
        None,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
    )
    .await;

    let readiness = sync.await.unwrap().unwrap();
    let got: Vec<(String, i32, i32)> = readiness.into_iter().map(|r| (r.server, r.replicas, r.ready)).collect();
    assert_eq!(got, [("docs".to_string(), 1, 1), ("fetch".to_string(), 2, 0)]);
}

fn global_labels(server: &str) -> Value {
    json!({"app.kubernetes.io/managed-by": "mcpctl", "app.kubernetes.io/name": server, "app.kubernetes.io/instance": format!("mcp-{server}"), "mcpctl.dev/server": server})
}

fn project_labels(project: &str, server: &str) -> Value {
    json!({"app.kubernetes.io/managed-by": "mcpctl", "app.kubernetes.io/name": server, "app.kubernetes.io/instance": format!("mcp-{project}-{server}"),
        "mcpctl.dev/server": server, "mcpctl.dev/project": project})
}

/// An age identity made by `age-keygen` in `dir`, and `values` encrypted to it by the `age` CLI.
fn age_fixture(dir: &std::path::Path, values: &[&str]) -> (std::path::PathBuf, Vec<String>) {
    let identity = dir.join("id.txt");
    let out = std::process::Command::new("age-keygen").arg("-o").arg(&identity).output().expect("age-keygen (Debian package age)");
    assert!(out.status.success());
    let recipient = String::from_utf8_lossy(&out.stderr).split_whitespace().last().unwrap().to_string();
    let armored = values
        .iter()
        .map(|v| {
            let mut age = std::process::Command::new("age")
                .args(["-r", &recipient, "-a"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            age.stdin.take().unwrap().write_all(v.as_bytes()).unwrap();
            String::from_utf8(age.wait_with_output().unwrap().stdout).unwrap()
        })
        .collect();
    (identity, armored)
}

const OK_STATUS: fn() -> Value = || json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});

#[tokio::test]
async fn same_named_servers_in_two_projects_get_their_own_objects_labels_and_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, armored) = age_fixture(dir.path(), &["alpha-secret", "beta-secret", "global-secret"]);
    let server = "{image: ghcr.io/example/fs:1, transport: http, env: [{name: TOKEN, valueFrom: {secretRef: {name: keys, key: token}}}]}";
    let secret = |v: &str| format!("{{data: {{token: {v:?}}}}}");
    let repo = doc("Project", "alpha", None, "{servers: [fs]}")
        + &doc("Project", "beta", None, "{servers: [fs]}")
        + &doc("Server", "fs", Some("alpha"), server)
        + &doc("Server", "fs", Some("beta"), server)
        + &doc("Secret", "keys", Some("alpha"), &secret(&armored[0]))
        + &doc("Secret", "keys", Some("beta"), &secret(&armored[1]))
        // A global secret of the same name: a project's own secret wins over it.
        + &doc("Secret", "keys", None, &secret(&armored[2]));
    let desired = state(&repo);
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let rt = KubeRuntime::new(kube::Client::new(svc, "mcp"), "mcp")
        .with_secrets(mcpctl_reconciler::secrets::SecretResolver::from_file(&identity).unwrap());
    let sync = tokio::spawn(async move { rt.sync(&desired).await });

    let apply = "?&force=true&fieldManager=mcpctl";
    for (project, value) in [("alpha", "alpha-secret"), ("beta", "beta-secret")] {
        let obj = format!("mcp-{project}-fs");
        let labels = project_labels(project, "fs");
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("{obj}-env"), "namespace": "mcp", "labels": labels}, "type": "Opaque", "stringData": {"TOKEN": value}});
        expect(
            &mut handle,
            Method::PATCH,
            &format!("/api/v1/namespaces/mcp/secrets/{obj}-env{apply}"),
            Some(secret),
            json!({"metadata": {"name": format!("{obj}-env")}}),
        )
        .await;
        let (req, send) = handle.next_request().await.expect("the deployment");
        assert_eq!(req.uri().path_and_query().unwrap().as_str(), format!("/apis/apps/v1/namespaces/mcp/deployments/{obj}{apply}"));
        let d: Value = serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap()).unwrap();
        assert_eq!(d["metadata"]["labels"], labels);
        assert_eq!(d["spec"]["selector"], json!({"matchLabels": {"app.kubernetes.io/instance": obj}}));
        assert_eq!(d["spec"]["template"]["metadata"]["labels"], labels);
        assert_eq!(d["spec"]["template"]["spec"]["automountServiceAccountToken"], false, "no API token in a server's pod");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": format!("{obj}-env"), "key": "TOKEN"}}}])
        );
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&json!({"metadata": {"name": obj}, "status": {"readyReplicas": 1}})).unwrap()))
                .unwrap(),
        );
        let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": obj, "namespace": "mcp", "labels": labels},
            "spec": {"selector": {"app.kubernetes.io/instance": obj}, "ports": [{"name": "mcp", "port": 8080, "targetPort": 8080}]}});
        expect(
            &mut handle,
            Method::PATCH,
            &format!("/api/v1/namespaces/mcp/services/{obj}{apply}"),
            Some(service),
            json!({"metadata": {"name": obj}}),
        )
        .await;
    }
    // Objects an older mcpctl made under the shared name `mcp-fs` are pruned by label.
    let sel = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmcpctl";
    expect(
        &mut handle,
        Method::GET,
        &format!("/apis/apps/v1/namespaces/mcp/deployments?&{sel}"),
        None,
        list("DeploymentList", &["mcp-alpha-fs", "mcp-beta-fs", "mcp-fs"]),
    )
    .await;
    expect(&mut handle, Method::DELETE, "/apis/apps/v1/namespaces/mcp/deployments/mcp-fs?", None, OK_STATUS()).await;
    expect(
        &mut handle,
        Method::GET,
        &format!("/api/v1/namespaces/mcp/services?&{sel}"),
        None,
        list("ServiceList", &["mcp-alpha-fs", "mcp-beta-fs", "mcp-fs"]),
    )
    .await;
    expect(&mut handle, Method::DELETE, "/api/v1/namespaces/mcp/services/mcp-fs?", None, OK_STATUS()).await;
    expect(
        &mut handle,
        Method::GET,
        &format!("/api/v1/namespaces/mcp/secrets?&{sel}"),
        None,
        list("SecretList", &["mcp-alpha-fs-env", "mcp-beta-fs-env", "mcp-fs-env"]),
    )
    .await;
    // Already gone (404) is fine.
    let (req, send) = handle.next_request().await.expect("delete mcp-fs-env");
    assert_eq!((req.method(), req.uri().path()), (&Method::DELETE, "/api/v1/namespaces/mcp/secrets/mcp-fs-env"));
    send.send_response(
        Response::builder()
            .status(404)
            .body(Body::from(
                serde_json::to_vec(
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "NotFound", "code": 404}),
                )
                .unwrap(),
            ))
            .unwrap(),
    );

    let readiness = sync.await.unwrap().unwrap();
    let got: Vec<(String, String, i32)> = readiness.into_iter().map(|r| (r.server, r.object, r.ready)).collect();
    assert_eq!(got, [("alpha/fs".to_string(), "mcp-alpha-fs".to_string(), 1), ("beta/fs".to_string(), "mcp-beta-fs".to_string(), 1)]);
}

#[test]
fn a_secret_of_another_project_is_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, armored) = age_fixture(dir.path(), &["alpha-only"]);
    let repo = doc("Project", "alpha", None, "{}")
        + &doc("Project", "beta", None, "{}")
        + &doc("Secret", "keys", Some("alpha"), &format!("{{data: {{token: {:?}}}}}", armored[0]));
    let desired = state(&repo);
    let resolver = mcpctl_reconciler::secrets::SecretResolver::from_file(&identity).unwrap();
    let r: schema::spec::SecretKeyRef = serde_json::from_value(json!({"name": "keys", "key": "token"})).unwrap();
    assert_eq!(resolver.resolve(&desired, Some("alpha"), &r).unwrap(), "alpha-only");
    for project in [Some("beta"), None] {
        let e = resolver.resolve(&desired, project, &r).unwrap_err();
        assert!(matches!(e, mcpctl_reconciler::secrets::SecretError::NotFound(_)), "{project:?}: {e}");
    }
}

#[tokio::test]
async fn colliding_object_names_are_refused_and_their_objects_pruned() {
    // Global `a-b` and project a's `b` would both be `mcp-a-b`.
    let repo = doc("Project", "a", None, "{servers: [b]}")
        + &doc("Server", "a-b", None, "{image: i:1, transport: http}")
        + &doc("Server", "b", Some("a"), "{image: i:2, transport: http}");
    let desired = state(&repo);
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let rt = KubeRuntime::new(kube::Client::new(svc, "mcp"), "mcp");
    let sync = tokio::spawn(async move { rt.sync(&desired).await });
    let sel = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmcpctl";
    // Nothing is applied; the object one of them had is deleted.
    expect(
        &mut handle,
        Method::GET,
        &format!("/apis/apps/v1/namespaces/mcp/deployments?&{sel}"),
        None,
        list("DeploymentList", &["mcp-a-b"]),
    )
    .await;
    expect(&mut handle, Method::DELETE, "/apis/apps/v1/namespaces/mcp/deployments/mcp-a-b?", None, OK_STATUS()).await;
    expect(&mut handle, Method::GET, &format!("/api/v1/namespaces/mcp/services?&{sel}"), None, list("ServiceList", &["mcp-a-b"])).await;
    expect(&mut handle, Method::DELETE, "/api/v1/namespaces/mcp/services/mcp-a-b?", None, OK_STATUS()).await;
    expect(&mut handle, Method::GET, &format!("/api/v1/namespaces/mcp/secrets?&{sel}"), None, list("SecretList", &[])).await;
    let readiness = sync.await.unwrap().unwrap();
    assert_eq!(readiness.len(), 2);
    for r in &readiness {
        let e = r.error.as_deref().unwrap_or_default();
        assert!(e.contains("`mcp-a-b` is shared by servers a-b, a/b"), "{r:?}");
    }
}

#[tokio::test]
async fn a_deployment_with_the_old_selector_is_recreated() {
    let repo = doc("Server", "docs", None, "{image: ghcr.io/example/docs:3, transport: http}");
    let desired = state(&repo);
    let (d, _) = manifests(None, "docs", &server_spec(desired.resolve(schema::Kind::Server, "docs", None).unwrap()), "mcp").unwrap();
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let rt = KubeRuntime::new(kube::Client::new(svc, "mcp"), "mcp");
    let sync = tokio::spawn(async move { rt.sync(&desired).await });
    let apply = "?&force=true&fieldManager=mcpctl";
    let path = "/apis/apps/v1/namespaces/mcp/deployments/mcp-docs";
    let (req, send) = handle.next_request().await.expect("apply");
    assert_eq!(req.uri().path_and_query().unwrap().as_str(), format!("{path}{apply}"));
    let invalid = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Invalid", "code": 422,
        "message": "Deployment.apps mcp-docs is invalid: spec.selector: Invalid value: field is immutable"});
    send.send_response(Response::builder().status(422).body(Body::from(serde_json::to_vec(&invalid).unwrap())).unwrap());
    let old = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mcp-docs"}, "spec": {"selector": {"matchLabels": {"mcpctl.io/server": "docs"}}, "template": {}}});
    expect(&mut handle, Method::GET, path, None, old).await;
    expect(&mut handle, Method::DELETE, &format!("{path}?"), None, OK_STATUS()).await;
    expect(
        &mut handle,
        Method::PATCH,
        &format!("{path}{apply}"),
        Some(d),
        json!({"metadata": {"name": "mcp-docs"}, "status": {"readyReplicas": 1}}),
    )
    .await;
    let (req, send) = handle.next_request().await.expect("service");
    assert_eq!(req.uri().path(), "/api/v1/namespaces/mcp/services/mcp-docs");
    send.send_response(
        Response::builder().body(Body::from(serde_json::to_vec(&json!({"metadata": {"name": "mcp-docs"}})).unwrap())).unwrap(),
    );
    let sel = "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dmcpctl";
    expect(
        &mut handle,
        Method::GET,
        &format!("/apis/apps/v1/namespaces/mcp/deployments?&{sel}"),
        None,
        list("DeploymentList", &["mcp-docs"]),
    )
    .await;
    expect(&mut handle, Method::GET, &format!("/api/v1/namespaces/mcp/services?&{sel}"), None, list("ServiceList", &["mcp-docs"])).await;
    expect(&mut handle, Method::GET, &format!("/api/v1/namespaces/mcp/secrets?&{sel}"), None, list("SecretList", &[])).await;
    let readiness = sync.await.unwrap().unwrap();
    assert_eq!(readiness[0].ready, 1);
}

#[test]
fn env_secret_manifest_holds_the_values_under_managed_labels() {
    let s = mcpctl_reconciler::runtime::kubernetes::env_secret(Some("home"), "docs", "mcp", &[("KEY".into(), "v".into())]).unwrap();
    assert_eq!(s["metadata"]["name"], "mcp-home-docs-env");
    assert_eq!(s["metadata"]["labels"], project_labels("home", "docs"));
    assert_eq!(s["stringData"], json!({"KEY": "v"}));
    assert!(mcpctl_reconciler::runtime::kubernetes::env_secret(Some("home"), "docs", "mcp", &[]).is_none());
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
    let desired = state(
        &(doc(
            "Server",
            "docs",
            None,
            "{image: ghcr.io/example/docs:3, transport: http, env: [{name: KEY, valueFrom: {secretRef: {name: s, key: k}}}]}",
        ) + &doc("Secret", "s", None, "{data: {k: \"-----BEGIN AGE ENCRYPTED FILE-----\\nYQ\\n-----END AGE ENCRYPTED FILE-----\"}}")),
    );
    let spec = server_spec(desired.resolve(schema::Kind::Server, "docs", None).unwrap());
    let (d, s) = manifests(None, "docs", &spec, "mcp").unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "mcp-docs-env", "key": "KEY"}}}])
    );
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["ports"], json!([{"name": "mcp", "containerPort": 8080}]));
    assert_eq!(
        s.unwrap()["spec"],
        json!({"selector": {"app.kubernetes.io/instance": "mcp-docs"}, "ports": [{"name": "mcp", "port": 8080, "targetPort": 8080}]})
    );
}

#[tokio::test]
async fn api_errors_are_reported_without_url_credentials() {
    let desired = state(&doc("Server", "docs", None, "{image: i:1, transport: http}"));
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let mut rt = mcpctl_reconciler::runtime::Runtime::Kubernetes(KubeRuntime::new(kube::Client::new(svc, "mcp"), "mcp"));
    let sync = tokio::spawn(async move { rt.sync(&desired).await });
    let (_, send) = handle.next_request().await.expect("apply");
    let failure = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "InternalError", "code": 500,
        "message": "calling webhook https://admin:hunter2@policy.internal:9443/validate?token=abc123: connection refused"});
    send.send_response(Response::builder().status(500).body(Body::from(serde_json::to_vec(&failure).unwrap())).unwrap());
    let statuses = sync.await.unwrap();
    let shown = serde_json::to_string(&statuses).unwrap();
    assert!(shown.contains("webhook https://policy.internal:9443/validate: connection refused"), "{shown}");
    assert!(!shown.contains("hunter2") && !shown.contains("abc123") && !shown.contains("admin"), "{shown}");
}

fn pod(name: &str, phase: &str, started: &str, deleting: bool) -> Value {
    let mut meta = json!({"name": name});
    if deleting {
        meta["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    }
    json!({"metadata": meta, "status": {"phase": phase, "startTime": started}})
}

/// The gateway attaches to a stdio image server's newest running pod: the exact pod lookup, then
/// the exact attach request (container, stdin/stdout only, WebSocket upgrade headers). The mock
/// cannot carry the upgraded connection itself (a `tower_test` response has no hyper upgrade), so
/// past a valid `101` the attach ends in kube's "pending upgrade" error; the stream is exercised
/// end to end against a fake API server in the gateway's tests.
#[tokio::test]
async fn stdio_image_servers_are_attached_to_their_newest_running_pod() {
    use mcpctl_reconciler::runtime::kubernetes::{Attacher, KubeError};
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let attacher = Attacher::with_client(kube::Client::new(svc, "mcp"), "mcp");
    let task = tokio::spawn(async move { attacher.attach("home/fs").await.map(|a| a.pod) });

    let pods = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
        pod("mcp-home-fs-old", "Running", "2026-01-01T00:00:00Z", false),
        pod("mcp-home-fs-new", "Running", "2026-01-02T00:00:00Z", false),
        pod("mcp-home-fs-going", "Running", "2026-01-03T00:00:00Z", true),
        pod("mcp-home-fs-pending", "Pending", "2026-01-04T00:00:00Z", false),
    ]});
    expect(&mut handle, Method::GET, "/api/v1/namespaces/mcp/pods?&labelSelector=app.kubernetes.io%2Finstance%3Dmcp-home-fs", None, pods)
        .await;

    let (req, send) = handle.next_request().await.expect("the attach request");
    assert_eq!(req.method(), Method::GET);
    assert_eq!(req.uri().path(), "/api/v1/namespaces/mcp/pods/mcp-home-fs-new/attach");
    let mut query: Vec<&str> = req.uri().query().unwrap().split('&').filter(|q| !q.is_empty()).collect();
    query.sort_unstable();
    assert_eq!(query, ["container=server", "stdin=true", "stdout=true"], "no stderr, no tty");
    let h = req.headers();
    assert_eq!(h["connection"], "Upgrade");
    assert_eq!(h["upgrade"], "websocket");
    assert_eq!(h["sec-websocket-version"], "13");
    let protocols = h["sec-websocket-protocol"].to_str().unwrap().to_string();
    assert!(protocols.contains("v4.channel.k8s.io"), "{protocols}");
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(h["sec-websocket-key"].as_bytes());
    send.send_response(
        Response::builder()
            .status(101)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", accept)
            .header("sec-websocket-protocol", "v4.channel.k8s.io")
            .body(Body::empty())
            .unwrap(),
    );
    let err = task.await.unwrap().expect_err("no upgraded connection through the mock");
    assert!(
        matches!(&err, KubeError::Api(kube::Error::UpgradeConnection(kube::client::UpgradeConnectionError::GetPendingUpgrade(_)))),
        "{err:?}"
    );
}

#[tokio::test]
async fn attaching_without_a_running_pod_names_the_object() {
    use mcpctl_reconciler::runtime::kubernetes::Attacher;
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let attacher = Attacher::with_client(kube::Client::new(svc, "mcp"), "mcp");
    let task = tokio::spawn(async move { attacher.attach("fs").await.map(|a| a.pod) });
    let pods = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [pod("mcp-fs-x", "Pending", "2026-01-01T00:00:00Z", false)]});
    expect(&mut handle, Method::GET, "/api/v1/namespaces/mcp/pods?&labelSelector=app.kubernetes.io%2Finstance%3Dmcp-fs", None, pods).await;
    let err = task.await.unwrap().err().unwrap().to_string();
    assert_eq!(err, "no running pod of `mcp-fs` in namespace `mcp` (yet)");
}
