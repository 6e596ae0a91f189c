//! The gateway over real HTTP (reqwest → axum on 127.0.0.1) against a real SQLite store holding
//! examples/homelab; MCP end to end with real peers in `integration/mcp.rs`; the web UI in a real
//! headless Chromium in `integration/ui.rs`.

#[path = "integration/access.rs"]
mod access;
#[path = "integration/audit_stream.rs"]
mod audit_stream;
#[path = "integration/chat.rs"]
mod chat;
#[path = "integration/crossing.rs"]
mod crossing;
#[path = "integration/front.rs"]
mod front;
#[path = "integration/fuzz_replay.rs"]
mod fuzz_replay;
#[path = "integration/gate.rs"]
mod gate;
#[path = "integration/harness.rs"]
mod harness;
#[path = "integration/health.rs"]
mod health;
#[path = "common/litellm.rs"]
mod litellm;
#[path = "integration/mcp.rs"]
mod mcp;
#[path = "integration/surface.rs"]
mod surface;
#[path = "integration/transports.rs"]
mod transports;
#[path = "integration/ui.rs"]
mod ui;
#[path = "common/webdriver.rs"]
mod webdriver;

use std::path::Path;

use mcpctl_gateway::AppState;
use reconciler::{plan, DeployMeta, Store};

const DEMO_TOKEN: &str = "mcpctl_pat_demo_homelab_0123456789abcdef";

/// examples/homelab applied to a fresh SQLite store and served on 127.0.0.1 until `stop` fires.
struct Homelab {
    _dir: tempfile::TempDir,
    store: Store,
    /// The example's folder (tests re-apply it with edits).
    homelab: std::path::PathBuf,
    state: std::sync::Arc<AppState>,
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Homelab {
    async fn serve() -> Homelab {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&reconciler::store::sqlite_url(&dir.path().join("s.db"))).await.unwrap();
        let homelab = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/homelab");
        apply_dir(&store, &homelab, |_| {}).await;
        let state = AppState::new(store.clone());
        state.reload().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(mcpctl_gateway::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Homelab { _dir: dir, store, homelab, state, base, stop, server }
    }
}

async fn apply_dir(store: &Store, dir: &Path, edit: impl Fn(&mut Vec<schema::SourceFile>)) {
    let mut files = reconciler::read_dir(dir).unwrap();
    edit(&mut files);
    let desired = schema::check(&files).unwrap();
    let p = plan(&desired, &store.resources().await.unwrap(), "rev");
    store.apply(&p, &DeployMeta { revision: "rev".into(), actor: "test".into(), message: None, commit: None }, &|_, _| {}).await.unwrap();
}

#[tokio::test]
async fn rest_api_authenticates_authorizes_and_redacts() {
    let Homelab { _dir, store, homelab, state, base, stop, server } = Homelab::serve().await;
    let http = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut rq = http.get(format!("{base}{path}"));
        if let Some(t) = token {
            rq = rq.bearer_auth(t);
        }
        rq.send()
    };

    assert_eq!(get("/healthz", None).await.unwrap().status(), 200);
    assert_eq!(get("/readyz", None).await.unwrap().status(), 200);
    let r = get("/api/v1/servers", None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    assert_eq!(get("/api/v1/servers", Some("mcpctl_pat_wrong")).await.unwrap().status(), 401);

    let servers: serde_json::Value = get("/api/v1/servers", Some(DEMO_TOKEN)).await.unwrap().json().await.unwrap();
    let names: Vec<&str> = servers["items"].as_array().unwrap().iter().map(|s| s["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["docs", "everything", "fetch", "search", "time"]);
    let secret = get("/api/v1/secrets/api-keys", Some(DEMO_TOKEN)).await.unwrap().text().await.unwrap();
    assert!(secret.contains("(redacted)") && !secret.contains("BEGIN AGE"), "{secret}");
    assert_eq!(get("/api/v1/agents/assistant", Some(DEMO_TOKEN)).await.unwrap().status(), 200);
    assert_eq!(get("/api/v1/nonsense", Some(DEMO_TOKEN)).await.unwrap().status(), 404);
    assert_eq!(get("/api/v1/deploys", Some(DEMO_TOKEN)).await.unwrap().status(), 403, "no audit action granted");
    let status: serde_json::Value = get("/api/v1/status", Some(DEMO_TOKEN)).await.unwrap().json().await.unwrap();
    assert_eq!(status["deployed"], "rev");

    // Revoked in git → applied → refused once the new snapshot is loaded (as each deploy does).
    apply_dir(&store, &homelab, |files| {
        let f = files.iter_mut().find(|f| f.path == "access/tokens.yaml").unwrap();
        let text =
            String::from_utf8(f.bytes.to_vec()).unwrap().replace("  prefix: mcpctl_pat_demo", "  prefix: mcpctl_pat_demo\n  revoked: true");
        f.bytes = text.into_bytes().into();
    })
    .await;
    assert_eq!(get("/api/v1/servers", Some(DEMO_TOKEN)).await.unwrap().status(), 200, "the deployed snapshot is still in force");
    let mut reloads = state.reloads();
    assert!(!reloads.has_changed().unwrap(), "no swap yet");
    state.reload().await.unwrap();
    assert!(reloads.has_changed().unwrap(), "a swap wakes what follows deploys (a standalone gateway's secret fetch)");
    reloads.mark_unchanged();
    assert_eq!(get("/api/v1/servers", Some(DEMO_TOKEN)).await.unwrap().status(), 401);

    // The OpenAPI document describes every route, unauthenticated.
    let doc: serde_json::Value = get("/api/openapi.json", None).await.unwrap().json().await.unwrap();
    for path in [
        "/projects/{project}/mcp",
        "/api/v1/{kind}",
        "/api/v1/auditevents",
        "/api/v1/projects/{project}/tools",
        "/api/v1/hooks/git",
        "/.well-known/oauth-protected-resource/projects/{project}/mcp",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(get("/api/v1/auditevents", Some(DEMO_TOKEN)).await.unwrap().status(), 401, "revoked by now");

    let metrics = get("/metrics", None).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("mcpctl_http_requests_total{route=\"/api/v1/{kind}\",status=\"401\"}"), "{metrics}");
    assert!(metrics.contains("mcpctl_deployed_info{revision=\"rev\",outcome=\"applied\"} 1"), "{metrics}");
    assert!(metrics.contains("mcpctl_drift 0"), "{metrics}");

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
