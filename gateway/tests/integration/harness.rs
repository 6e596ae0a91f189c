//! A gateway on 127.0.0.1 over a real SQLite store, with the local runtime supervising real
//! stdio MCP servers, plus helpers for the real peers (`.ci/peers.sh` exports their paths).

// Sampling, roots and logging are deprecated by SEP-2577 but part of the 2025 revisions.
#![allow(deprecated)]

use std::sync::Arc;
use std::time::Duration;

use mcpctl_gateway::{AppState, McpSettings, Options, Reach};
use reconciler::runtime::LocalRuntime;
use reconciler::{plan, DeployMeta, Store};
use schema::DesiredState;
use sha2::Digest;

/// A running gateway.
pub struct Gw {
    pub base: String,
    pub state: Arc<AppState>,
    pub store: Store,
    pub runtime: LocalRuntime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Path of a peer program from the environment. Outside CI a missing peer skips the test (with a
/// message); in CI (`CI` set) it fails it: CI must exercise the real peers.
pub fn peer(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("CI").is_some() => panic!("{var} is not set: CI must run the real MCP peers (source .ci/peers.sh)"),
        _ => {
            eprintln!("SKIPPED: {var} is not set (run `source .ci/peers.sh` to install the real MCP peers)");
            None
        }
    }
}

/// `sha256:<hex>` of a raw token, as McpToken.spec.hash holds it.
pub fn token_hash(raw: &str) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(raw.as_bytes())))
}

/// An McpToken document for `project` with these bindings (YAML flow list items).
pub fn token_doc(name: &str, project: &str, raw: &str, extra: &str) -> String {
    format!(
        "apiVersion: mcpctl.io/v1\nkind: McpToken\nmetadata: {{name: {name}, project: {project}}}\nspec:\n  hash: \"{}\"\n  prefix: mcpctl_pat_t\n{extra}---\n",
        token_hash(raw)
    )
}

pub fn desired(yaml: &str) -> DesiredState {
    let files = vec![schema::SourceFile::new("all.yaml", yaml)];
    match schema::check(&files) {
        Ok(d) => d,
        Err(e) => panic!("test YAML is invalid:\n{}", e.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")),
    }
}

impl Gw {
    pub async fn start(yaml: &str, mcp: McpSettings) -> Gw {
        Self::start_with(yaml, Options { mcp, ..Default::default() }).await
    }

    /// [`Gw::start`] with every gateway option (the local runtime's reach is always set).
    pub async fn start_with(yaml: &str, options: Options) -> Gw {
        Self::start_reaching(yaml, Options { reach: Reach { local_stdio: true, kube_namespace: None, attacher: None }, ..options }).await
    }

    /// [`Gw::start_with`] reaching servers exactly as `options.reach` says (e.g. a Kubernetes
    /// namespace and attacher).
    pub async fn start_reaching(yaml: &str, options: Options) -> Gw {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&reconciler::store::sqlite_url(&dir.path().join("s.db"))).await.unwrap();
        let state = AppState::with_options(store.clone(), options);
        let runtime = LocalRuntime::new(dir.path().join("logs")).with_attach(state.attach());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(mcpctl_gateway::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        let mut gw = Gw { base, state, store, runtime, stop: Some(stop), server: Some(server), _dir: dir };
        gw.deploy(yaml, "rev-1").await;
        gw
    }

    /// Apply `yaml` as revision `rev`, sync the runtime, reload the gateway (as a reconcile does).
    pub async fn deploy(&mut self, yaml: &str, rev: &str) {
        let d = desired(yaml);
        let p = plan(&d, &self.store.resources().await.unwrap(), rev);
        self.store
            .apply(&p, &DeployMeta { revision: rev.into(), actor: "test".into(), message: None, commit: None }, &|_, _| {})
            .await
            .unwrap();
        self.state.reload().await.unwrap();
        self.runtime.sync(&d).await;
    }

    pub fn url(&self, project: &str) -> String {
        format!("{}/projects/{project}/mcp", self.base)
    }

    /// Stop serving (without stopping the runtime first); whether `serve` returned within `limit`.
    pub async fn stop_serving_within(&mut self, limit: Duration) -> bool {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.server.take() {
            Some(s) => matches!(tokio::time::timeout(limit, s).await, Ok(Ok(Ok(())))),
            None => true,
        }
    }

    pub async fn stop(mut self) {
        self.runtime.shutdown().await;
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(s) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), s).await;
        }
    }
}

/// Run the official Python SDK client (tests/fixtures/mcp_client.py); returns its JSON answer
/// and whether it exited 0.
pub async fn python_client(python: &str, args: &[&str]) -> (serde_json::Value, bool) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mcp_client.py");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(python).arg(&script).args(args).kill_on_drop(true).output(),
    )
    .await
    .expect("python client timed out")
    .expect("python client runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("python client printed no JSON ({e}):\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    (v, out.status.success())
}

/// A raw MCP POST (for protocol-level checks the SDKs would not send).
pub async fn post(url: &str, token: Option<&str>, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) -> reqwest::Response {
    let mut rq = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    for (k, v) in headers {
        rq = rq.header(*k, *v);
    }
    rq.send().await.unwrap()
}

pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

/// A Rust MCP client (rmcp) over Streamable HTTP with a bearer token.
/// The JSON-RPC message of an answer (`application/json`, or the last of an event stream).
pub async fn answer(r: reqwest::Response) -> serde_json::Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| {
        let data = text.lines().filter_map(|l| l.strip_prefix("data: ")).rfind(|d| d.starts_with('{'));
        serde_json::from_str(data.unwrap_or_else(|| panic!("no JSON-RPC message in {text}"))).unwrap()
    })
}

/// A stateless (2026-07-28) `tools/call` POST of `name` with `arguments`: the canonical form,
/// answered by the gateway directly (`mcp::stateless`), plus `extra` headers. Status, content
/// type and the JSON-RPC answer.
pub async fn stateless(
    url: &str,
    token: &str,
    name: &str,
    arguments: serde_json::Value,
    extra: &[(&str, &str)],
) -> (u16, String, serde_json::Value) {
    let meta = serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    });
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 41, "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": meta}});
    let mut headers = vec![("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", name)];
    headers.extend_from_slice(extra);
    let r = post(url, Some(token), &headers, body.to_string()).await;
    let status = r.status().as_u16();
    let kind = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, kind, answer(r).await)
}

pub async fn rust_client(url: &str, token: &str) -> rmcp::service::RunningService<rmcp::RoleClient, rmcp::model::ClientConfig> {
    use rmcp::ServiceExt;
    let config = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url.to_string())
        .auth_header(token.to_string());
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(config);
    let info = rmcp::model::ClientConfig::new(Default::default(), rmcp::model::Implementation::new("test", "1"));
    info.serve(transport).await.expect("MCP client connects")
}

/// What the gateway sent a [`Recorder`] client on its own: sampling requests, `roots/list`
/// requests, log messages (their `data` as text) and resource updates (their URIs).
#[derive(Default, Debug)]
pub struct Inbox {
    pub sampling: std::sync::Mutex<Vec<String>>,
    pub roots: std::sync::Mutex<usize>,
    pub logs: std::sync::Mutex<Vec<(rmcp::model::LoggingLevel, String)>>,
    pub updated: std::sync::Mutex<Vec<String>>,
}

/// A downstream MCP client (2025-11-25, session-based) that offers sampling and roots, answers
/// sampling with "answer from <name>", and records everything the gateway sends it.
#[derive(Clone)]
pub struct Recorder {
    pub name: &'static str,
    pub inbox: Arc<Inbox>,
}

impl rmcp::ClientHandler for Recorder {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        let mut caps = rmcp::model::ClientCapabilities::default();
        caps.sampling = Some(Default::default());
        caps.roots = Some(Default::default());
        rmcp::model::ClientConfig::new(caps, rmcp::model::Implementation::new(self.name, "1"))
            .with_protocol_version(rmcp::model::ProtocolVersion::V_2025_11_25)
    }

    async fn create_message(
        &self,
        params: rmcp::model::CreateMessageRequestParams,
        _ctx: rmcp::service::RequestContext<rmcp::RoleClient>,
    ) -> Result<rmcp::model::CreateMessageResult, rmcp::ErrorData> {
        self.inbox.sampling.lock().unwrap().push(serde_json::to_string(&params.messages).unwrap());
        let text = format!("answer from {}", self.name);
        Ok(rmcp::model::CreateMessageResult::new(
            rmcp::model::SamplingMessage::new(rmcp::model::Role::Assistant, rmcp::model::SamplingMessageContentBlock::text(text)),
            "test-model".into(),
        ))
    }

    async fn list_roots(
        &self,
        _ctx: rmcp::service::RequestContext<rmcp::RoleClient>,
    ) -> Result<rmcp::model::ListRootsResult, rmcp::ErrorData> {
        *self.inbox.roots.lock().unwrap() += 1;
        Ok(rmcp::model::ListRootsResult::new(vec![rmcp::model::Root::new(format!("file:///{}", self.name))]))
    }

    async fn on_logging_message(
        &self,
        params: rmcp::model::LoggingMessageNotificationParam,
        _ctx: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.inbox.logs.lock().unwrap().push((params.level, params.data.to_string()));
    }

    async fn on_resource_updated(
        &self,
        params: rmcp::model::ResourceUpdatedNotificationParam,
        _ctx: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.inbox.updated.lock().unwrap().push(params.uri);
    }
}

/// A [`Recorder`] connected to `url` with `token`.
pub async fn recording_client(
    url: &str,
    token: &str,
    name: &'static str,
) -> (rmcp::service::RunningService<rmcp::RoleClient, Recorder>, Arc<Inbox>) {
    use rmcp::ServiceExt;
    let config = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url.to_string())
        .auth_header(token.to_string());
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(config);
    let inbox = Arc::new(Inbox::default());
    let client = Recorder { name, inbox: inbox.clone() }.serve(transport).await.expect("MCP client connects");
    (client, inbox)
}

/// A raw MCP request of any method (GET, DELETE) with a token and extra headers.
pub async fn request(method: reqwest::Method, url: &str, token: Option<&str>, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut rq = reqwest::Client::new().request(method, url).header("accept", "application/json, text/event-stream");
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    for (k, v) in headers {
        rq = rq.header(*k, *v);
    }
    rq.send().await.unwrap()
}

/// server-everything in Streamable HTTP mode on a free loopback port (`/mcp`); killed on drop.
pub fn everything_http(everything: &str) -> (tokio::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = tokio::process::Command::new("node")
        .arg(everything)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (child, port)
}
