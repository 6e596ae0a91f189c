//! The gateway's front door over real HTTP on 127.0.0.1 (tracker issue 8): one deployed snapshot
//! (no per-token state for unknown tokens, disabled users refused), name limits that keep
//! `/metrics` and the audit log bounded, sessions bound to their token and capped, status and
//! deploys scoped to the token's project, `/metrics` auth and Host check with no SQL, the rate
//! limit, the body-read and request-head timeouts, and audit retention on every backend.
//! The upstream is the conformance test server (a real stdio child process).

use std::time::Duration;

use mcpctl_gateway::mcp::limits::RateLimit;
use mcpctl_gateway::{McpSettings, Options};
use reqwest::Method;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::harness::{answer, post, request, stateless, token_doc, Gw, INITIALIZE};

const ALICE: &str = "mcpctl_pat_front_alice_0123456789";
const BOB: &str = "mcpctl_pat_front_bob_0123456789ab";
const CAROL: &str = "mcpctl_pat_front_carol_0123456789";
const OTTO: &str = "mcpctl_pat_front_otto_01234567890";
const V: (&str, &str) = ("mcp-protocol-version", "2025-06-18");

/// `lab` (the conformance server `up`; Alice may audit, Bob may not, Carol's user is disabled)
/// and `other` (server `down`, unreachable at a URL with credentials in it; Otto's project).
fn yaml() -> String {
    let upstream = env!("CARGO_BIN_EXE_conformance-upstream");
    let run = "  bindings:\n    - {role: run, resource: servers}\n";
    format!(
        "apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: up}}\nspec: {{command: \"{upstream}\"}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: down}}\nspec: {{url: \"http://admin:hunter2@127.0.0.1:9/mcp?key=s3cret\"}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: lab}}\nspec: {{servers: [up]}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: other}}\nspec: {{servers: [down]}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {{name: carol}}\nspec: {{disabled: true}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {{name: dave}}\nspec: {{}}\n---\n\
         {}{}{}{}",
        token_doc("alice", "lab", ALICE, &format!("  user: dave\n{run}    - {{role: run, action: audit}}\n")),
        token_doc("bob", "lab", BOB, run),
        token_doc("carol", "lab", CAROL, &format!("  user: carol\n{run}")),
        token_doc("otto", "other", OTTO, &format!("{run}    - {{role: run, action: audit}}\n")),
    )
}

/// Open a session for `token`: its id.
async fn initialize(url: &str, token: &str) -> String {
    let r = post(url, Some(token), &[], INITIALIZE).await;
    assert_eq!(r.status(), 200);
    let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let _ = r.text().await;
    let r = post(url, Some(token), &[("mcp-session-id", &sid), V], r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;
    assert!(r.status().is_success(), "{}", r.status());
    sid
}

async fn call(url: &str, token: &str, sid: &str, name: &str) -> Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": name, "arguments": {}}});
    let r = post(url, Some(token), &[("mcp-session-id", sid), V], body.to_string()).await;
    assert_eq!(r.status(), 200);
    answer(r).await
}

async fn tools_list(url: &str, token: &str, sid: &str) -> reqwest::Response {
    post(url, Some(token), &[("mcp-session-id", sid), V], r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).await
}

async fn metrics(gw: &Gw) -> String {
    reqwest::get(format!("{}/metrics", gw.base)).await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tokens_leave_no_state_and_disabled_users_tokens_are_refused() {
    let gw = Gw::start(&yaml(), McpSettings::default()).await;
    let url = gw.url("lab");
    let snapshot = gw.state.snapshot();
    assert_eq!(snapshot.tokens.len(), 3, "alice, bob, otto: carol's user is disabled");

    // A disabled user's token: 401 on MCP and REST; an enabled user's token works.
    assert_eq!(post(&url, Some(CAROL), &[], INITIALIZE).await.status(), 401);
    assert_eq!(request(Method::GET, &format!("{}/api/v1/servers", gw.base), Some(CAROL), &[]).await.status(), 401);
    assert_eq!(post(&url, Some(ALICE), &[], INITIALIZE).await.status(), 200);
    let (buckets, owners) = (gw.state.limiter_len(), gw.state.endpoints.owned_sessions());

    // 20,000 unknown tokens, half on MCP, half on REST: every one a 401, none leaves state.
    let http = reqwest::Client::new();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (http, url, api) = (http.clone(), url.clone(), format!("{}/api/v1/servers", gw.base));
            tokio::spawn(async move {
                for i in 0..2500 {
                    let token = format!("mcpctl_pat_unknown_{t}_{i}");
                    let r = if i % 2 == 0 {
                        http.post(&url)
                            .bearer_auth(&token)
                            .header("content-type", "application/json")
                            .header("accept", "application/json, text/event-stream")
                            .body(INITIALIZE)
                            .send()
                            .await
                    } else {
                        http.get(&api).bearer_auth(&token).send().await
                    };
                    assert_eq!(r.unwrap().status(), 401);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let after = gw.state.snapshot();
    assert!(std::sync::Arc::ptr_eq(&snapshot, &after), "no request rebuilt or grew the snapshot");
    assert_eq!(after.tokens.len(), 3);
    assert_eq!(
        (gw.state.limiter_len(), gw.state.endpoints.owned_sessions()),
        (buckets, owners),
        "no per-token bucket or session for unknown tokens"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_names_are_refused_and_unknown_names_grow_neither_metrics_nor_audit() {
    let gw = Gw::start(&yaml(), McpSettings::default()).await;
    let url = gw.url("lab");
    let sid = initialize(&url, ALICE).await;
    // Lists cached: a known tool is a metric label of its own.
    let mut listed = false;
    for _ in 0..100 {
        let v = answer(tools_list(&url, ALICE, &sid).await).await;
        if v.to_string().contains("test_simple_text") {
            listed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(listed, "the conformance upstream lists its tools");
    let v = call(&url, ALICE, &sid, "up__test_simple_text").await;
    assert!(v.to_string().contains("simple text response"), "{v}");

    // A 1 MiB name and names just over the limit: -32602 at the front door, nothing recorded.
    gw.state.auditor.flush().await;
    let audited = |gw: &Gw| {
        let store = gw.store.clone();
        async move { store.audit_events(&reconciler::audit::AuditFilter { limit: 1000, ..Default::default() }).await.unwrap() }
    };
    let before = audited(&gw).await.len();
    let huge = "n".repeat(1024 * 1024);
    let v = call(&url, ALICE, &sid, &huge).await;
    assert_eq!(v["error"]["code"], -32602, "{}", &v.to_string()[..200]);
    assert!(v["error"]["message"].as_str().unwrap().contains("at most 512"), "{}", &v.to_string()[..200]);
    for i in 0..50 {
        let name = format!("up__{i:04}{}", "o".repeat(600));
        let v = call(&url, ALICE, &sid, &name).await;
        assert!(v["error"]["message"].as_str().unwrap().contains("at most 512"), "{}", &v.to_string()[..200]);
        let uri = format!("file:///{i}{}", "u".repeat(5000));
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": uri}});
        let r = answer(post(&url, Some(ALICE), &[("mcp-session-id", &sid), V], body.to_string()).await).await;
        assert!(r["error"]["message"].as_str().unwrap().contains("at most 4096"), "{}", &r.to_string()[..200]);
    }
    gw.state.auditor.flush().await;
    assert_eq!(audited(&gw).await.len(), before, "refused at the front door: not audited");

    // Unknown names within the limit reach the handler: audited (bounded), counted as `(unknown)`.
    call(&url, ALICE, &sid, &format!("zz_unknown_{}", "a".repeat(400))).await;
    call(&url, ALICE, &sid, &format!("up__zz_unknown_{}", "a".repeat(400))).await;
    let _ = metrics(&gw).await;
    let m1 = metrics(&gw).await;
    for i in 0..100 {
        // Half are routed to `up` (which does not know them), half to no server at all.
        let prefix = if i % 2 == 0 { "up__" } else { "" };
        call(&url, ALICE, &sid, &format!("{prefix}zz_unknown_{i}_{}", "b".repeat(400))).await;
    }
    let m2 = metrics(&gw).await;
    assert!(m2.contains("target=\"test_simple_text\""), "known tools keep their label");
    assert!(m2.contains("target=\"(unknown)\""), "{m2}");
    assert!(!m2.contains("zz_unknown") && !m2.contains("oooo") && !m2.contains("nnnn"), "no caller-chosen name is a label");
    assert_eq!(m1.lines().count(), m2.lines().count(), "100 more unknown names added no series");
    gw.state.auditor.flush().await;
    let events = audited(&gw).await;
    assert!(events.iter().all(|e| e.target.len() <= mcpctl_gateway::audit::MAX_TARGET_BYTES
        && e.error.as_ref().is_none_or(|x| x.len() <= mcpctl_gateway::audit::MAX_ERROR_BYTES)));
    assert!(events.iter().any(|e| e.target.starts_with("zz_unknown_98_") && e.server == "up"), "forwarded, audited under its server");
    assert!(events.iter().any(|e| e.target.starts_with("zz_unknown_99_") && e.outcome == "denied"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_bound_to_their_token_and_never_leave_through_the_api() {
    let gw = Gw::start(&yaml(), McpSettings::default()).await;
    let url = gw.url("lab");
    let sid = initialize(&url, ALICE).await;
    assert_eq!(tools_list(&url, ALICE, &sid).await.status(), 200);

    // Bob (same project) can neither use, stream nor delete Alice's session.
    assert_eq!(tools_list(&url, BOB, &sid).await.status(), 404);
    assert_eq!(request(Method::GET, &url, Some(BOB), &[("mcp-session-id", &sid), V]).await.status(), 404);
    assert_eq!(request(Method::DELETE, &url, Some(BOB), &[("mcp-session-id", &sid), V]).await.status(), 404);
    assert_eq!(tools_list(&url, ALICE, &sid).await.status(), 200, "Alice's session survives");

    // The audit API shows Alice's events without session ids.
    gw.state.auditor.flush().await;
    let r = request(Method::GET, &format!("{}/api/v1/auditevents", gw.base), Some(ALICE), &[]).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let items = v["items"].as_array().unwrap();
    assert!(items.iter().any(|e| e["method"] == "initialize"), "{text}");
    assert!(items.iter().all(|e| e.get("session").is_none()), "{text}");
    assert!(!text.contains(&sid), "the session id never leaves through the API");
    assert!(
        gw.store
            .audit_events(&reconciler::audit::AuditFilter { limit: 10, ..Default::default() })
            .await
            .unwrap()
            .iter()
            .any(|e| e.session == sid),
        "the store keeps it for operators"
    );

    // Alice ends her own session.
    let owned = gw.state.endpoints.owned_sessions();
    assert!(request(Method::DELETE, &url, Some(ALICE), &[("mcp-session-id", &sid), V]).await.status().is_success());
    assert_eq!(gw.state.endpoints.owned_sessions(), owned - 1);
    assert_eq!(tools_list(&url, ALICE, &sid).await.status(), 404);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_over_its_session_cap_loses_its_least_recently_used_session() {
    let gw = Gw::start(&yaml(), McpSettings { max_sessions_per_token: 2, ..McpSettings::default() }).await;
    let url = gw.url("lab");
    let s1 = initialize(&url, ALICE).await;
    let s2 = initialize(&url, ALICE).await;
    let b1 = initialize(&url, BOB).await;
    assert_eq!(tools_list(&url, ALICE, &s1).await.status(), 200, "s1 is now the most recently used");
    let s3 = initialize(&url, ALICE).await;
    assert_eq!(tools_list(&url, ALICE, &s2).await.status(), 404, "s2 was closed");
    assert_eq!(tools_list(&url, ALICE, &s1).await.status(), 200);
    assert_eq!(tools_list(&url, ALICE, &s3).await.status(), 200);
    assert_eq!(tools_list(&url, BOB, &b1).await.status(), 200, "another token's sessions are not touched");
    assert_eq!(gw.state.endpoints.owned_sessions(), 3);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_is_closed_after_the_idle_timeout() {
    let gw = Gw::start(&yaml(), McpSettings { session_idle_timeout: Duration::from_millis(500), ..McpSettings::default() }).await;
    let url = gw.url("lab");
    // Warm the upstream (lists cached) so no request below waits on it.
    let warm = initialize(&url, BOB).await;
    assert_eq!(tools_list(&url, BOB, &warm).await.status(), 200);
    let busy = initialize(&url, ALICE).await;
    let idle = initialize(&url, ALICE).await;
    for _ in 0..12 {
        assert_eq!(tools_list(&url, ALICE, &busy).await.status(), 200, "traffic keeps a session open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(tools_list(&url, ALICE, &idle).await.status(), 404, "closed after 500 ms without traffic");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_deploys_are_scoped_to_the_token_project() {
    let gw = Gw::start(&yaml(), McpSettings::default()).await;
    let meta = reconciler::DeployMeta { revision: "bad".into(), actor: "test".into(), message: None, commit: None };
    gw.store.record_failure(&meta, "projects/other.yaml:1:1: Project/other: secret-ish detail").await.unwrap();
    gw.state.refresh_status().await.unwrap();
    let get = |path: &str, token: &'static str| {
        let url = format!("{}{path}", gw.base);
        async move { request(Method::GET, &url, Some(token), &[]).await }
    };

    // Connect attempts to `down` fail: its error stays with project `other`.
    let _ = gw.state.upstreams.get("down").unwrap().tools().await;
    let lab: Value = get("/api/v1/status", ALICE).await.json().await.unwrap();
    let servers: Vec<&str> = lab["upstreams"].as_array().unwrap().iter().map(|u| u["server"].as_str().unwrap()).collect();
    assert_eq!(servers, ["up"], "{lab}");
    assert_eq!(
        (lab["lastAttempted"].as_str(), lab["lastOutcome"].as_str(), lab["deployed"].as_str()),
        (Some("bad"), Some("failed"), Some("rev-1"))
    );
    let other = get("/api/v1/status", OTTO).await.text().await.unwrap();
    assert!(other.contains("\"down\"") && !other.contains("\"up\""), "{other}");
    assert!(!other.contains("hunter2") && !other.contains("s3cret"), "URLs are redacted: {other}");

    let deploys = get("/api/v1/deploys", ALICE).await.text().await.unwrap();
    assert!(!deploys.contains("secret-ish"), "{deploys}");
    let v: Value = serde_json::from_str(&deploys).unwrap();
    assert_eq!(v["items"][0]["errorHidden"], true, "{deploys}");
    assert_eq!(get("/api/v1/deploys", BOB).await.status(), 403, "needs the audit action");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_requires_its_token_obeys_the_host_allowlist_and_runs_no_sql() {
    let gw = Gw::start_with(&yaml(), Options { metrics_token: Some("scrape-me".into()), ..Options::default() }).await;
    let m = format!("{}/metrics", gw.base);
    let r = request(Method::GET, &m, None, &[]).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    assert_eq!(request(Method::GET, &m, Some("wrong"), &[]).await.status(), 401);
    assert_eq!(request(Method::GET, &m, Some("scrape-me"), &[]).await.status(), 200);
    assert_eq!(request(Method::GET, &m, Some("scrape-me"), &[("host", "evil.example")]).await.status(), 403);
    // With the database gone, a scrape still answers from memory.
    gw.store.pool().close().await;
    let r = request(Method::GET, &m, Some("scrape-me"), &[]).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("mcpctl_deployed_info{revision=\"rev-1\",outcome=\"applied\"} 1"), "{text}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_over_its_rate_gets_429_with_retry_after() {
    let slow = RateLimit { per_second: 0.01, burst: 3.0 };
    let gw = Gw::start(&yaml(), McpSettings { rate_limit: Some(slow), ..McpSettings::default() }).await;
    let url = gw.url("lab");
    for _ in 0..3 {
        assert_eq!(post(&url, Some(ALICE), &[], INITIALIZE).await.status(), 200);
    }
    let r = post(&url, Some(ALICE), &[], INITIALIZE).await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=100).contains(&wait), "{wait}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32000, "{v}");
    assert_eq!(post(&url, Some(BOB), &[], INITIALIZE).await.status(), 200, "per token");
    gw.stop().await;
}

/// Send `head` on a raw connection, then nothing: what the server answers (or "" if it closed).
async fn stall(base: &str, head: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .expect("the server ends the connection")
        .unwrap_or_default();
    String::from_utf8_lossy(&buf).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_gets_408_and_a_stalled_head_is_cut() {
    let options = Options {
        mcp: McpSettings { body_read_timeout: Duration::from_millis(500), ..McpSettings::default() },
        request_head_timeout: Duration::from_secs(1),
        ..Options::default()
    };
    let gw = Gw::start_with(&yaml(), options).await;
    let host = gw.base.trim_start_matches("http://").to_string();
    let head = format!(
        "POST /projects/lab/mcp HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ALICE}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{{\"jsonrpc\""
    );
    let answer = stall(&gw.base, &head).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let answer = stall(&gw.base, &format!("POST /projects/lab/mcp HTTP/1.1\r\nHost: {host}\r\n")).await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    // The gateway still serves.
    assert_eq!(post(&gw.url("lab"), Some(ALICE), &[], INITIALIZE).await.status(), 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_ends_open_sse_streams_instead_of_waiting_on_them() {
    let mut gw = Gw::start(&yaml(), McpSettings::default()).await;
    let url = gw.url("lab");
    let sid = initialize(&url, ALICE).await;
    let stream = request(Method::GET, &url, Some(ALICE), &[("mcp-session-id", &sid), V]).await;
    assert_eq!(stream.status(), 200);
    assert!(gw.stop_serving_within(Duration::from_secs(5)).await, "serve returned with an SSE stream open");
    drop(stream);
    gw.stop().await;
}

#[tokio::test]
async fn audit_retention_deletes_old_events_in_batches_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let mut stores = vec![reconciler::Store::connect(&reconciler::store::sqlite_url(&dir.path().join("a.db"))).await.unwrap()];
    match std::env::var("MCPCTL_TEST_DATABASE_URL") {
        Ok(url) => stores.push(reconciler::Store::connect(&url).await.unwrap()),
        Err(_) => eprintln!("MCPCTL_TEST_DATABASE_URL not set: skipping the Postgres half of this test"),
    }
    let project = format!("retention-{}", std::process::id());
    for store in stores {
        let event = |at: String| reconciler::audit::AuditEvent {
            id: 0,
            at,
            project: project.clone(),
            token: "t".into(),
            token_prefix: "-".into(),
            session: "-".into(),
            method: "tools/call".into(),
            server: "s".into(),
            target: "x".into(),
            duration_us: 1,
            outcome: "ok".into(),
            error: None,
            revision: "r".into(),
            thread: None,
        };
        let now = chrono::Utc::now();
        let stamp = |d: chrono::Duration| (now - d).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let old: Vec<_> = (0..2500).map(|i| event(stamp(chrono::Duration::days(31) + chrono::Duration::seconds(i)))).collect();
        let recent: Vec<_> = (0..3).map(|i| event(stamp(chrono::Duration::days(29) - chrono::Duration::seconds(i)))).collect();
        store.insert_audit(&old).await.unwrap();
        store.insert_audit(&recent).await.unwrap();
        let filter = reconciler::audit::AuditFilter { project: Some(project.clone()), limit: 10_000, ..Default::default() };
        let mine = || store.audit_events(&filter);
        assert_eq!(mine().await.unwrap().len(), 2503);
        let deleted = mcpctl_gateway::audit::prune(&store, mcpctl_gateway::state::DEFAULT_AUDIT_RETENTION).await.unwrap();
        assert!(deleted >= 2500, "{deleted}");
        let left = mine().await.unwrap();
        assert_eq!(left.len(), 3, "{:?}", store.backend());
        assert_eq!(mcpctl_gateway::audit::prune(&store, mcpctl_gateway::state::DEFAULT_AUDIT_RETENTION).await.unwrap(), 0);
    }
}

/// [`stateless`] with the arguments of the conformance server's tools.
async fn stateless_call(url: &str, token: &str, name: &str, extra: &[(&str, &str)]) -> (u16, String, Value) {
    stateless(url, token, name, serde_json::json!({"prompt": "hi"}), extra).await
}

/// The direct answer of a stateless `tools/call` is the answer rmcp gives the same request (an
/// allowed loopback `Origin` sends it through rmcp): results, upstream errors, unknown names,
/// with the same audit rows; a request the upstream sends meanwhile is refused and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_call_answered_directly_equals_rmcps_answer_and_is_audited_alike() {
    let gw = Gw::start(&yaml(), McpSettings::default()).await;
    let url = gw.url("lab");
    let through_rmcp = [("origin", "http://127.0.0.1:9")];
    // Wait for the upstream (a call before it runs fails alike on both paths, but slowly).
    for _ in 0..100 {
        if stateless_call(&url, ALICE, "up__test_simple_text", &[]).await.2.to_string().contains("simple text response") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    gw.state.auditor.flush().await;
    let audit = reconciler::audit::AuditFilter { limit: 1000, ..Default::default() };
    let before = gw.store.audit_events(&audit).await.unwrap().len();
    let names =
        ["up__test_simple_text", "up__test_error_handling", "up__test_multiple_content_types", "up__no_such_tool", "no_such_server"];
    for name in names {
        let direct = stateless_call(&url, ALICE, name, &[]).await;
        let rmcp = stateless_call(&url, ALICE, name, &through_rmcp).await;
        assert_eq!(direct, rmcp, "{name}: direct vs rmcp");
        assert_eq!(direct.0, 200, "{name}");
        assert!(direct.1.starts_with("application/json"), "{name}: {}", direct.1);
        assert_eq!(direct.2["id"], 41, "{name}");
    }
    let ok = stateless_call(&url, ALICE, "up__test_simple_text", &[]).await.2;
    assert_eq!(ok["result"]["resultType"], "complete", "{ok}");
    assert_eq!(stateless_call(&url, ALICE, "no_such_server", &[]).await.2["error"]["code"], -32602);

    // Each pair left two audit rows alike but for time, duration and id.
    gw.state.auditor.flush().await;
    let mut events = gw.store.audit_events(&audit).await.unwrap();
    events.truncate(events.len() - before);
    events.reverse();
    let rows: Vec<_> = events
        .iter()
        .map(|e| (&e.project, &e.token, &e.token_prefix, &e.session, &e.method, &e.server, &e.target, &e.outcome, &e.error, &e.revision))
        .collect();
    assert_eq!(rows.len(), 2 * names.len() + 2, "every call audited once");
    for pair in rows[..2 * names.len()].chunks(2) {
        assert_eq!(pair[0], pair[1]);
    }
    assert_eq!(events[0].session, "-");
    assert_eq!((events[0].outcome.as_str(), events[0].token.as_str()), ("ok", "alice"));
    assert!(events.iter().any(|e| e.target == "no_such_server" && e.outcome == "denied"));

    // Tokens are judged before either path: another project's token, no token.
    assert_eq!(stateless_call(&url, OTTO, "up__test_simple_text", &[]).await.0, 403);
    let r = post(&url, None, &[("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", "x")], "{}").await;
    assert_eq!(r.status(), 401);

    // The upstream's sampling request during a direct call has no stream to go to: refused.
    let refused = |gw: &Gw| {
        gw.state.upstreams.health().iter().find(|h| h.server == "up").and_then(|h| h.unroutable.get("sampling").copied()).unwrap_or(0)
    };
    let n = refused(&gw);
    let v = stateless_call(&url, ALICE, "up__test_sampling", &[]).await.2;
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("sampling failed"), "{v}");
    assert_eq!(refused(&gw), n + 1);
    gw.stop().await;
}
