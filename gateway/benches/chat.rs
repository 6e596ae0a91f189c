//! Chat through the gateway against the same LiteLLM stream called directly.
//!
//!     source .ci/peers.sh && cargo bench -p mcpctl-gateway --bench chat
//!
//! A real LiteLLM proxy (tests/fixtures/litellm/run.sh, the scripted model) and a real
//! `mcp-server-time` as the agent's tool; the gateway runs in this process over SQLite.
//! `MCPCTL_BENCH_SYNCHRONOUS=full` (or `normal`, the default) chooses SQLite's commit durability.
//! Measures (p50/p99 of sequential requests):
//! (a) time to first token: the first `delta` event of `POST /api/v1/agents/…/chat` vs the first
//!     content chunk of the same model's `/v1/chat/completions` stream called directly;
//! (b) a tool-loop step's overhead besides the tool and the model: a turn of two tool rounds minus
//!     a turn of one, minus a direct model call that answers with a tool call and a direct
//!     `tools/call` of `get_current_time`.

use std::time::{Duration, Instant};

use rmcp::ServiceExt;
use serde_json::json;

const N: usize = 200;
const TOKEN: &str = "mcpctl_pat_bench_0123456789abcdef";
const KEY: &str = "sk-test-1234";

fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run `source .ci/peers.sh` first"))
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn yaml(time: &str, llm_url: &str) -> String {
    let identity =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/homelab/.mcpctl/demo-age-identity.txt")).unwrap();
    let recipient = reconciler::secrets::plaintext::recipient_of(&identity).unwrap();
    let sealed: String = reconciler::secrets::plaintext::seal(&recipient, KEY).unwrap().lines().map(|l| format!("      {l}\n")).collect();
    let hash = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(TOKEN.as_bytes())));
    format!(
        r#"apiVersion: mcpctl.io/v1
kind: Server
metadata: {{name: time}}
spec: {{command: "{time}"}}
---
apiVersion: mcpctl.io/v1
kind: Project
metadata: {{name: bench}}
spec: {{servers: [time]}}
---
apiVersion: mcpctl.io/v1
kind: SecretBackend
metadata: {{name: git}}
spec: {{type: plaintext, isDefault: true}}
---
apiVersion: mcpctl.io/v1
kind: Secret
metadata: {{name: k}}
spec:
  backend: git
  data:
    key: |
{sealed}---
apiVersion: mcpctl.io/v1
kind: Llm
metadata: {{name: ll}}
spec: {{provider: openai, model: scripted, url: "{llm_url}", apiKey: {{secretRef: {{name: k, key: key}}}}}}
---
apiVersion: mcpctl.io/v1
kind: Agent
metadata: {{name: one, project: bench}}
spec: {{llm: ll, systemPrompt: "S", maxToolIterations: 1}}
---
apiVersion: mcpctl.io/v1
kind: Agent
metadata: {{name: two, project: bench}}
spec: {{llm: ll, systemPrompt: "S", maxToolIterations: 2}}
---
apiVersion: mcpctl.io/v1
kind: McpToken
metadata: {{name: bench, project: bench}}
spec:
  hash: "{hash}"
  prefix: mcpctl_pat_b
  bindings:
    - {{role: run, action: chat}}
    - {{role: run, resource: servers}}
"#
    )
}

/// Time to the first byte of text in a streamed answer (`needle` marks it), and to its end.
async fn streamed(rq: reqwest::RequestBuilder, needle: &str) -> (Duration, Duration) {
    let started = Instant::now();
    let mut resp = rq.send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let (mut first, mut seen) = (None, String::new());
    while let Some(c) = resp.chunk().await.unwrap() {
        seen.push_str(&String::from_utf8_lossy(&c));
        if first.is_none() && seen.contains(needle) {
            first = Some(started.elapsed());
        }
    }
    (first.unwrap_or_else(|| panic!("no text in: {seen}")), started.elapsed())
}

fn main() {
    mcpctl_gateway::install_crypto();
    let litellm = env("MCPCTL_PEER_LITELLM");
    let time = env("MCPCTL_PEER_TIME");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/litellm/run.sh");
        let mut proxy = tokio::process::Command::new("sh")
            .args([script, &litellm, &port.to_string(), &dir.path().display().to_string(), KEY])
            .stdin(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let llm = format!("http://127.0.0.1:{port}/v1");
        let http = reqwest::Client::new();
        while http.get(format!("http://127.0.0.1:{port}/health/liveliness")).send().await.map(|r| !r.status().is_success()).unwrap_or(true) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // `MCPCTL_BENCH_SYNCHRONOUS=full` measures with every commit waiting for the disk.
        let mut url = reconciler::store::sqlite_url(&dir.path().join("s.db"));
        if let Ok(level) = std::env::var("MCPCTL_BENCH_SYNCHRONOUS") {
            url = format!("{url}?synchronous={level}");
        }
        println!("database: {url}");
        let store = reconciler::Store::connect(&url).await.unwrap();
        let files = vec![schema::SourceFile::new("all.yaml", yaml(&time, &llm))];
        let desired = schema::check(&files).map_err(|e| format!("{e:?}")).unwrap();
        let plan = reconciler::plan(&desired, &store.resources().await.unwrap(), "r");
        let meta = reconciler::DeployMeta { revision: "r".into(), actor: "bench".into(), message: None, commit: None };
        store.apply(&plan, &meta, &|_, _| {}).await.unwrap();
        let secrets = reconciler::secrets::SecretResolver::from_file(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/homelab/.mcpctl/demo-age-identity.txt"
        )))
        .unwrap();
        let options = mcpctl_gateway::Options {
            reach: mcpctl_gateway::Reach { local_stdio: true, kube_namespace: None, attacher: None },
            chat: mcpctl_gateway::chat::ChatSettings { secrets, ..Default::default() },
            mcp: mcpctl_gateway::McpSettings { rate_limit: None, ..Default::default() },
            ..Default::default()
        };
        let state = mcpctl_gateway::AppState::with_options(store, options);
        let mut runtime = reconciler::runtime::LocalRuntime::new(dir.path().join("logs")).with_attach(state.attach());
        state.reload().await.unwrap();
        runtime.sync(&desired).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(mcpctl_gateway::serve(listener, state.clone(), std::future::pending()));

        let (time_client, _child) = {
            let mut child = tokio::process::Command::new(&time)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let (i, o) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
            (().serve((o, i)).await.unwrap(), child)
        };
        // The direct calls carry the same tool definitions the gateway sends (the time server's, namespaced).
        let tools: Vec<serde_json::Value> = time_client
            .peer()
            .list_all_tools()
            .await
            .unwrap()
            .into_iter()
            .map(|t| json!({"type": "function", "function": {"name": format!("time__{}", t.name), "description": t.description, "parameters": *t.input_schema}}))
            .collect();
        let direct = |body: serde_json::Value| http.post(format!("{llm}/chat/completions")).bearer_auth(KEY).json(&body);
        let via = |agent: &str, message: &str| {
            http.post(format!("{gw}/api/v1/agents/{agent}/chat")).bearer_auth(TOKEN).json(&json!({"message": message, "stream": true}))
        };
        let plain = json!({"model": "scripted", "stream": true, "stream_options": {"include_usage": true}, "tools": tools,
            "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "hello there"}]});
        // Warm both paths (connections, the time server, the key).
        for _ in 0..10 {
            streamed(direct(plain.clone()), "\"content\":\"echo").await;
            streamed(via("one", "hello there"), "event: delta").await;
        }

        // (a) time to first token.
        let (mut d, mut g) = (Vec::new(), Vec::new());
        for _ in 0..N {
            d.push(ms(streamed(direct(plain.clone()), "\"content\":\"echo").await.0));
            g.push(ms(streamed(via("one", "hello there"), "event: delta").await.0));
        }
        let (dp50, gp50) = (pct(&mut d, 0.5), pct(&mut g, 0.5));
        println!("time to first token (ms), {N} sequential each:");
        println!("  LiteLLM direct      p50 {dp50:.2}  p99 {:.2}", pct(&mut d, 0.99));
        println!("  through the gateway p50 {gp50:.2}  p99 {:.2}", pct(&mut g, 0.99));
        println!("  added by the gateway p50 {:.2}", gp50 - dp50);

        // (b) one tool-loop step.
        let looping = r#"LOOP:time__get_current_time:{"timezone":"UTC"};;"#;
        let asks = json!({"model": "scripted", "stream": true, "stream_options": {"include_usage": true}, "tools": tools, "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": looping}]});
        let args = json!({"timezone": "UTC"}).as_object().cloned().unwrap();
        let (mut one, mut two, mut model, mut tool_direct) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..N / 2 {
            one.push(ms(streamed(via("one", looping), "event: done").await.1));
            two.push(ms(streamed(via("two", looping), "event: done").await.1));
            model.push(ms(streamed(direct(asks.clone()), "tool_calls").await.1));
            let started = Instant::now();
            let p = rmcp::model::CallToolRequestParams::new("get_current_time").with_arguments(args.clone());
            time_client.peer().call_tool(p).await.unwrap();
            tool_direct.push(ms(started.elapsed()));
        }
        let (p1, p2, pm, pt) = (pct(&mut one, 0.5), pct(&mut two, 0.5), pct(&mut model, 0.5), pct(&mut tool_direct, 0.5));
        println!("tool-loop step (ms, p50 of {}): turn with 1 round {p1:.2}, with 2 rounds {p2:.2};", N / 2);
        println!("  direct model call answering a tool call {pm:.2}, direct tools/call {pt:.2}");
        println!("  overhead of one step besides the tool and the model: {:.2}", p2 - p1 - pm - pt);
        drop(proxy.stdin.take());
        let _ = proxy.wait().await;
        runtime.shutdown().await;
    });
}
