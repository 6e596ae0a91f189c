//! Chat with agents end to end: a real LiteLLM proxy (one per test binary, started on first use)
//! with a scripted model (tests/fixtures/litellm/mock_llm.py) as the provider, `mcp-server-time`
//! as the agent's tool, the official `openai` Python client against `/v1`; a tiny in-test HTTP
//! server for what LiteLLM cannot be made to do (429 with Retry-After, 401).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcpctl_gateway::chat::ChatSettings;
use mcpctl_gateway::{McpSettings, Options};
use serde_json::{json, Value};

use crate::harness::*;

const ALICE: &str = "mcpctl_pat_chat_alice_0123456789abcdef";
const BOB: &str = "mcpctl_pat_chat_bob_0123456789abcdef";
const CAROL: &str = "mcpctl_pat_chat_carol_0123456789abcdef";
const MASTER_KEY: &str = "sk-test-1234";

/// The LiteLLM proxy of this test binary.
struct LiteLlm {
    base: String,
    /// Its stdin: when the test binary exits the pipe closes and the wrapper stops the proxy.
    _stdin: std::process::ChildStdin,
    _child: std::process::Child,
    _dir: tempfile::TempDir,
}

static LITELLM: std::sync::OnceLock<Option<LiteLlm>> = std::sync::OnceLock::new();

/// The shared proxy (started on first use, ~6 s), or `None` (skipped) without the peer.
fn litellm() -> Option<&'static LiteLlm> {
    LITELLM.get_or_init(start_litellm).as_ref()
}

fn start_litellm() -> Option<LiteLlm> {
    let bin = peer("MCPCTL_PEER_LITELLM")?;
    let dir = tempfile::tempdir().unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/litellm/run.sh");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new("sh")
        .arg(script)
        .args([bin.as_str(), &port.to_string(), &dir.path().display().to_string(), MASTER_KEY])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("litellm starts");
    let stdin = child.stdin.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !alive(port) {
        let log = || std::fs::read_to_string(dir.path().join("litellm.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "LiteLLM did not start: {}", log());
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(LiteLlm { base: format!("http://127.0.0.1:{port}"), _stdin: stdin, _child: child, _dir: dir })
}

/// Whether LiteLLM answers its liveness probe on `port`.
fn alive(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.write_all(b"GET /health/liveliness HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200")
}

fn demo_identity() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/homelab/.mcpctl/demo-age-identity.txt")
}

/// `value` sealed to the demo recipient, indented for a YAML block scalar.
fn sealed(value: &str) -> String {
    let text = std::fs::read_to_string(demo_identity()).unwrap();
    let recipient = reconciler::secrets::plaintext::recipient_of(&text).unwrap();
    let armored = reconciler::secrets::plaintext::seal(&recipient, value).unwrap();
    armored.lines().map(|l| format!("      {l}\n")).collect()
}

fn options() -> Options {
    let secrets = reconciler::secrets::SecretResolver::from_file(&demo_identity()).unwrap();
    Options { mcp: McpSettings::default(), chat: ChatSettings { secrets, ..Default::default() }, ..Default::default() }
}

/// Project `lab` with the `time` server, an `Llm` (`provider`, `model` at `url`, key sealed in a
/// Secret), agent `assistant` (personalities `concise` (default) and `teacher`), and tokens:
/// alice (user alice: chat, run servers), bob (chat, may view but not run servers), carol (chat).
fn lab(time: &str, provider: &str, url: &str, model: &str, max_iterations: u32) -> String {
    format!(
        r#"apiVersion: mcpctl.io/v1
kind: Server
metadata: {{name: time}}
spec: {{command: "{time}"}}
---
apiVersion: mcpctl.io/v1
kind: Project
metadata: {{name: lab}}
spec: {{servers: [time], gated: true, instructions: "Lab rules."}}
---
apiVersion: mcpctl.io/v1
kind: SecretBackend
metadata: {{name: git}}
spec: {{type: plaintext, isDefault: true}}
---
apiVersion: mcpctl.io/v1
kind: Secret
metadata: {{name: llm-key}}
spec:
  backend: git
  data:
    key: |
{key}---
apiVersion: mcpctl.io/v1
kind: Llm
metadata: {{name: proxy}}
spec: {{provider: {provider}, model: {model}, url: "{url}", apiKey: {{secretRef: {{name: llm-key, key: key}}}}, timeoutSeconds: 30}}
---
apiVersion: mcpctl.io/v1
kind: Agent
metadata: {{name: assistant, project: lab}}
spec: {{llm: proxy, systemPrompt: "AGENT-PROMPT", sampling: {{temperature: 0.3}}, defaultPersonality: concise, maxToolIterations: {max_iterations}}}
---
apiVersion: mcpctl.io/v1
kind: Personality
metadata: {{name: concise, project: lab}}
spec: {{agent: assistant, systemPrompt: "CONCISE-PROMPT", sampling: {{temperature: 0.1}}}}
---
apiVersion: mcpctl.io/v1
kind: Personality
metadata: {{name: teacher, project: lab}}
spec: {{agent: assistant, systemPrompt: "TEACHER-PROMPT", sampling: {{temperature: 0.7}}}}
---
apiVersion: mcpctl.io/v1
kind: User
metadata: {{name: alice}}
spec: {{}}
---
{alice}{bob}{carol}"#,
        key = sealed(MASTER_KEY),
        alice = token_doc(
            "alice",
            "lab",
            ALICE,
            "  user: alice\n  bindings:\n    - {role: run, action: chat}\n    - {role: run, resource: servers}\n"
        ),
        bob = token_doc(
            "bob",
            "lab",
            BOB,
            "  bindings:\n    - {role: run, resource: agents, name: assistant}\n    - {role: view, resource: servers}\n"
        ),
        carol = token_doc("carol", "lab", CAROL, "  bindings:\n    - {role: run, action: chat}\n"),
    )
}

/// Events of an SSE answer, as (name, data).
async fn sse(resp: reqwest::Response) -> Vec<(String, Value)> {
    assert_eq!(resp.status(), 200, "{:?}", resp.headers());
    let text = resp.text().await.unwrap();
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let (mut name, mut data) = (String::from("message"), String::new());
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event:") {
                name = n.trim().to_string();
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d.trim_start());
            }
        }
        if !data.is_empty() {
            out.push((name, serde_json::from_str(&data).unwrap_or(Value::String(data))));
        }
    }
    out
}

async fn chat(gw: &Gw, token: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new().post(format!("{}/api/v1/agents/assistant/chat", gw.base)).bearer_auth(token).json(&body).send().await.unwrap()
}

async fn get(gw: &Gw, token: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new().get(format!("{}{path}", gw.base)).bearer_auth(token).send().await.unwrap()
}

fn deltas(events: &[(String, Value)]) -> String {
    events.iter().filter(|(n, _)| n == "delta").map(|(_, d)| d["text"].as_str().unwrap()).collect()
}

const CALL_TIME: &str = r#"What time is it? CALL:time__get_current_time:{"timezone":"UTC"};;"#;

#[tokio::test]
async fn chat_streams_tool_calls_through_the_mcp_path_and_keeps_the_thread() {
    let (Some(ll), Some(time)) = (litellm(), peer("MCPCTL_PEER_TIME")) else { return };
    let gw = Gw::start_with(&lab(&time, "openai", &format!("{}/v1", ll.base), "scripted", 10), options()).await;

    // Streamed, with the time server's tool (the project is gated: the agent's session is open).
    let events = sse(chat(&gw, ALICE, json!({"message": CALL_TIME, "stream": true})).await).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"thread"), "{events:?}");
    assert_eq!(names.last(), Some(&"done"), "{events:?}");
    let thread = events[0].1["threadId"].as_str().unwrap().to_string();
    let start = events.iter().find(|(n, _)| n == "tool_call_start").expect("a tool call").1.clone();
    assert_eq!(start["name"], "time__get_current_time");
    let end = events.iter().find(|(n, _)| n == "tool_call_end").unwrap().1.clone();
    assert_eq!(end["isError"], false, "{end}");
    assert!(end["content"].as_str().unwrap().contains("UTC"), "{end}");
    let text = deltas(&events);
    assert!(text.starts_with("tool said: ") && text.contains("UTC"), "{text}");
    let done = &events.last().unwrap().1;
    assert_eq!(done["threadId"], thread.as_str());
    assert_eq!(done["personality"], "concise");
    assert!(done["usage"]["promptTokens"].as_i64().unwrap() > 0, "{done}");

    // The tool call is audited with the thread id, as a tools/call of the token.
    gw.state.auditor.flush().await;
    let audited = gw
        .store
        .audit_events(&reconciler::audit::AuditFilter { thread: Some(thread.clone()), limit: 100, ..Default::default() })
        .await
        .unwrap();
    let call = audited.iter().find(|e| e.method == "tools/call").expect("the tool call is audited");
    assert_eq!((call.server.as_str(), call.target.as_str(), call.outcome.as_str()), ("time", "get_current_time", "ok"));
    assert_eq!(call.token, "alice");

    // Same thread, switching personality, not streamed: the teacher's prompt and sampling apply.
    let r = chat(&gw, ALICE, json!({"message": "and now?", "threadId": thread, "personality": "teacher"})).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    let content = answer["content"].as_str().unwrap();
    assert!(content.contains("TEACHER-PROMPT") && !content.contains("CONCISE-PROMPT"), "{content}");
    assert!(content.contains("AGENT-PROMPT") && content.contains("temperature: 0.7"), "{content}");
    assert_eq!(answer["personality"], "teacher");
    // A per-call sampling override wins over the personality.
    let r: Value =
        chat(&gw, ALICE, json!({"message": "x", "threadId": thread, "sampling": {"temperature": 1.5}})).await.json().await.unwrap();
    assert!(r["content"].as_str().unwrap().contains("temperature: 1.5"), "{r}");
    assert_eq!(r["personality"], "teacher", "the thread keeps its personality");
    // Extra provider parameters reach the provider; one the gateway sets itself is refused.
    let r: Value =
        chat(&gw, ALICE, json!({"message": "x", "threadId": thread, "sampling": {"extra": {"top_k": 7}}})).await.json().await.unwrap();
    assert!(r["content"].as_str().unwrap().contains("top_k: 7"), "{r}");
    let r = chat(&gw, ALICE, json!({"message": "x", "threadId": thread, "sampling": {"extra": {"model": "gpt-5"}}})).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("`model` is set by the gateway"));

    // The thread, listed and read back whole.
    let list: Value = get(&gw, ALICE, "/api/v1/threads").await.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], thread.as_str());
    assert_eq!(list[0]["title"], CALL_TIME);
    let t: Value = get(&gw, ALICE, &format!("/api/v1/threads/{thread}")).await.json().await.unwrap();
    let roles: Vec<&str> = t["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    let (turn, tool_turn) = (["user", "assistant"], ["user", "assistant", "tool", "assistant"]);
    assert_eq!(roles, [&tool_turn[..], &turn, &turn, &turn].concat(), "{t}");
    assert!(t["messages"].as_array().unwrap().iter().all(|m| m["status"] == "complete"), "{t}");
    assert_eq!(t["messages"][1]["toolCalls"][0]["name"], "time__get_current_time");
    assert_eq!(t["messages"][2]["toolCallId"], t["messages"][1]["toolCalls"][0]["id"]);
    assert_eq!(t["messages"][5]["personality"], "teacher");
    assert!(t["messages"][3]["latencyMs"].is_i64());

    // Another owner's thread does not exist for them; audit holders are not involved here.
    assert_eq!(get(&gw, CAROL, &format!("/api/v1/threads/{thread}")).await.status(), 404);
    assert_eq!(get(&gw, CAROL, "/api/v1/threads").await.json::<Value>().await.unwrap(), json!([]));
    assert_eq!(chat(&gw, CAROL, json!({"message": "hi", "threadId": thread})).await.status(), 404);
    gw.stop().await;
}

#[tokio::test]
async fn a_tool_the_caller_may_not_run_is_refused_audited_and_told_to_the_model() {
    let (Some(ll), Some(time)) = (litellm(), peer("MCPCTL_PEER_TIME")) else { return };
    let gw = Gw::start_with(&lab(&time, "openai", &format!("{}/v1", ll.base), "scripted", 10), options()).await;
    // Bob may chat with the agent (per-agent grant) and see the tools, but not run them.
    let events = sse(chat(&gw, BOB, json!({"message": CALL_TIME, "stream": true})).await).await;
    let end = events.iter().find(|(n, _)| n == "tool_call_end").expect("the call is answered").1.clone();
    assert_eq!(end["isError"], true, "{end}");
    assert!(end["content"].as_str().unwrap().contains("may not use"), "{end}");
    assert!(deltas(&events).contains("may not use"), "the model is told: {events:?}");
    let thread = events[0].1["threadId"].as_str().unwrap().to_string();
    gw.state.auditor.flush().await;
    let audited =
        gw.store.audit_events(&reconciler::audit::AuditFilter { thread: Some(thread), limit: 100, ..Default::default() }).await.unwrap();
    assert!(audited.iter().any(|e| e.method == "tools/call" && e.outcome == "denied" && e.token == "bob"), "{audited:?}");
    // Carol holds `chat` but no grant on servers: the agent offers her no tools at all, and
    // whoever lacks both chat grants is refused before anything is written.
    let r: Value = chat(&gw, CAROL, json!({"message": "plain"})).await.json().await.unwrap();
    assert!(r["content"].as_str().unwrap().starts_with("echo: plain"), "{r}");
    gw.stop().await;
}

#[tokio::test]
async fn the_tool_loop_stops_at_max_tool_iterations() {
    let (Some(ll), Some(time)) = (litellm(), peer("MCPCTL_PEER_TIME")) else { return };
    let gw = Gw::start_with(&lab(&time, "openai", &format!("{}/v1", ll.base), "scripted", 2), options()).await;
    let r = chat(&gw, ALICE, json!({"message": r#"LOOP:time__get_current_time:{"timezone":"UTC"};;"#})).await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["toolCalls"].as_array().unwrap().len(), 2, "{answer}");
    assert_eq!(answer["toolLimitReached"], true);
    assert_eq!(answer["content"], "stopped looping", "the last call had tools disabled: {answer}");
    gw.stop().await;
}

#[tokio::test]
async fn anthropic_messages_stream_tool_calls() {
    let (Some(ll), Some(time)) = (litellm(), peer("MCPCTL_PEER_TIME")) else { return };
    let gw = Gw::start_with(&lab(&time, "anthropic", &ll.base, "scripted", 10), options()).await;
    let events = sse(chat(&gw, ALICE, json!({"message": CALL_TIME, "stream": true})).await).await;
    let end = events.iter().find(|(n, _)| n == "tool_call_end").expect("a tool call over /v1/messages").1.clone();
    assert_eq!(end["isError"], false, "{end}");
    assert!(deltas(&events).starts_with("tool said: "), "{events:?}");
    assert_eq!(events.last().unwrap().0, "done");
    gw.stop().await;
}

#[tokio::test]
async fn litellm_mock_models_and_the_openai_python_client() {
    let (Some(ll), Some(time)) = (litellm(), peer("MCPCTL_PEER_TIME")) else { return };
    let gw = Gw::start_with(&lab(&time, "openai", &format!("{}/v1", ll.base), "mock-plain", 10), options()).await;
    let r: Value = chat(&gw, ALICE, json!({"message": "hi"})).await.json().await.unwrap();
    assert_eq!(r["content"], "hello from mock", "{r}");
    let events = sse(chat(&gw, ALICE, json!({"message": "hi", "stream": true})).await).await;
    assert_eq!(deltas(&events), "hello from mock");

    let models: Value = get(&gw, ALICE, "/v1/models").await.json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["lab/assistant", "lab/assistant:concise", "lab/assistant:teacher"]);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(ALICE)
        .json(&json!({"model": "lab/nobody", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["error"]["message"].as_str().unwrap().contains("nobody"));

    let Some(python) = peer("MCPCTL_PEER_LLM_PYTHON") else { return };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openai_client.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .args([&format!("{}/v1", gw.base), ALICE, "lab/assistant:teacher", "hello"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["plain"], "hello from mock", "{v}");
    assert_eq!(v["streamed"], "hello from mock", "{v}");
    assert!(v["chunks"].as_i64().unwrap() >= 1 && v["usage"].as_i64().unwrap() > 0, "{v}");
    assert_eq!(v["models"].as_array().unwrap().len(), 3);
    gw.stop().await;
}

/// One scripted provider answer: status, headers, body.
type Answer = (u16, Vec<(&'static str, String)>, String);

/// A provider that answers each request with the next of `script` (status, headers, SSE body).
async fn scripted_provider(script: Vec<Answer>) -> (String, Arc<AtomicUsize>) {
    use axum::response::IntoResponse;
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let script = Arc::new(script);
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move || {
            let (hits, script) = (counter.clone(), script.clone());
            async move {
                let i = hits.fetch_add(1, Ordering::SeqCst).min(script.len() - 1);
                let (status, headers, body) = script[i].clone();
                let mut resp = (axum::http::StatusCode::from_u16(status).unwrap(), body).into_response();
                for (k, v) in headers {
                    resp.headers_mut().insert(k, v.parse().unwrap());
                }
                resp
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, hits)
}

fn sse_reply(text: &str) -> String {
    let chunk = json!({"choices": [{"index": 0, "delta": {"content": text}}]});
    format!("data: {chunk}\n\ndata: {}\n\ndata: [DONE]\n\n", json!({"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}))
}

#[tokio::test]
async fn provider_429_is_retried_after_retry_after_and_401_is_not() {
    let sse_headers = vec![("content-type", "text/event-stream".to_string())];
    let (url, hits) = scripted_provider(vec![
        (429, vec![("retry-after", "1".into())], r#"{"error":{"message":"slow down"}}"#.into()),
        (200, sse_headers.clone(), sse_reply("after the wait")),
    ])
    .await;
    // No MCP server is needed: the tool list is empty.
    let gw = Gw::start_with(&lab("/bin/false", "openai", &url, "m", 10), options()).await;
    let started = Instant::now();
    let r: Value = chat(&gw, ALICE, json!({"message": "hi"})).await.json().await.unwrap();
    assert_eq!(r["content"], "after the wait", "{r}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was honoured");
    gw.stop().await;

    let (url, hits) = scripted_provider(vec![(401, vec![], r#"{"error":{"message":"bad key sk-test-1234"}}"#.into())]).await;
    let gw = Gw::start_with(&lab("/bin/false", "openai", &url, "m", 10), options()).await;
    let r = chat(&gw, ALICE, json!({"message": "hi"})).await;
    assert_eq!(r.status(), 502);
    let e: Value = r.json().await.unwrap();
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains("Llm `proxy`") && msg.contains("401"), "{msg}");
    assert!(!msg.contains(MASTER_KEY), "the key is scrubbed: {msg}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "401 is not retried");
    // The failed reply is in the thread, failed, with the error.
    let list: Value = get(&gw, ALICE, "/api/v1/threads").await.json().await.unwrap();
    let t: Value = get(&gw, ALICE, &format!("/api/v1/threads/{}", list[0]["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(t["messages"][1]["status"], "failed", "{t}");
    // Refusals before anything runs: unknown agent, unknown personality, no grant.
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/agents/nobody/chat", gw.base))
        .bearer_auth(ALICE)
        .json(&json!({"message": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(chat(&gw, ALICE, json!({"message": "x", "personality": "pirate"})).await.status(), 404);
    assert_eq!(chat(&gw, ALICE, json!({"message": "x", "project": "other"})).await.status(), 403);
    assert_eq!(chat(&gw, ALICE, json!({"message": "x", "bogus": 1})).await.status(), 400);
    // The chat routes are in the OpenAPI document.
    let doc: Value = reqwest::get(format!("{}/api/openapi.json", gw.base)).await.unwrap().json().await.unwrap();
    for path in ["/api/v1/agents/{agent}/chat", "/api/v1/threads", "/api/v1/threads/{id}", "/v1/chat/completions", "/v1/models"] {
        assert!(doc["paths"][path].is_object(), "{path} missing from the OpenAPI document");
    }
    gw.stop().await;
}

#[test]
fn a_reply_cut_by_a_crash_is_marked_failed_on_restart_with_what_was_received() {
    let (Some(ll), Some(time)) = (litellm(), peer("MCPCTL_PEER_TIME")) else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = reconciler::store::sqlite_url(&dir.path().join("s.db"));
    let yaml = lab(&time, "openai", &format!("{}/v1", ll.base), "scripted", 10);

    // The first gateway runs on its own runtime, which is dropped mid-reply: nothing of it runs
    // after that, as in a crash.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (base, received) = rt.block_on(async {
        let store = reconciler::Store::connect(&url).await.unwrap();
        let d = desired(&yaml);
        let p = reconciler::plan(&d, &store.resources().await.unwrap(), "r1");
        let meta = reconciler::DeployMeta { revision: "r1".into(), actor: "t".into(), message: None, commit: None };
        store.apply(&p, &meta, &|_, _| {}).await.unwrap();
        let state = mcpctl_gateway::AppState::with_options(store, options());
        state.reload().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(mcpctl_gateway::serve(listener, state, std::future::pending()));
        let mut resp = reqwest::Client::new()
            .post(format!("{base}/api/v1/agents/assistant/chat"))
            .bearer_auth(ALICE)
            .json(&json!({"message": "SLOW please", "stream": true}))
            .send()
            .await
            .unwrap();
        let mut received = String::new();
        let started = Instant::now();
        while !received.contains("word3") && started.elapsed() < Duration::from_secs(30) {
            match resp.chunk().await.unwrap() {
                Some(c) => received.push_str(&String::from_utf8_lossy(&c)),
                None => break,
            }
        }
        (base, received)
    });
    rt.shutdown_background();
    assert!(received.contains("word2"), "{received}");
    let _ = base;

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let store = reconciler::Store::connect(&url).await.unwrap();
        let threads = store.threads(&Default::default()).await.unwrap();
        let messages = store.messages(&threads[0].id).await.unwrap();
        assert_eq!(messages[1].status, "pending", "left pending by the crash");
        let state = mcpctl_gateway::AppState::with_options(store.clone(), options());
        let deadline = Instant::now() + Duration::from_secs(10);
        let (count, failed) = loop {
            let m = store.messages(&threads[0].id).await.unwrap();
            if m[1].status == "failed" {
                break (m.len(), m[1].clone());
            }
            assert!(Instant::now() < deadline, "the restarted gateway did not mark the reply failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(failed.content.starts_with("word0 word1"), "what was received is kept: {failed:?}");
        assert!(failed.error.as_deref().unwrap().contains("interrupted"), "{failed:?}");
        assert_eq!((messages.len(), count), (2, 2), "nothing was duplicated");
        drop(state);
    });
}

/// Against a real provider when MCPCTL_SMOKE_LLM_URL, _KEY and _MODEL are set (OpenAI-compatible).
#[tokio::test]
async fn smoke_against_a_real_provider() {
    let (Ok(url), Ok(key), Ok(model)) =
        (std::env::var("MCPCTL_SMOKE_LLM_URL"), std::env::var("MCPCTL_SMOKE_LLM_KEY"), std::env::var("MCPCTL_SMOKE_LLM_MODEL"))
    else {
        eprintln!("SKIPPED: MCPCTL_SMOKE_LLM_URL, _KEY and _MODEL are not all set");
        return;
    };
    let yaml = lab("/bin/false", "openai", &url, &model, 10).replace(&sealed(MASTER_KEY), &sealed(&key));
    let gw = Gw::start_with(&yaml, options()).await;
    let events = sse(chat(&gw, ALICE, json!({"message": "Say hello in one word.", "stream": true})).await).await;
    assert_eq!(events.last().unwrap().0, "done", "{events:?}");
    assert!(!deltas(&events).trim().is_empty());
    gw.stop().await;
}
