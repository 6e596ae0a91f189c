//! `mcpctl test mcp`: check an MCP endpoint as a client would — health, connect and initialize
//! over Streamable HTTP, list tools, optionally call one — and report each step.
//!
//! Exit codes: 0 pass, 1 transport or auth failure (cannot connect, 401/403, timeout),
//! 2 contract failure (an expected tool missing, a tool call that errs or returns `isError`).
//! On a gated project (only `begin_session` listed) it calls `begin_session` first when `--tool`
//! or `--expect-tools` asks for what is behind the gate.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientLifecycleMode, ClientServiceExt};
use serde::Serialize;

use crate::args::{TestMcpArgs, TextOrJson};
use crate::CliError;

/// One step of the check.
#[derive(Debug, Serialize)]
struct Step {
    step: &'static str,
    ok: bool,
    ms: u128,
    detail: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    url: String,
    passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<String>,
    tools: Vec<String>,
    steps: Vec<Step>,
}

/// Which kind of failure ended the check.
#[derive(PartialEq, Eq)]
enum Failure {
    Transport,
    Contract,
}

struct Probe {
    report: Report,
    failure: Option<Failure>,
}

impl Probe {
    fn step(&mut self, step: &'static str, started: Instant, result: Result<String, (Failure, String)>) -> bool {
        let ms = started.elapsed().as_millis();
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err((f, d)) => {
                self.failure.get_or_insert(f);
                (false, d)
            }
        };
        self.report.steps.push(Step { step, ok, ms, detail });
        ok
    }
}

/// The gateway's `/healthz` next to an endpoint URL (`…/projects/<p>/mcp` → `…/healthz`).
fn health_url(url: &str) -> Option<String> {
    let idx = url.find("/projects/")?;
    Some(format!("{}/healthz", &url[..idx]))
}

pub async fn run(a: TestMcpArgs) -> Result<(), CliError> {
    let mut p = Probe {
        report: Report { url: a.url.clone(), passed: false, protocol_version: None, server: None, tools: Vec::new(), steps: Vec::new() },
        failure: None,
    };
    let args: serde_json::Value = serde_json::from_str(&a.args).context("--args is not JSON")?;
    let serde_json::Value::Object(args) = args else { return Err(anyhow::anyhow!("--args must be a JSON object").into()) };
    match tokio::time::timeout(a.timeout, check(&a, args, &mut p)).await {
        Ok(()) => {}
        Err(_) => {
            let started = Instant::now();
            p.step("timeout", started, Err((Failure::Transport, format!("no answer within {}", humantime::format_duration(a.timeout)))));
        }
    }
    p.report.passed = p.failure.is_none();
    let mut out = anstream::stdout();
    match a.output {
        TextOrJson::Json => writeln!(out, "{}", serde_json::to_string_pretty(&p.report).expect("json")).context("writing output")?,
        TextOrJson::Text => {
            for s in &p.report.steps {
                writeln!(out, "{} {:<10} {:>5} ms  {}", if s.ok { "ok  " } else { "FAIL" }, s.step, s.ms, s.detail)
                    .context("writing output")?;
            }
            writeln!(out, "{}", if p.report.passed { "PASS" } else { "FAIL" }).context("writing output")?;
        }
    }
    match p.failure {
        None => Ok(()),
        Some(Failure::Transport) => Err(CliError::Failed(1)),
        Some(Failure::Contract) => Err(CliError::Failed(2)),
    }
}

/// The MCP client of `test mcp` and `console`.
pub(crate) type Client = rmcp::service::RunningService<rmcp::RoleClient, ClientConfig>;

/// Connect to an MCP endpoint over Streamable HTTP with `lifecycle` (`initialize`, or
/// `server/discover` for 2026-07-28), sending `token` as the bearer; with `tap`, every JSON-RPC
/// message in and out is recorded (the console's inspector).
///
/// # Errors
/// When the endpoint cannot be reached or the handshake fails.
pub(crate) async fn connect(
    url: &str,
    token: Option<&str>,
    name: &str,
    lifecycle: ClientLifecycleMode,
    tap: Option<crate::console::Tap>,
) -> Result<Client, rmcp::service::ClientInitializeError> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_owned());
    if let Some(t) = token {
        config = config.auth_header(t.to_owned());
    }
    let transport = StreamableHttpClientTransport::from_config(config);
    let info = ClientConfig::new(ClientCapabilities::default(), Implementation::new(name, env!("CARGO_PKG_VERSION")));
    match tap {
        Some(tap) => info.serve_with_lifecycle(crate::console::Recorder::new(transport, tap), lifecycle).await,
        None => info.serve_with_lifecycle(transport, lifecycle).await,
    }
}

/// The negotiated protocol version and `name version` of the server (empty when unknown).
pub(crate) fn describe(client: &Client) -> (String, String) {
    match client.peer_info() {
        Some(si) => {
            (si.protocol_version.to_string(), si.server_info.as_ref().map(|i| format!("{} {}", i.name, i.version)).unwrap_or_default())
        }
        None => (String::new(), String::new()),
    }
}

/// `tools/list` as a step; the names go into the report.
async fn list_tools(client: &Client, p: &mut Probe, after: &str) {
    let started = Instant::now();
    let r = match client.list_all_tools().await {
        Ok(tools) => {
            p.report.tools = tools.iter().map(|t| t.name.to_string()).collect();
            Ok(format!("{} tool(s){after}: {}", p.report.tools.len(), p.report.tools.join(", ")))
        }
        Err(e) => Err((Failure::Contract, e.to_string())),
    };
    p.step("tools/list", started, r);
}

/// Call a tool; its content as JSON, or a contract failure (an error or `isError`).
async fn call(client: &Client, req: CallToolRequestParams) -> Result<String, (Failure, String)> {
    let tool = req.name.to_string();
    match client.call_tool(req).await {
        Ok(res) if res.is_error == Some(true) => {
            Err((Failure::Contract, format!("{tool} returned isError: {}", serde_json::to_string(&res.content).unwrap_or_default())))
        }
        Ok(res) => Ok(serde_json::to_string(&res.content).unwrap_or_default()),
        Err(e) => Err((Failure::Contract, format!("{tool}: {e}"))),
    }
}

async fn check(a: &TestMcpArgs, args: serde_json::Map<String, serde_json::Value>, p: &mut Probe) {
    if !a.no_health {
        if let Some(h) = health_url(&a.url) {
            let started = Instant::now();
            let r = match reqwest::get(&h).await {
                Ok(r) if r.status().is_success() => Ok(format!("{h} {}", r.status())),
                Ok(r) => Err((Failure::Transport, format!("{h} answered {}", r.status()))),
                Err(e) => Err((Failure::Transport, format!("{h}: {e}"))),
            };
            if !p.step("health", started, r) {
                return;
            }
        }
    }
    let started = Instant::now();
    let client = match connect(&a.url, a.token.as_deref(), "mcpctl-test", ClientLifecycleMode::Initialize, None).await {
        Ok(c) => c,
        Err(e) => {
            p.step("initialize", started, Err((Failure::Transport, format!("{e}"))));
            return;
        }
    };
    let (protocol, server) = describe(&client);
    p.report.protocol_version = Some(protocol).filter(|s| !s.is_empty());
    p.report.server = Some(server).filter(|s| !s.is_empty());
    let detail =
        format!("{} (protocol {})", p.report.server.clone().unwrap_or_default(), p.report.protocol_version.clone().unwrap_or_default());
    p.step("initialize", started, Ok(detail));

    list_tools(&client, p, "").await;
    // A gated project shows only `begin_session` until it is called; open the gate when a tool
    // behind it is asked for, as an agent would.
    let gated = p.report.tools == [gateway::mcp::BEGIN_SESSION];
    if gated && (a.tool.as_deref().is_some_and(|t| t != "begin_session") || !a.expect_tools.is_empty()) {
        let started = Instant::now();
        let r = call(&client, CallToolRequestParams::new("begin_session")).await.map(|_| "gate opened".to_string());
        if p.step("gate", started, r) {
            list_tools(&client, p, " after the gate").await;
        }
    }
    if !a.expect_tools.is_empty() {
        let missing: Vec<&String> = a.expect_tools.iter().filter(|t| !p.report.tools.contains(t)).collect();
        let r = if missing.is_empty() {
            Ok(format!("all of {}", a.expect_tools.join(", ")))
        } else {
            Err((Failure::Contract, format!("missing: {}", missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))))
        };
        p.step("expect", Instant::now(), r);
    }
    if let Some(tool) = &a.tool {
        let started = Instant::now();
        let mut req = CallToolRequestParams::new(tool.clone());
        req.arguments = Some(args);
        let r = call(&client, req).await.map(|content| format!("{tool} → {content}"));
        p.step("tools/call", started, r);
    }
    let _ = client.cancel().await;
}
