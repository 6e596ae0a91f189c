//! The gateway against the same upstream reached directly, and against mcp-proxy (the popular
//! Python stdio↔HTTP bridge), in one run on this machine.
//!
//!     source .ci/peers.sh && cargo bench -p mcpctl-gateway --bench mcp_proxy
//!
//! Upstreams are real: `@modelcontextprotocol/server-everything` (its `echo` tool) and
//! `mcp-server-time`, both over stdio. Clients are rmcp Streamable HTTP clients (one session
//! each) for the gateway and mcp-proxy, and one rmcp stdio client for "direct". The gateway runs
//! in this process on its own 2-thread runtime; mcp-proxy runs as its own process. Measures:
//! (a) sequential tools/call latency, direct vs through the gateway (added p50/p99);
//! (b) tools/call and tools/list throughput with 64 concurrent clients;
//! (c) tools/call throughput of mcp-proxy in front of the same upstream, and the ratio;
//! (d) mcp-server-time: its own pipelined capacity vs through the gateway.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, ClientConfig, Implementation};
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::ServiceExt;

const CLIENTS: usize = 64;
const WINDOW: Duration = Duration::from_secs(5);
const SEQUENTIAL: usize = 2000;

fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set: run `source .ci/peers.sh` first"))
}

fn client_info() -> ClientConfig {
    ClientConfig::new(Default::default(), Implementation::new("bench", "1"))
}

async fn stdio_client(program: &str, args: &[&str]) -> (RunningService<RoleClient, ClientConfig>, tokio::process::Child) {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("upstream starts");
    let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    (client_info().serve((stdout, stdin)).await.expect("upstream initializes"), child)
}

async fn http_client(url: &str, token: Option<&str>) -> RunningService<RoleClient, ClientConfig> {
    let mut config = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url.to_string());
    if let Some(t) = token {
        config = config.auth_header(t.to_string());
    }
    client_info().serve(rmcp::transport::StreamableHttpClientTransport::from_config(config)).await.expect("HTTP client connects")
}

fn call(tool: &str, args: serde_json::Value) -> CallToolRequestParams {
    let mut p = CallToolRequestParams::new(tool.to_string());
    p.arguments = args.as_object().cloned();
    p
}

/// p50 and p99 of `n` sequential calls, in microseconds.
async fn latency(peer: &Peer<RoleClient>, req: &CallToolRequestParams, n: usize) -> (f64, f64) {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = peer.call_tool(req.clone()).await.expect("call");
        assert_ne!(r.is_error, Some(true));
        v.push(t.elapsed().as_secs_f64() * 1e6);
    }
    v.sort_by(f64::total_cmp);
    (v[n / 2], v[n * 99 / 100])
}

#[derive(Clone, Copy)]
enum Op {
    Call,
    List,
}

/// Completed operations per second over `WINDOW` with every peer busy (concurrency `per_peer`
/// on each).
async fn throughput(peers: &[Peer<RoleClient>], per_peer: usize, req: &CallToolRequestParams, op: Op) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + WINDOW;
    let mut tasks = Vec::new();
    for p in peers {
        for _ in 0..per_peer {
            let (p, req, done) = (p.clone(), req.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    match op {
                        Op::Call => {
                            p.call_tool(req.clone()).await.expect("call");
                        }
                        Op::List => {
                            p.list_tools(None).await.expect("list");
                        }
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }
    let start = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

async fn clients(url: &str, token: Option<&str>) -> Vec<RunningService<RoleClient, ClientConfig>> {
    let mut v = Vec::new();
    for _ in 0..CLIENTS {
        v.push(http_client(url, token).await);
    }
    v
}

fn peers(c: &[RunningService<RoleClient, ClientConfig>]) -> Vec<Peer<RoleClient>> {
    c.iter().map(|s| s.peer().clone()).collect()
}

/// A gateway on its own runtime serving project `bench` with `servers` (name, command, args).
fn start_gateway(servers: &[(&str, &str, Vec<String>)]) -> (String, tokio::runtime::Runtime, tempfile::TempDir) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::new();
    for (name, cmd, args) in servers {
        yaml += &format!(
            "apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: {name}}}\nspec: {{command: \"{cmd}\", args: {}}}\n---\n",
            serde_json::to_string(args).unwrap()
        );
    }
    let names: Vec<&str> = servers.iter().map(|s| s.0).collect();
    yaml += &format!("apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: bench}}\nspec: {{servers: {names:?}, public: true}}\n");
    let path = dir.path().to_path_buf();
    let base = rt.block_on(async move {
        let store = reconciler::Store::connect(&reconciler::store::sqlite_url(&path.join("s.db"))).await.unwrap();
        let files = vec![schema::SourceFile::new("b.yaml", yaml)];
        let desired = schema::check(&files).expect("bench YAML is valid");
        let plan = reconciler::plan(&desired, &store.resources().await.unwrap(), "bench");
        store
            .apply(
                &plan,
                &reconciler::DeployMeta { revision: "bench".into(), actor: "bench".into(), message: None, commit: None },
                &|_, _| {},
            )
            .await
            .unwrap();
        let state = mcpctl_gateway::AppState::with_options(
            store,
            mcpctl_gateway::Options {
                reach: mcpctl_gateway::Reach { local_stdio: true, kube_namespace: None, attacher: None },
                ..Default::default()
            },
        );
        state.reload().await.unwrap();
        let mut runtime = reconciler::runtime::LocalRuntime::new(path.join("logs")).with_attach(state.attach());
        runtime.sync(&desired).await;
        std::mem::forget(runtime); // keep the upstream processes for the whole run
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(mcpctl_gateway::serve(listener, state, std::future::pending()));
        base
    });
    (format!("{base}/projects/bench/mcp"), rt, dir)
}

async fn wait_for_tool(url: &str, tool: &str) {
    for _ in 0..100 {
        let c = http_client(url, None).await;
        if c.list_all_tools().await.map(|t| t.iter().any(|t| t.name == tool)).unwrap_or(false) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{tool} never appeared at {url}");
}

fn main() {
    let everything = env("MCPCTL_PEER_EVERYTHING");
    let time = env("MCPCTL_PEER_TIME");
    let proxy = env("MCPCTL_PEER_MCP_PROXY");
    let (gw_url, _gw_rt, _dir) =
        start_gateway(&[("everything", "node", vec![everything.clone(), "stdio".into()]), ("time", &time, vec![])]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let echo = call("echo", serde_json::json!({"message": "bench"}));
        let gw_echo = call("everything__echo", serde_json::json!({"message": "bench"}));
        wait_for_tool(&gw_url, "everything__echo").await;
        wait_for_tool(&gw_url, "time__get_current_time").await;

        // (a) latency, sequential, one client each.
        let (direct, _c1) = stdio_client("node", &[&everything, "stdio"]).await;
        let (d50, d99) = latency(direct.peer(), &echo, SEQUENTIAL).await;
        let gw = http_client(&gw_url, None).await;
        let (g50, g99) = latency(gw.peer(), &gw_echo, SEQUENTIAL).await;
        println!("(a) echo latency, {SEQUENTIAL} sequential calls: direct stdio p50 {d50:.0} µs p99 {d99:.0} µs; through the gateway (HTTP client included) p50 {g50:.0} µs p99 {g99:.0} µs");

        // The HTTP client's own share: a no-upstream request (tools/list of a cached list).
        let (l50, l99) = {
            let mut v = Vec::new();
            for _ in 0..SEQUENTIAL {
                let t = Instant::now();
                gw.peer().list_tools(None).await.unwrap();
                v.push(t.elapsed().as_secs_f64() * 1e6);
            }
            v.sort_by(f64::total_cmp);
            (v[SEQUENTIAL / 2], v[SEQUENTIAL * 99 / 100])
        };
        println!("    gateway tools/list (answered from cache, no upstream hop): p50 {l50:.0} µs p99 {l99:.0} µs");
        println!("    added by the gateway on tools/call: p50 {:.0} µs, p99 {:.0} µs", g50 - d50, g99 - d99);

        // (b) throughput with 64 clients.
        let direct_tp = throughput(&[direct.peer().clone()], CLIENTS, &echo, Op::Call).await;
        let cs = clients(&gw_url, None).await;
        let gw_call = throughput(&peers(&cs), 1, &gw_echo, Op::Call).await;
        let gw_list = throughput(&peers(&cs), 1, &gw_echo, Op::List).await;
        println!("(b) {CLIENTS} concurrent clients: echo direct (pipelined over one stdio session) {direct_tp:.0}/s; through the gateway tools/call {gw_call:.0}/s, tools/list {gw_list:.0}/s");
        drop(cs);

        // (c) mcp-proxy in front of the same upstream.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut mp = tokio::process::Command::new(&proxy)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--stateless", "--", "node", &everything, "stdio"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("mcp-proxy starts");
        let mp_url = format!("http://127.0.0.1:{port}/mcp");
        let mut ready = false;
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(ready, "mcp-proxy did not listen");
        let cs = clients(&mp_url, None).await;
        let mp_call = throughput(&peers(&cs), 1, &echo, Op::Call).await;
        drop(cs);
        let _ = mp.kill().await;
        println!("(c) mcp-proxy 0.13 (--stateless) tools/call with {CLIENTS} clients: {mp_call:.0}/s; gateway/mcp-proxy = {:.1}x", gw_call / mp_call);

        // (d) mcp-server-time: its own pipelined capacity vs through the gateway.
        let (t_direct, _c2) = stdio_client(&time, &[]).await;
        let tz = call("get_current_time", serde_json::json!({"timezone": "UTC"}));
        let t_cap = throughput(&[t_direct.peer().clone()], CLIENTS, &tz, Op::Call).await;
        let cs = clients(&gw_url, None).await;
        let t_gw = throughput(&peers(&cs), 1, &call("time__get_current_time", serde_json::json!({"timezone": "UTC"})), Op::Call).await;
        println!("(d) mcp-server-time: alone (pipelined, {CLIENTS} in flight) {t_cap:.0}/s; through the gateway with {CLIENTS} clients {t_gw:.0}/s = {:.0}% of its capacity", 100.0 * t_gw / t_cap);
    });
}
