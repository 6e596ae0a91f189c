//! MCP through the gateway, end to end with peers nobody here wrote: the official Python SDK as
//! the client; `mcp-server-time` (Python, stdio) and `@modelcontextprotocol/server-everything`
//! (Node, stdio and Streamable HTTP) as upstreams.

use std::time::{Duration, Instant};

use mcpctl_gateway::McpSettings;
use rmcp::model::CallToolRequestParams;

use crate::harness::*;

const ALICE: &str = "mcpctl_pat_alice_0123456789abcdef";
const BOB: &str = "mcpctl_pat_bob_0123456789abcdef";

/// Two projects: `lab` (time + everything, Alice's token may use both) and `other` (Bob's).
fn lab_yaml(time: &str, everything: &str, gated: bool, alice_extra: &str) -> String {
    format!(
        r#"apiVersion: mcpctl.io/v1
kind: Server
metadata: {{name: time}}
spec: {{command: "{time}"}}
---
apiVersion: mcpctl.io/v1
kind: Server
metadata: {{name: everything}}
spec: {{command: node, args: ["{everything}", stdio], timeoutSeconds: 20}}
---
apiVersion: mcpctl.io/v1
kind: Project
metadata: {{name: lab}}
spec:
  servers: [time, everything]
  gated: {gated}
  instructions: "Rule 1: ask before restarting anything."
---
apiVersion: mcpctl.io/v1
kind: Prompt
metadata: {{name: rules, project: lab}}
spec: {{content: "Be careful, {{{{who}}}}.", arguments: [{{name: who, required: true}}]}}
---
apiVersion: mcpctl.io/v1
kind: Project
metadata: {{name: other}}
spec: {{servers: [time]}}
---
{}{}"#,
        token_doc("alice", "lab", ALICE, &format!("  bindings:\n    - {{role: run, resource: servers}}\n{alice_extra}")),
        token_doc("bob", "other", BOB, "  bindings:\n    - {role: run, resource: servers}\n"),
    )
}

struct Peers {
    python: String,
    time: String,
    everything: String,
}

fn peers() -> Option<Peers> {
    Some(Peers { python: peer("MCPCTL_PEER_PYTHON")?, time: peer("MCPCTL_PEER_TIME")?, everything: peer("MCPCTL_PEER_EVERYTHING")? })
}

/// Wait until the gateway lists `tool` (upstream processes take a moment to start).
async fn wait_for_tool(url: &str, token: &str, tool: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = rust_client(url, token).await;
        let tools = c.list_all_tools().await.unwrap();
        let _ = c.cancel().await;
        if tools.iter().any(|t| t.name == tool) {
            return;
        }
        assert!(Instant::now() < deadline, "`{tool}` never appeared: {:?}", tools.iter().map(|t| t.name.to_string()).collect::<Vec<_>>());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_client_both_protocol_generations_with_real_upstreams_and_audit() {
    let Some(p) = peers() else { return };
    let gw = Gw::start(&lab_yaml(&p.time, &p.everything, false, "    - {role: run, action: audit}\n"), McpSettings::default()).await;
    let url = gw.url("lab");
    wait_for_tool(&url, ALICE, "time__get_current_time").await;
    wait_for_tool(&url, ALICE, "everything__echo").await;

    // Session-based revision: initialize, list, call a Python stdio upstream.
    let (v, ok) = python_client(
        &p.python,
        &["--url", &url, "--token", ALICE, "--mode", "initialize", "--call", "time__get_current_time", "--args", r#"{"timezone":"UTC"}"#],
    )
    .await;
    assert!(ok, "{v}");
    let tools: Vec<&str> = v["tools"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert!(tools.contains(&"time__get_current_time") && tools.contains(&"everything__echo"), "{tools:?}");
    assert!(v["call"]["content"][0]["text"].as_str().unwrap().contains("UTC"), "{v}");
    assert_eq!(v["serverName"], "mcpctl/lab");
    assert!(v["prompts"].as_array().unwrap().iter().any(|x| x == "rules"), "{v}");

    // Stateless revision (2026-07-28): server/discover, then a call to the Node upstream.
    let (v, ok) = python_client(
        &p.python,
        &["--url", &url, "--token", ALICE, "--mode", "discover", "--call", "everything__echo", "--args", r#"{"message":"hello"}"#],
    )
    .await;
    assert!(ok, "{v}");
    assert_eq!(v["call"]["content"][0]["text"], "Echo: hello", "{v}");
    assert_eq!(v["protocolVersion"], "2026-07-28", "{v}");

    // The project's own prompt, rendered with its argument.
    let (v, ok) = python_client(&p.python, &["--url", &url, "--token", ALICE, "--prompt", "rules", "--args", r#"{"who":"Alice"}"#]).await;
    assert!(ok, "{v}");
    assert_eq!(v["prompt"]["messages"][0]["content"]["text"], "Be careful, Alice.", "{v}");

    // Every call is audited with the token, server, tool and the revision in force.
    gw.state.auditor.flush().await;
    let events = gw
        .store
        .audit_events(&reconciler::audit::AuditFilter { project: Some("lab".into()), limit: 100, ..Default::default() })
        .await
        .unwrap();
    let call =
        events.iter().find(|e| e.method == "tools/call" && e.target == "get_current_time" && e.outcome == "ok").expect("audited call");
    assert_eq!((call.token.as_str(), call.server.as_str(), call.revision.as_str()), ("alice", "time", "rev-1"));
    assert_eq!(call.token_prefix, &token_hash(ALICE)["sha256:".len()..][..12]);
    assert!(
        events.iter().any(|e| e.method == "tools/call" && e.target == "echo" && e.session == "-"),
        "stateless call audited without a session"
    );
    assert!(events.iter().any(|e| e.method == "initialize"));
    assert!(events.iter().any(|e| e.method == "prompts/get" && e.target == "rules"));

    // The same log over the REST API (action `audit`), limited to the token's project.
    let api: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/auditevents?limit=500", gw.base))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = api["items"].as_array().unwrap();
    assert!(items.iter().any(|e| e["target"] == "get_current_time" && e["revision"] == "rev-1"), "{api}");
    assert!(items.iter().all(|e| e["project"] == "lab"));
    assert_eq!(
        reqwest::Client::new().get(format!("{}/api/v1/auditevents", gw.base)).bearer_auth(BOB).send().await.unwrap().status(),
        403,
        "bob has no audit grant"
    );

    let metrics = reqwest::get(format!("{}/metrics", gw.base)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(
            r#"mcpctl_mcp_requests_total{project="lab",server="time",target="get_current_time",method="tools/call",outcome="ok"}"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"mcpctl_upstream_up{server="time",transport="stdio"} 1"#), "{metrics}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_wrong_project_revocation_rbac_and_resource_metadata() {
    let Some(p) = peers() else { return };
    let only_time = "  bindings:\n    - {role: run, resource: servers, name: time}\n";
    let yaml = lab_yaml(&p.time, &p.everything, false, "").replace("  bindings:\n    - {role: run, resource: servers}\n", only_time);
    let mut gw = Gw::start(&yaml, McpSettings::default()).await;
    let url = gw.url("lab");

    // No token: 401 pointing at the RFC 9728 metadata, which names the resource.
    let r = post(&url, None, &[], INITIALIZE).await;
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_string();
    let meta_url = challenge.split("resource_metadata=\"").nth(1).unwrap().trim_end_matches('"').to_string();
    let meta: serde_json::Value = reqwest::get(&meta_url).await.unwrap().json().await.unwrap();
    assert_eq!(meta["resource"], url.as_str());
    // A token of another project: 403. An unknown one: 401.
    assert_eq!(post(&url, Some(BOB), &[], INITIALIZE).await.status(), 403);
    assert_eq!(post(&url, Some("mcpctl_pat_nobody"), &[], INITIALIZE).await.status(), 401);
    // Unknown project: 404.
    assert_eq!(post(&gw.url("nope"), Some(ALICE), &[], INITIALIZE).await.status(), 404);

    // RBAC: Alice may only use `time`; `everything`'s tools are neither listed nor callable.
    wait_for_tool(&url, ALICE, "time__get_current_time").await;
    let c = rust_client(&url, ALICE).await;
    let names: Vec<String> = c.list_all_tools().await.unwrap().iter().map(|t| t.name.to_string()).collect();
    assert!(names.iter().all(|n| n.starts_with("time__")), "{names:?}");
    let mut req = CallToolRequestParams::new("everything__echo");
    req.arguments = serde_json::json!({"message": "x"}).as_object().cloned();
    let err = c.call_tool(req).await.unwrap_err().to_string();
    assert!(err.contains("may not use"), "{err}");
    let _ = c.cancel().await;

    // Revoked in git and deployed: refused at once (each deploy drops the token cache).
    let revoked = yaml.replace(
        "  prefix: mcpctl_pat_t\n  bindings:\n    - {role: run, resource: servers, name: time}",
        "  prefix: mcpctl_pat_t\n  revoked: true\n  bindings:\n    - {role: run, resource: servers, name: time}",
    );
    assert_ne!(revoked, yaml);
    assert_eq!(post(&url, Some(ALICE), &[], INITIALIZE).await.status(), 200);
    gw.deploy(&revoked, "rev-2").await;
    assert_eq!(post(&url, Some(ALICE), &[], INITIALIZE).await.status(), 401);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gated_session_then_stateless_gate_per_token() {
    let Some(p) = peers() else { return };
    let gw = Gw::start(&lab_yaml(&p.time, &p.everything, true, ""), McpSettings::default()).await;
    let url = gw.url("lab");

    let c = rust_client(&url, ALICE).await;
    let instructions = c.peer_info().and_then(|i| i.instructions.clone()).unwrap_or_default();
    assert!(instructions.contains("begin_session"), "{instructions}");
    let names = |tools: Vec<rmcp::model::Tool>| tools.iter().map(|t| t.name.to_string()).collect::<Vec<_>>();
    assert_eq!(names(c.list_all_tools().await.unwrap()), ["begin_session"]);
    let prompts: Vec<String> = c.list_all_prompts().await.unwrap().iter().map(|p| p.name.clone()).collect();
    assert_eq!(prompts, ["rules"], "the project's prompts are visible before the gate opens");
    let err = c.call_tool(CallToolRequestParams::new("time__get_current_time")).await.unwrap_err().to_string();
    assert!(err.contains("gated"), "{err}");
    let r = c.call_tool(CallToolRequestParams::new("begin_session")).await.unwrap();
    assert!(serde_json::to_string(&r.content).unwrap().contains("Rule 1"), "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tools = names(c.list_all_tools().await.unwrap());
        if tools.iter().any(|t| t == "time__get_current_time") {
            break;
        }
        assert!(Instant::now() < deadline, "tools never appeared: {tools:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = c.cancel().await;
    // Another session starts gated again.
    let c2 = rust_client(&url, ALICE).await;
    assert_eq!(names(c2.list_all_tools().await.unwrap()), ["begin_session"]);
    let _ = c2.cancel().await;

    // Stateless: no session, so the gate opens per token and is stored (any replica sees it).
    let (v, _) = python_client(&p.python, &["--url", &url, "--token", ALICE, "--mode", "discover"]).await;
    assert_eq!(v["tools"], serde_json::json!(["begin_session"]), "{v}");
    let (v, ok) = python_client(&p.python, &["--url", &url, "--token", ALICE, "--mode", "discover", "--call", "begin_session"]).await;
    assert!(ok, "{v}");
    let (v, _) = python_client(&p.python, &["--url", &url, "--token", ALICE, "--mode", "discover"]).await;
    assert!(v["tools"].as_array().unwrap().iter().any(|t| t == "time__get_current_time"), "{v}");
    assert!(gw.store.gate_opened_at("lab", &token_hash(ALICE)).await.unwrap().is_some());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_killed_mid_call_errors_then_restarts() {
    let Some(p) = peers() else { return };
    let gw = Gw::start(&lab_yaml(&p.time, &p.everything, false, ""), McpSettings::default()).await;
    let url = gw.url("lab");
    wait_for_tool(&url, ALICE, "everything__trigger-long-running-operation").await;
    let pid = gw.runtime.status().iter().find(|s| s.name == "everything").and_then(|s| match s.state {
        reconciler::runtime::ProcessState::Running { pid } => Some(pid),
        _ => None,
    });
    let pid = pid.expect("everything runs");

    let c = rust_client(&url, ALICE).await;
    let mut req = CallToolRequestParams::new("everything__trigger-long-running-operation");
    req.arguments = serde_json::json!({"duration": 15, "steps": 5}).as_object().cloned();
    let started = Instant::now();
    let call = tokio::spawn(async move {
        let r = c.call_tool(req).await;
        let _ = c.cancel().await;
        r
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status().unwrap();
    let err = call.await.unwrap().unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(10), "the call waited {:?}", started.elapsed());
    assert!(err.contains("closed mid-call") || err.contains("unavailable"), "{err}");

    // The runtime restarts the process and the gateway reconnects.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = rust_client(&url, ALICE).await;
        let mut req = CallToolRequestParams::new("everything__echo");
        req.arguments = serde_json::json!({"message": "back"}).as_object().cloned();
        let r = c.call_tool(req).await;
        let _ = c.cancel().await;
        if let Ok(r) = r {
            assert!(serde_json::to_string(&r.content).unwrap().contains("Echo: back"));
            break;
        }
        assert!(Instant::now() < deadline, "never came back: {r:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    gw.stop().await;
}

/// A stateless call answered raw by a local process (`upstream::relay`) keeps what the typed
/// path guarantees: the server's timeout (audited as an error, the process still serving), an
/// error at once when the process dies mid-call, and answers again once it is restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_stateless_call_times_out_fails_fast_on_a_crash_and_works_after_the_restart() {
    let Some(p) = peers() else { return };
    let yaml = lab_yaml(&p.time, &p.everything, false, "").replace("timeoutSeconds: 20", "timeoutSeconds: 2");
    let gw = Gw::start(&yaml, McpSettings::default()).await;
    let url = gw.url("lab");
    wait_for_tool(&url, ALICE, "everything__echo").await;
    let echo = |message: &'static str| {
        let url = url.clone();
        async move { stateless(&url, ALICE, "everything__echo", serde_json::json!({ "message": message }), &[]).await }
    };
    let (status, _, v) = echo("raw").await;
    assert_eq!(
        (status, &v["id"], &v["result"]["content"][0]["text"]),
        (200, &serde_json::json!(41), &serde_json::json!("Echo: raw")),
        "{v}"
    );
    assert_eq!(v["result"]["resultType"], "complete");

    let long = serde_json::json!({"duration": 15, "steps": 5});
    let started = Instant::now();
    let (_, _, v) = stateless(&url, ALICE, "everything__trigger-long-running-operation", long.clone(), &[]).await;
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("did not answer within 2s"), "{v}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(echo("still").await.2["result"]["content"][0]["text"], "Echo: still");
    gw.state.auditor.flush().await;
    let events = gw.store.audit_events(&reconciler::audit::AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
    let timed_out = events.iter().find(|e| e.target == "trigger-long-running-operation").expect("audited");
    assert_eq!(timed_out.outcome, "error");

    let pid = gw.runtime.status().iter().find(|s| s.name == "everything").and_then(|s| match s.state {
        reconciler::runtime::ProcessState::Running { pid } => Some(pid),
        _ => None,
    });
    let call = tokio::spawn({
        let url = url.clone();
        async move { stateless(&url, ALICE, "everything__trigger-long-running-operation", long, &[]).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    std::process::Command::new("kill").arg("-9").arg(pid.expect("everything runs").to_string()).status().unwrap();
    let v = call.await.unwrap().2;
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("closed mid-call"), "{v}");
    assert!(started.elapsed() < Duration::from_secs(1), "the call waited {:?} after the crash", started.elapsed());

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = echo("back").await.2;
        if v["result"]["content"][0]["text"] == "Echo: back" {
            break;
        }
        assert!(Instant::now() < deadline, "never came back: {v}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_malformed_oversized_unknown_session_origin_host_version() {
    let yaml = format!(
        "apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: nothing}}\nspec: {{url: \"http://127.0.0.1:9/mcp\"}}\n---\napiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: lab}}\nspec: {{servers: [nothing]}}\n---\n{}",
        token_doc("alice", "lab", ALICE, "  bindings:\n    - {role: run, resource: servers}\n")
    );
    let gw = Gw::start(&yaml, McpSettings { max_body_bytes: 64 * 1024, ..McpSettings::default() }).await;
    let url = gw.url("lab");
    // Malformed JSON-RPC: 400 with a JSON-RPC parse error, not a crash.
    let r = post(&url, Some(ALICE), &[], "{not json").await;
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32700, "{v}");
    let r = post(&url, Some(ALICE), &[], r#"{"jsonrpc":"1.0","id":7,"method":3}"#).await;
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!((v["error"]["code"].as_i64(), v["id"].as_i64()), (Some(-32600), Some(7)), "{v}");
    // Oversized body: 413.
    let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"pad":"{}"}}}}"#, "x".repeat(100 * 1024));
    assert_eq!(post(&url, Some(ALICE), &[], big).await.status(), 413);
    // Unknown session: 404.
    let r = post(
        &url,
        Some(ALICE),
        &[("mcp-session-id", "no-such-session"), ("mcp-protocol-version", "2025-06-18")],
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    )
    .await;
    assert_eq!(r.status(), 404);
    // Unsupported protocol version header: 400.
    let r = post(&url, Some(ALICE), &[("mcp-protocol-version", "1999-01-01")], r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).await;
    assert_eq!(r.status(), 400);
    // A browser page from another origin (or a rebinding Host) is refused.
    assert_eq!(post(&url, Some(ALICE), &[("origin", "http://evil.example")], INITIALIZE).await.status(), 403);
    let r = reqwest::Client::new()
        .post(&url)
        .header("host", "evil.example")
        .bearer_auth(ALICE)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A well-formed initialize works, and an upstream that is down does not break listing.
    assert_eq!(post(&url, Some(ALICE), &[], INITIALIZE).await.status(), 200);
    let c = rust_client(&url, ALICE).await;
    assert!(c.list_all_tools().await.unwrap().is_empty());
    let err = c.call_tool(CallToolRequestParams::new("nothing__x")).await.unwrap_err().to_string();
    assert!(err.contains("unavailable"), "{err}");
    let _ = c.cancel().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_upstream_single_server_unprefixed_public_project() {
    let Some(everything) = peer("MCPCTL_PEER_EVERYTHING") else { return };
    let (mut child, port) = everything_http(&everything);
    let yaml = format!(
        "apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: remote}}\nspec: {{url: \"http://127.0.0.1:{port}/mcp\"}}\n---\napiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: open}}\nspec: {{servers: [remote], public: true, prefixTools: false}}\n"
    );
    let gw = Gw::start(&yaml, McpSettings::default()).await;
    let url = gw.url("open");
    // Public: no token needed; single server without prefix: plain tool names.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let r = post(&url, None, &[("mcp-protocol-version", "2025-06-18")], r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#).await;
        assert_eq!(r.status(), 200);
        let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
        let _ = r.text().await;
        let h = [("mcp-session-id", sid.as_str()), ("mcp-protocol-version", "2025-06-18")];
        post(&url, None, &h, r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;
        let r = post(
            &url,
            None,
            &h,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"over http"}}}"#,
        )
        .await;
        let body = r.text().await.unwrap();
        if body.contains("Echo: over http") || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(body.contains("Echo: over http"), "{body}");
    gw.stop().await;
    let _ = child.kill().await;
}

/// The official MCP conformance suite against a project whose single server is the Rust test
/// upstream (tests/conformance/upstream.rs), run over stdio by the local runtime: every active
/// server scenario of 2025-06-18 and 2025-11-25 must pass through the gateway, except those in
/// tests/conformance/expected-failures.yml (each with its reason).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_through_the_gateway() {
    let (Some(node), Some(suite)) = (peer("MCPCTL_PEER_NODE22"), peer("MCPCTL_PEER_CONFORMANCE")) else { return };
    let upstream = env!("CARGO_BIN_EXE_conformance-upstream");
    let yaml = format!(
        "apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: conformance}}\nspec: {{command: \"{upstream}\"}}\n---\napiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: conformance}}\nspec: {{servers: [conformance], public: true, prefixTools: false}}\n"
    );
    let gw = Gw::start(&yaml, McpSettings::default()).await;
    let url = gw.url("conformance");
    let baseline = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/expected-failures.yml");
    let out = tokio::time::timeout(
        Duration::from_secs(600),
        tokio::process::Command::new(&node)
            .arg(&suite)
            .args(["server", "--url", &url, "--expected-failures"])
            .arg(&baseline)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("conformance suite timed out")
    .expect("conformance suite runs");
    let report = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{report}");
    assert!(out.status.success(), "conformance suite failed through the gateway:\n{report}");
    gw.stop().await;
}
