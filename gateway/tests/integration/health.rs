//! Health checks and replicas with real processes: a server that answers `initialize` and then
//! hangs (tests/fixtures/hung_server.py) is found by MCP-level checks and restarted while
//! `mcp-server-time` is left alone; a server with `replicas: 2` (tests/fixtures/pid_server.py,
//! official Python SDK) runs two processes that share stateless calls, pin a session to one, and
//! restart independently.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mcpctl_gateway::upstream::health::State;
use mcpctl_gateway::McpSettings;
use reconciler::runtime::ProcessState;

use crate::harness::*;

const ALICE: &str = "mcpctl_pat_alice_0123456789abcdef";

fn fixture(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name).display().to_string()
}

fn pid_of(state: &ProcessState) -> Option<u32> {
    match state {
        ProcessState::Running { pid } => Some(*pid),
        _ => None,
    }
}

/// Poll `done` (every 200 ms) until it holds; fail naming `what` after 60 s.
async fn eventually<T>(what: &str, mut done: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = done() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_is_detected_and_restarted_a_healthy_one_is_not() {
    let (Some(python), Some(time)) = (peer("MCPCTL_PEER_PYTHON"), peer("MCPCTL_PEER_TIME")) else { return };
    let health = "health: {intervalSeconds: 1, timeoutSeconds: 1, failureThreshold: 2}";
    let yaml = format!(
        "apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: hung}}\nspec: {{command: \"{python}\", args: [\"{}\"], {health}}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: time}}\nspec: {{command: \"{time}\", {health}}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: lab}}\nspec: {{servers: [hung, time]}}\n---\n{}",
        fixture("hung_server.py"),
        token_doc("alice", "lab", ALICE, "")
    );
    let gw = Gw::start(&yaml, McpSettings::default()).await;
    let status = |name: &str| gw.runtime.status().into_iter().find(|s| s.name == name).expect("supervised");
    let first_hung = eventually("hung starts", || pid_of(&status("hung").state)).await;
    let first_time = eventually("time starts", || pid_of(&status("time").state)).await;

    // The hung server's process stays alive; only the MCP checks can tell. It is killed and
    // started again: a new pid.
    let second_hung = eventually("hung is restarted", || pid_of(&status("hung").state).filter(|p| *p != first_hung)).await;
    assert_ne!(first_hung, second_hung);
    assert!(status("hung").restarts >= 1);

    // Meanwhile the healthy server passed several checks and was left alone.
    let h =
        eventually("time passes 3 checks", || gw.state.upstreams.health().into_iter().find(|h| h.server == "time" && h.check.checks >= 3))
            .await;
    assert_eq!(h.health, State::Healthy, "{h:?}");
    assert_eq!((h.check.consecutive_failures, h.check.restarts), (0, 0), "{h:?}");
    assert_eq!(pid_of(&status("time").state), Some(first_time));
    assert_eq!(status("time").restarts, 0);

    // The checks' view of the hung one: its restarts and why, in the status API and the metrics.
    let hung = gw.state.upstreams.health().into_iter().find(|h| h.server == "hung").unwrap();
    assert!(hung.check.restarts >= 1, "{hung:?}");
    assert_ne!(hung.health, State::Healthy);
    let api: serde_json::Value =
        reqwest::Client::new().get(format!("{}/api/v1/status", gw.base)).bearer_auth(ALICE).send().await.unwrap().json().await.unwrap();
    let ups = api["upstreams"].as_array().unwrap();
    let hung_api = ups.iter().find(|u| u["server"] == "hung").unwrap();
    assert!(hung_api["check"]["restarts"].as_u64().unwrap() >= 1, "{api}");
    assert_eq!(ups.iter().find(|u| u["server"] == "time").unwrap()["health"], "healthy", "{api}");
    let metrics = reqwest::get(format!("{}/metrics", gw.base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"mcpctl_upstream_healthy{server="time"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"mcpctl_upstream_healthy{server="hung"} 0"#), "{metrics}");

    // The transition is audited in the project that exposes the server, with the failed check.
    let events = eventually_async(|| async {
        gw.state.auditor.flush().await;
        let events = gw
            .store
            .audit_events(&reconciler::audit::AuditFilter { project: Some("lab".into()), limit: 100, ..Default::default() })
            .await
            .unwrap();
        events.into_iter().find(|e| e.method == "health" && e.server == "hung" && e.outcome == "restarted")
    })
    .await;
    assert!(events.error.as_deref().is_some_and(|e| e.contains("ping")), "{events:?}");
    assert!(!gw
        .store
        .audit_events(&reconciler::audit::AuditFilter { project: Some("lab".into()), limit: 100, ..Default::default() })
        .await
        .unwrap()
        .iter()
        .any(|e| e.method == "health" && e.server == "time"));

    // And stored for `mcpctl status` (runtime `health`).
    let stored = gw.store.server_status().await.unwrap();
    let row = stored.iter().find(|(rt, server, _, _)| rt == "health" && server == "hung").expect("health stored");
    assert!(row.2["check"]["restarts"].as_u64().unwrap() >= 1, "{row:?}");
    gw.stop().await;
}

/// Poll an async `done` until it yields; fail after 60 s.
async fn eventually_async<T, F: std::future::Future<Output = Option<T>>>(mut done: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = done().await {
            return v;
        }
        assert!(Instant::now() < deadline, "never happened");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One stateless (2026-07-28) `tools/call` of `pid`; the pid it answered.
async fn stateless_pid(url: &str, id: usize) -> u32 {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "pid", "arguments": {"delay_ms": 300},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
    let r = post(
        url,
        Some(ALICE),
        &[("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", "pid")],
        body.to_string(),
    )
    .await;
    let text = r.text().await.unwrap();
    let json = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or(&text);
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {text}"));
    v["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("{v}")).parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_run_as_processes_that_share_calls_pin_sessions_and_restart_alone() {
    let Some(python) = peer("MCPCTL_PEER_PYTHON") else { return };
    let yaml = format!(
        "apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: pid}}\nspec: {{command: \"{python}\", args: [\"{}\"], replicas: 2}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: lab}}\nspec: {{servers: [pid], prefixTools: false}}\n---\n{}",
        fixture("pid_server.py"),
        token_doc("alice", "lab", ALICE, "  bindings:\n    - {role: run, resource: servers}\n")
    );
    let gw = Gw::start(&yaml, McpSettings::default()).await;
    let url = gw.url("lab");
    let replica_pids = || -> Option<Vec<u32>> {
        let s = gw.runtime.status().into_iter().find(|s| s.name == "pid")?;
        s.replicas.iter().map(|r| pid_of(&r.state)).collect()
    };
    let pids = eventually("two processes run", || replica_pids().filter(|p| p.len() == 2)).await;
    assert_ne!(pids[0], pids[1]);
    eventually("both replicas connect", || {
        gw.state
            .upstreams
            .health()
            .into_iter()
            .find(|h| h.server == "pid" && h.replicas.len() == 2 && h.replicas.iter().all(|r| r.connected))
    })
    .await;

    // Concurrent stateless calls are spread over both processes (least in flight).
    let calls = (0..8).map(|i| {
        let url = url.clone();
        tokio::spawn(async move { stateless_pid(&url, i).await })
    });
    let mut answered = BTreeSet::new();
    for c in calls {
        answered.insert(c.await.unwrap());
    }
    assert_eq!(answered, pids.iter().copied().collect::<BTreeSet<u32>>(), "calls went to {answered:?}, processes are {pids:?}");

    // A session is pinned to one replica.
    let c = rust_client(&url, ALICE).await;
    let mut seen = BTreeSet::new();
    for _ in 0..4 {
        let mut req = rmcp::model::CallToolRequestParams::new("pid");
        req.arguments = serde_json::json!({"delay_ms": 0}).as_object().cloned();
        let r = c.call_tool(req).await.unwrap();
        seen.insert(r.content[0].as_text().unwrap().text.clone());
    }
    let _ = c.cancel().await;
    assert_eq!(seen.len(), 1, "one session, one process: {seen:?}");

    // Replicas restart alone: killing the second leaves the first running.
    std::process::Command::new("kill").arg("-9").arg(pids[1].to_string()).status().unwrap();
    let after = eventually("replica 1 restarts", || replica_pids().filter(|p| p.len() == 2 && p[1] != pids[1])).await;
    assert_eq!(after[0], pids[0]);
    let s = gw.runtime.status().into_iter().find(|s| s.name == "pid").unwrap();
    assert_eq!((s.replicas[0].restarts, s.replicas[1].restarts), (0, 1));
    gw.stop().await;
}
