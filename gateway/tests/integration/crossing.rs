//! Nothing crosses between callers of one shared upstream: server→client requests and log
//! messages reach only their caller (or nobody, counted), `logging/setLevel` needs `run`, RBAC
//! holds per item for prompts and resources, and upstream URLs are redacted. Real peers:
//! `@modelcontextprotocol/server-everything` over stdio and Streamable HTTP.

#![allow(deprecated)]

use std::time::{Duration, Instant};

use mcpctl_gateway::McpSettings;
use rmcp::model::{CallToolRequestParams, GetPromptRequestParams, LoggingLevel, ReadResourceRequestParams, SetLevelRequestParams};

use crate::harness::*;

const ALICE: &str = "mcpctl_pat_alice_0123456789abcdef";
const BOB: &str = "mcpctl_pat_bob_0123456789abcdef";
const CAROL: &str = "mcpctl_pat_carol_0123456789abcdef";
const DAVE: &str = "mcpctl_pat_dave_0123456789abcdef";
const ERIN: &str = "mcpctl_pat_erin_0123456789abcdef";

/// The dynamic text resources of server-everything (a template).
const TEXT_TEMPLATE: &str = "demo://resource/dynamic/text/{resourceId}";

/// `everything` (one stdio process) exposed by two projects: `lab` (Alice: run; Carol: view;
/// Dave: run on one tool; Erin: view on one prompt and one resource template) and `other` (Bob).
fn shared_yaml(everything: &str) -> String {
    format!(
        r#"apiVersion: mcpctl.io/v1
kind: Server
metadata: {{name: everything}}
spec: {{command: node, args: ["{everything}", stdio], timeoutSeconds: 20}}
---
apiVersion: mcpctl.io/v1
kind: Project
metadata: {{name: lab}}
spec: {{servers: [everything]}}
---
apiVersion: mcpctl.io/v1
kind: Prompt
metadata: {{name: rules, project: lab}}
spec: {{content: "Be careful."}}
---
apiVersion: mcpctl.io/v1
kind: Project
metadata: {{name: other}}
spec: {{servers: [everything]}}
---
{}{}{}{}{}"#,
        token_doc("alice", "lab", ALICE, "  bindings:\n    - {role: run, resource: servers}\n"),
        token_doc("bob", "other", BOB, "  bindings:\n    - {role: run, resource: servers}\n"),
        token_doc("carol", "lab", CAROL, "  bindings:\n    - {role: view, resource: servers}\n"),
        token_doc("dave", "lab", DAVE, "  bindings:\n    - {role: run, resource: servers, name: everything/echo}\n"),
        token_doc(
            "erin",
            "lab",
            ERIN,
            &format!("  bindings:\n    - {{role: view, resource: servers, name: everything/simple-prompt}}\n    - {{role: view, resource: servers, name: \"everything/{TEXT_TEMPLATE}\"}}\n")
        ),
    )
}

/// Wait until `token` sees `tool` in `project` (the process starts, conditional tools register).
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

fn call(name: &str, args: serde_json::Value) -> CallToolRequestParams {
    let mut req = CallToolRequestParams::new(name.to_string());
    req.arguments = args.as_object().cloned();
    req
}

/// Text of a tool's answer, or of its error.
fn outcome(r: Result<rmcp::model::CallToolResult, rmcp::service::ServiceError>) -> (bool, String) {
    match r {
        Ok(r) => (r.is_error != Some(true), serde_json::to_string(&r.content).unwrap()),
        Err(e) => (false, e.to_string()),
    }
}

/// `mcpctl_mcp_requests_total` summed over every label but `method` and `outcome`.
fn requests(metrics: &str, method: &str, outcome: &str) -> u64 {
    let (m, o) = (format!("method=\"{method}\""), format!("outcome=\"{outcome}\""));
    metrics
        .lines()
        .filter(|l| l.starts_with("mcpctl_mcp_requests_total{") && l.contains(&m) && l.contains(&o))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Messages of `kind` the gateway refused for `server`.
fn refused(gw: &Gw, server: &str, kind: &str) -> u64 {
    gw.state.upstreams.health().iter().find(|h| h.server == server).and_then(|h| h.unroutable.get(kind).copied()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_reaches_only_its_caller_and_ambiguity_is_refused_and_counted() {
    let Some(everything) = peer("MCPCTL_PEER_EVERYTHING") else { return };
    let gw = Gw::start(&shared_yaml(&everything), McpSettings::default()).await;
    let (lab, other) = (gw.url("lab"), gw.url("other"));
    wait_for_tool(&lab, ALICE, "everything__trigger-sampling-request").await;
    let (alice, alice_inbox) = recording_client(&lab, ALICE, "alice").await;
    let (bob, bob_inbox) = recording_client(&other, BOB, "bob").await;
    let sample = || call("everything__trigger-sampling-request", serde_json::json!({"prompt": "hello", "maxTokens": 5}));

    // Bob has just used the server; then Alice alone: her sampling request reaches her, not Bob.
    let (ok, _) = outcome(bob.call_tool(call("everything__echo", serde_json::json!({"message": "b"}))).await);
    assert!(ok);
    let (ok, text) = outcome(alice.call_tool(sample()).await);
    assert!(ok && text.contains("answer from alice"), "{text}");
    assert_eq!(alice_inbox.sampling.lock().unwrap().len(), 1);
    assert!(bob_inbox.sampling.lock().unwrap().is_empty());

    // Bob's call is in flight on the same upstream (another token, another project): the
    // upstream's sampling request during Alice's call cannot be told apart over stdio, so it is
    // refused to the upstream and counted — it reaches neither of them.
    let before = refused(&gw, "everything", "sampling");
    let long = tokio::spawn(async move {
        let r = bob.call_tool(call("everything__trigger-long-running-operation", serde_json::json!({"duration": 4, "steps": 2}))).await;
        (r, bob)
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (ok, text) = outcome(alice.call_tool(sample()).await);
    assert!(!ok && text.contains("cannot associate"), "{text}");
    assert_eq!(alice_inbox.sampling.lock().unwrap().len(), 1, "no second sampling request for Alice");
    assert!(bob_inbox.sampling.lock().unwrap().is_empty(), "never to Bob");
    assert_eq!(refused(&gw, "everything", "sampling"), before + 1);
    let (r, bob) = long.await.unwrap();
    assert!(outcome(r).0, "Bob's own call is unaffected");

    let status: serde_json::Value =
        reqwest::Client::new().get(format!("{}/api/v1/status", gw.base)).bearer_auth(ALICE).send().await.unwrap().json().await.unwrap();
    let up = status["upstreams"].as_array().unwrap().iter().find(|u| u["server"] == "everything").unwrap().clone();
    assert_eq!(up["unroutable"]["sampling"], before + 1, "{status}");
    let _ = alice.cancel().await;
    let _ = bob.cancel().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamable_http_upstream_associates_by_stream_even_with_concurrent_callers() {
    let Some(everything) = peer("MCPCTL_PEER_EVERYTHING") else { return };
    let (mut child, port) = everything_http(&everything);
    let yaml = shared_yaml(&everything).replace(
        &format!("spec: {{command: node, args: [\"{everything}\", stdio], timeoutSeconds: 20}}"),
        &format!("spec: {{url: \"http://127.0.0.1:{port}/mcp\", timeoutSeconds: 20}}"),
    );
    let gw = Gw::start(&yaml, McpSettings::default()).await;
    let (lab, other) = (gw.url("lab"), gw.url("other"));
    wait_for_tool(&lab, ALICE, "everything__trigger-sampling-request").await;
    let (alice, alice_inbox) = recording_client(&lab, ALICE, "alice").await;
    let (bob, bob_inbox) = recording_client(&other, BOB, "bob").await;

    // With Bob's call in flight, Alice's sampling request arrives on the response stream of her
    // own request upstream: exact, so it is delivered — to her only.
    let long = tokio::spawn(async move {
        let r = bob.call_tool(call("everything__trigger-long-running-operation", serde_json::json!({"duration": 3, "steps": 2}))).await;
        (r, bob)
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (ok, text) =
        outcome(alice.call_tool(call("everything__trigger-sampling-request", serde_json::json!({"prompt": "hi", "maxTokens": 5}))).await);
    assert!(ok && text.contains("answer from alice"), "{text}");
    assert_eq!(alice_inbox.sampling.lock().unwrap().len(), 1);
    assert!(bob_inbox.sampling.lock().unwrap().is_empty());
    let (r, bob) = long.await.unwrap();
    assert!(outcome(r).0);
    assert_eq!(refused(&gw, "everything", "sampling"), 0);
    let _ = alice.cancel().await;
    let _ = bob.cancel().await;
    gw.stop().await;
    let _ = child.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_messages_and_roots_requests_of_nobody_reach_nobody() {
    let Some(everything) = peer("MCPCTL_PEER_EVERYTHING") else { return };
    let gw = Gw::start(&shared_yaml(&everything), McpSettings::default()).await;
    let (lab, other) = (gw.url("lab"), gw.url("other"));
    wait_for_tool(&lab, ALICE, "everything__toggle-simulated-logging").await;
    let (alice, _alice_inbox) = recording_client(&lab, ALICE, "alice").await;
    let (bob, bob_inbox) = recording_client(&other, BOB, "bob").await;

    // Alice starts the upstream's periodic log messages (every 5 s, for no call); Bob is the
    // last caller afterwards. Later messages belong to nobody: dropped and counted, never Bob's.
    let (ok, text) = outcome(alice.call_tool(call("everything__toggle-simulated-logging", serde_json::json!({}))).await);
    assert!(ok, "{text}");
    let (ok, _) = outcome(bob.call_tool(call("everything__echo", serde_json::json!({"message": "b"}))).await);
    assert!(ok);
    // Over stdio a message the upstream writes while Bob's call is the only one in flight is
    // Bob's by the association rule (docs/security.md#upstream-isolation); server-everything's
    // own "Roots updated" log after its start-up roots exchange can land there on a loaded
    // machine. The periodic messages Alice turned on must never reach him.
    let bobs_periodic = || bob_inbox.logs.lock().unwrap().iter().filter(|(_, m)| !m.contains("Roots updated")).cloned().collect::<Vec<_>>();
    let deadline = Instant::now() + Duration::from_secs(20);
    while refused(&gw, "everything", "logging") == 0 && bobs_periodic().is_empty() {
        assert!(Instant::now() < deadline, "no periodic log message arrived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(bobs_periodic().is_empty(), "Bob got Alice's log messages: {:?}", bobs_periodic());
    assert!(refused(&gw, "everything", "logging") > 0);
    let _ = alice.call_tool(call("everything__toggle-simulated-logging", serde_json::json!({}))).await;

    // The upstream restarts and asks its client for roots with no call in flight: nobody's
    // request, refused — not sent to Bob, the last caller.
    let pid = gw.runtime.status().iter().find(|s| s.name == "everything").and_then(|s| match s.state {
        reconciler::runtime::ProcessState::Running { pid } => Some(pid),
        _ => None,
    });
    std::process::Command::new("kill").arg("-9").arg(pid.expect("everything runs").to_string()).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while refused(&gw, "everything", "roots") == 0 && *bob_inbox.roots.lock().unwrap() == 0 {
        assert!(Instant::now() < deadline, "the restarted upstream never asked for roots");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(*bob_inbox.roots.lock().unwrap(), 0, "Bob was asked for his roots on behalf of nobody");
    assert_eq!(refused(&gw, "everything", "roots"), 1);
    let _ = alice.cancel().await;
    let _ = bob.cancel().await;
    gw.stop().await;
}

/// Wait (≤ 20 s) until `inbox` holds an update of `uri`.
async fn wait_for_update(inbox: &Inbox, uri: &str, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !inbox.updated.lock().unwrap().iter().any(|u| u == uri) {
        assert!(Instant::now() < deadline, "{who} never got the update of {uri}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_updates_reach_subscribers_only_and_one_unsubscribe_keeps_the_others() {
    let Some(everything) = peer("MCPCTL_PEER_EVERYTHING") else { return };
    let gw = Gw::start(&shared_yaml(&everything), McpSettings::default()).await;
    let (lab, other) = (gw.url("lab"), gw.url("other"));
    wait_for_tool(&lab, ALICE, "everything__toggle-subscriber-updates").await;
    let (alice, alice_inbox) = recording_client(&lab, ALICE, "alice").await;
    let (bob, bob_inbox) = recording_client(&other, BOB, "bob").await;
    let uri = alice.list_all_resources().await.unwrap().first().expect("server-everything lists resources").uri.clone();
    let toggle = || call("everything__toggle-subscriber-updates", serde_json::json!({}));

    // Alice subscribes, Bob does not: the update (sent at once by the toggle) is Alice's only.
    alice.subscribe(rmcp::model::SubscribeRequestParams::new(uri.clone())).await.unwrap();
    assert!(outcome(alice.call_tool(toggle()).await).0);
    wait_for_update(&alice_inbox, &uri, "Alice").await;
    // A ping after the update: anything sent to Bob with it has arrived by then.
    bob.list_all_tools().await.unwrap();
    assert!(bob_inbox.updated.lock().unwrap().is_empty(), "Bob never subscribed: {:?}", bob_inbox.updated.lock().unwrap());
    assert!(outcome(alice.call_tool(toggle()).await).0, "updates off");

    // Bob subscribes too; Alice leaves. The upstream's one subscription must stay for Bob.
    bob.subscribe(rmcp::model::SubscribeRequestParams::new(uri.clone())).await.unwrap();
    alice.unsubscribe(rmcp::model::UnsubscribeRequestParams::new(uri.clone())).await.unwrap();
    alice_inbox.updated.lock().unwrap().clear();
    assert!(outcome(bob.call_tool(toggle()).await).0);
    wait_for_update(&bob_inbox, &uri, "Bob").await;
    alice.list_all_tools().await.unwrap();
    assert!(alice_inbox.updated.lock().unwrap().is_empty(), "Alice unsubscribed");
    assert!(outcome(bob.call_tool(toggle()).await).0, "updates off");
    let _ = alice.cancel().await;
    let _ = bob.cancel().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_level_needs_run_and_stays_with_the_session() {
    let Some(everything) = peer("MCPCTL_PEER_EVERYTHING") else { return };
    let gw = Gw::start(&shared_yaml(&everything), McpSettings::default()).await;
    let lab = gw.url("lab");
    wait_for_tool(&lab, ALICE, "everything__toggle-simulated-logging").await;

    // A viewer may not change logging: denied, and audited as denied.
    let (carol, _) = recording_client(&lab, CAROL, "carol").await;
    let err = carol.set_level(SetLevelRequestParams::new(LoggingLevel::Debug)).await.unwrap_err().to_string();
    assert!(err.contains("needs the `run` role"), "{err}");
    let _ = carol.cancel().await;

    // With `run`: accepted, kept for Alice's session, and it filters what reaches her.
    let (alice, inbox) = recording_client(&lab, ALICE, "alice").await;
    alice.set_level(SetLevelRequestParams::new(LoggingLevel::Emergency)).await.unwrap();
    for _ in 0..6 {
        let (ok, text) = outcome(alice.call_tool(call("everything__toggle-simulated-logging", serde_json::json!({}))).await);
        assert!(ok, "{text}");
    }
    let logs = inbox.logs.lock().unwrap().clone();
    assert!(logs.iter().all(|(l, _)| *l == LoggingLevel::Emergency), "below the session's level: {logs:?}");

    let metrics = reqwest::get(format!("{}/metrics", gw.base)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"mcpctl_mcp_requests_total{project="lab",server="-",target="-",method="logging/setLevel",outcome="denied"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"mcpctl_mcp_requests_total{project="lab",server="-",target="-",method="logging/setLevel",outcome="ok"} 1"#),
        "{metrics}"
    );
    let _ = alice.cancel().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_per_item_hides_and_refuses_prompts_and_resources() {
    let Some(everything) = peer("MCPCTL_PEER_EVERYTHING") else { return };
    let gw = Gw::start(&shared_yaml(&everything), McpSettings::default()).await;
    let lab = gw.url("lab");
    wait_for_tool(&lab, ALICE, "everything__echo").await;

    // Alice (the whole server) sees the server's prompts and resources.
    let alice = rust_client(&lab, ALICE).await;
    let all_prompts: Vec<String> = alice.list_all_prompts().await.unwrap().into_iter().map(|p| p.name).collect();
    assert!(all_prompts.iter().any(|p| p == "everything__simple-prompt"), "{all_prompts:?}");
    let resources = alice.list_all_resources().await.unwrap();
    let existing = resources.first().expect("server-everything lists resources").uri.clone();
    assert!(!alice.list_all_resource_templates().await.unwrap().is_empty());
    let _ = alice.cancel().await;

    // Dave holds one tool: he sees that tool, the project's own prompt, and nothing else.
    let dave = rust_client(&lab, DAVE).await;
    let tools: Vec<String> = dave.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
    assert_eq!(tools, ["everything__echo"]);
    let prompts: Vec<String> = dave.list_all_prompts().await.unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(prompts, ["rules"]);
    assert!(dave.list_all_resources().await.unwrap().is_empty());
    assert!(dave.list_all_resource_templates().await.unwrap().is_empty());
    // Reads and gets of what he was not granted fail exactly like names that do not exist.
    let read = |uri: &str| ReadResourceRequestParams::new(uri.to_string());
    let e_existing = dave.read_resource(read(&existing)).await.unwrap_err().to_string();
    let e_unknown = dave.read_resource(read("demo://no/such/thing")).await.unwrap_err().to_string();
    assert_eq!(e_existing.replace(&existing, "<uri>"), e_unknown.replace("demo://no/such/thing", "<uri>"));
    let get = |name: &str| GetPromptRequestParams::new(name.to_string());
    let e_existing = dave.get_prompt(get("everything__simple-prompt")).await.unwrap_err().to_string();
    let e_unknown = dave.get_prompt(get("everything__no-such-prompt")).await.unwrap_err().to_string();
    assert_eq!(e_existing.replace("simple-prompt", "<p>"), e_unknown.replace("no-such-prompt", "<p>"));
    let _ = dave.cancel().await;

    // Erin holds one prompt and one resource template by name: exactly those.
    let erin = rust_client(&lab, ERIN).await;
    let prompts: Vec<String> = erin.list_all_prompts().await.unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(prompts, ["rules", "everything__simple-prompt"]);
    assert!(erin.get_prompt(get("everything__simple-prompt")).await.is_ok());
    assert!(erin.get_prompt(get("everything__args-prompt")).await.is_err());
    let templates: Vec<String> = erin.list_all_resource_templates().await.unwrap().into_iter().map(|t| t.uri_template.clone()).collect();
    assert_eq!(templates, [TEXT_TEMPLATE]);
    assert!(erin.list_all_resources().await.unwrap().is_empty());
    let r = erin.read_resource(read("demo://resource/dynamic/text/1")).await.unwrap();
    assert!(serde_json::to_string(&r.contents).unwrap().contains("Resource 1"), "{r:?}");
    assert!(erin.read_resource(read(&existing)).await.is_err());
    let _ = erin.cancel().await;

    let metrics = reqwest::get(format!("{}/metrics", gw.base)).await.unwrap().text().await.unwrap();
    assert_eq!(requests(&metrics, "resources/read", "denied"), 3, "{metrics}");
    assert_eq!(requests(&metrics, "prompts/get", "denied"), 3, "{metrics}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_urls_are_redacted_in_status_and_errors() {
    let yaml = format!(
        "apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: remote}}\nspec: {{url: \"http://alice:pa55word@127.0.0.1:9/mcp?key=sekrit#frag\"}}\n---\napiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: lab}}\nspec: {{servers: [remote]}}\n---\n{}",
        token_doc("alice", "lab", ALICE, "  bindings:\n    - {role: run, resource: servers}\n")
    );
    let gw = Gw::start(&yaml, McpSettings::default()).await;
    let c = rust_client(&gw.url("lab"), ALICE).await;
    let err = c.call_tool(CallToolRequestParams::new("remote__x")).await.unwrap_err().to_string();
    let _ = c.cancel().await;
    assert!(err.contains("cannot connect to http://127.0.0.1:9/mcp"), "{err}");
    let status =
        reqwest::Client::new().get(format!("{}/api/v1/status", gw.base)).bearer_auth(ALICE).send().await.unwrap().text().await.unwrap();
    assert!(status.contains("http://127.0.0.1:9/mcp"), "{status}");
    for secret in ["pa55word", "sekrit", "alice:", "frag"] {
        assert!(!err.contains(secret), "`{secret}` in the call's error: {err}");
        assert!(!status.contains(secret), "`{secret}` in /api/v1/status: {status}");
    }
    gw.stop().await;
}
