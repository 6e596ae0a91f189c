//! Every upstream transport through a project: the legacy HTTP+SSE transport against
//! server-everything's `sse` mode (and a hostile endpoint), and `tools/list` not waiting for a
//! server that is still starting.

use std::time::{Duration, Instant};

use mcpctl_gateway::McpSettings;
use rmcp::model::CallToolRequestParams;

use crate::harness::*;

const ALICE: &str = "mcpctl_pat_alice_0123456789abcdef";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// server-everything speaking HTTP+SSE on `port`.
fn everything_sse(everything: &str, port: u16) -> tokio::process::Child {
    tokio::process::Command::new("node")
        .arg(everything)
        .arg("sse")
        .env("PORT", port.to_string())
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A project `p` with these servers (YAML documents) and Alice's token.
fn project(servers_yaml: &str, names: &[&str]) -> String {
    format!(
        "{servers_yaml}---\napiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: p}}\nspec: {{servers: [{}]}}\n---\n{}",
        names.join(", "),
        token_doc("alice", "p", ALICE, "  bindings:\n    - {role: run, resource: servers}\n")
    )
}

async fn status(gw: &Gw) -> serde_json::Value {
    reqwest::Client::new().get(format!("{}/api/v1/status", gw.base)).bearer_auth(ALICE).send().await.unwrap().json().await.unwrap()
}

/// Call `name` with `{"message": text}` until it answers (the upstream may still be starting), or
/// give up after `within`; returns the last answer or error as text.
async fn echo_until_ok(
    client: &rmcp::service::RunningService<rmcp::RoleClient, rmcp::model::ClientConfig>,
    name: &str,
    text: &str,
    within: Duration,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let args = serde_json::json!({ "message": text }).as_object().unwrap().clone();
        let got = match client.call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(args)).await {
            Ok(r) => serde_json::to_string(&r.content).unwrap(),
            Err(e) => e.to_string(),
        };
        if got.contains(&format!("Echo: {text}")) || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sse_upstream_lists_calls_and_reconnects_after_a_restart() {
    let Some(everything) = peer("MCPCTL_PEER_EVERYTHING") else { return };
    let port = free_port();
    let mut child = everything_sse(&everything, port);
    let server = format!("apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: legacy}}\nspec: {{url: \"http://127.0.0.1:{port}/sse\", transport: sse}}\n");
    let gw = Gw::start(&project(&server, &["legacy"]), McpSettings::default()).await;
    let client = rust_client(&gw.url("p"), ALICE).await;

    let answer = echo_until_ok(&client, "legacy__echo", "over sse", Duration::from_secs(30)).await;
    assert!(answer.contains("Echo: over sse"), "{answer}");
    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "legacy__echo"), "{:?}", tools.iter().map(|t| t.name.to_string()).collect::<Vec<_>>());
    let s = status(&gw).await;
    let up = s["upstreams"].as_array().unwrap().iter().find(|u| u["server"] == "legacy").unwrap().clone();
    assert_eq!((up["transport"].as_str(), up["connected"].as_bool()), (Some("sse"), Some(true)), "{s}");

    // The peer restarts: the stream drops, the gateway marks it lost and reconnects (a new SSE
    // session and `initialize`) on the next use.
    child.kill().await.unwrap();
    let _ = child.wait().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&gw).await["upstreams"][0]["connected"] == true && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status(&gw).await["upstreams"][0]["connected"], false, "the dropped stream is noticed");
    let down = client
        .call_tool(
            CallToolRequestParams::new("legacy__echo").with_arguments(serde_json::json!({"message": "x"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(down.contains("unavailable") && !down.contains("sessionId"), "{down}");
    let mut child = everything_sse(&everything, port);
    let answer = echo_until_ok(&client, "legacy__echo", "after restart", Duration::from_secs(30)).await;
    assert!(answer.contains("Echo: after restart"), "{answer}");

    let _ = client.cancel().await;
    gw.stop().await;
    let _ = child.kill().await;
}

/// A server whose `endpoint` event points elsewhere is refused: the gateway never posts there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_endpoint_of_another_origin_is_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hostile = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\r\nevent: endpoint\r\ndata: http://evil.example/message?sessionId=s3cret\r\n\r\n")
                    .await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    let server = format!("apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: hostile}}\nspec: {{url: \"http://127.0.0.1:{port}/sse\", transport: sse}}\n");
    let gw = Gw::start(&project(&server, &["hostile"]), McpSettings::default()).await;
    let client = rust_client(&gw.url("p"), ALICE).await;
    let err = client.call_tool(CallToolRequestParams::new("hostile__echo")).await.unwrap_err().to_string();
    assert!(err.contains("not of the SSE URL's origin") && err.contains("refused"), "{err}");
    assert!(!err.contains("s3cret"), "the endpoint's query is redacted: {err}");
    let s = status(&gw).await;
    assert!(s["upstreams"][0]["error"].as_str().unwrap().contains("origin"), "{s}");
    let _ = client.cancel().await;
    gw.stop().await;
    hostile.abort();
}

/// A session client that counts `notifications/tools/list_changed`.
#[derive(Clone, Default)]
struct Watcher {
    changed: std::sync::Arc<tokio::sync::Notify>,
}

impl rmcp::ClientHandler for Watcher {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        rmcp::model::ClientConfig::new(Default::default(), rmcp::model::Implementation::new("watcher", "1"))
            .with_protocol_version(rmcp::model::ProtocolVersion::V_2025_11_25)
    }

    async fn on_tool_list_changed(&self, _ctx: rmcp::service::NotificationContext<rmcp::RoleClient>) {
        self.changed.notify_one();
    }
}

fn names(r: &rmcp::model::ListToolsResult) -> Vec<String> {
    r.tools.iter().map(|t| t.name.to_string()).collect()
}

/// `tools/list` answers with what is there while a server is still starting (a real stdio server
/// behind `sleep 8`), names it in `_meta`, and announces its tools when it arrives; prompts
/// and resources do not wait for it either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_does_not_wait_for_a_starting_server_and_announces_it() {
    use rmcp::ServiceExt;
    let Some(everything) = peer("MCPCTL_PEER_EVERYTHING") else { return };
    let servers = format!(
        "apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: fast}}\nspec: {{command: node, args: [\"{everything}\", stdio]}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: slow}}\nspec: {{command: sh, args: [-c, \"sleep 8; exec node '{everything}' stdio\"]}}\n"
    );
    let gw = Gw::start(&project(&servers, &["fast", "slow"]), McpSettings::default()).await;
    let url = gw.url("p");
    // Polling until `fast` is up (a fresh list each time): each answer comes without waiting.
    let stateless = rust_client(&url, ALICE).await;
    let answer = echo_until_ok(&stateless, "fast__echo", "up", Duration::from_secs(30)).await;
    assert!(answer.contains("Echo: up"), "{answer}");
    let _ = stateless.cancel().await;

    let config =
        rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url.clone()).auth_header(ALICE.to_string());
    let watcher = Watcher::default();
    let client = watcher.clone().serve(rmcp::transport::StreamableHttpClientTransport::from_config(config)).await.unwrap();
    let first = client.list_tools(None).await.unwrap();
    let listed = names(&first);
    assert!(listed.contains(&"fast__echo".to_string()), "{listed:?}");
    assert!(!listed.iter().any(|n| n.starts_with("slow__")), "{listed:?}");
    let meta = serde_json::to_value(&first.meta).unwrap();
    assert_eq!(meta["io.mcpctl/starting"], serde_json::json!(["slow"]), "the answer names the server still starting: {meta}");
    let prompts: Vec<String> = client.list_all_prompts().await.unwrap().into_iter().map(|p| p.name).collect();
    assert!(prompts.contains(&"fast__simple-prompt".to_string()) && !prompts.iter().any(|p| p.starts_with("slow__")), "{prompts:?}");
    assert!(!client.list_all_resources().await.unwrap().is_empty(), "fast's resources, without waiting for slow");

    // When `slow` arrives, the session is told, and the next list has its tools.
    let arrived = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            watcher.changed.notified().await;
            let r = client.list_tools(None).await.unwrap();
            if names(&r).contains(&"slow__echo".to_string()) {
                return r;
            }
        }
    })
    .await
    .expect("tools/list_changed announced the slow server's tools");
    assert!(arrived.meta.is_none(), "nothing is starting any more: {:?}", arrived.meta);
    assert!(names(&arrived).contains(&"fast__echo".to_string()));
    let _ = client.cancel().await;
    gw.stop().await;
}

/// A fake Kubernetes API server on 127.0.0.1 for one namespace (`mcp`): it lists one running pod
/// per generation (`mcp-fs-g<N>`) and bridges each attach — a real WebSocket upgrade speaking
/// `v4.channel.k8s.io` — to a fresh real stdio MCP server process (server-everything), as the
/// kubelet bridges a container's stdin and stdout. [`FakeKube::restart_pod`] ends every attach
/// and moves to the next generation, as a pod replaced by its Deployment.
struct FakeKube {
    url: String,
    generation: std::sync::Arc<std::sync::atomic::AtomicU32>,
    attaches: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    restart: std::sync::Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeKube {
    async fn start(everything: String) -> FakeKube {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(1));
        let attaches = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let restart = std::sync::Arc::new(tokio::sync::Notify::new());
        let (g, a, r) = (generation.clone(), attaches.clone(), restart.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else { return };
                tokio::spawn(Self::connection(sock, everything.clone(), g.clone(), a.clone(), r.clone()));
            }
        });
        FakeKube { url, generation, attaches, restart, task }
    }

    fn restart_pod(&self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.restart.notify_waiters();
    }

    /// One HTTP/1.1 connection: requests until an attach upgrades it.
    async fn connection(
        mut sock: tokio::net::TcpStream,
        everything: String,
        generation: std::sync::Arc<std::sync::atomic::AtomicU32>,
        attaches: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
        restart: std::sync::Arc<tokio::sync::Notify>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            // The request head, byte by byte (GETs without a body; nothing is read past it).
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut b = [0u8; 1];
                match sock.read(&mut b).await {
                    Ok(1) => head.push(b[0]),
                    _ => return,
                }
            }
            let head = String::from_utf8(head).unwrap();
            let target = head.split(' ').nth(1).unwrap().to_string();
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string()))
            };
            let g = generation.load(std::sync::atomic::Ordering::SeqCst);
            if target.contains("/attach?") {
                attaches.lock().unwrap().push(target.split('?').next().unwrap().to_string());
                let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(header("sec-websocket-key").unwrap().as_bytes());
                let answer = format!("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n");
                sock.write_all(answer.as_bytes()).await.unwrap();
                let ws =
                    tokio_tungstenite::WebSocketStream::from_raw_socket(sock, tokio_tungstenite::tungstenite::protocol::Role::Server, None)
                        .await;
                return Self::bridge(ws, &everything, &restart).await;
            }
            assert!(target.starts_with("/api/v1/namespaces/mcp/pods?"), "unexpected request {target}");
            let pods = serde_json::json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                {"metadata": {"name": format!("mcp-fs-g{g}")}, "status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z"}}
            ]})
            .to_string();
            let answer = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{pods}", pods.len());
            if sock.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// The container: channel 0 → its stdin, its stdout → channel 1, until it exits or the pod
    /// restarts.
    async fn bridge(ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, everything: &str, restart: &tokio::sync::Notify) {
        use futures::{SinkExt, StreamExt};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_tungstenite::tungstenite::Message;
        let mut child = tokio::process::Command::new("node")
            .arg(everything)
            .arg("stdio")
            .kill_on_drop(true)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let (mut stdin, mut stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        let (mut tx, mut rx) = ws.split();
        let restarted = restart.notified();
        tokio::pin!(restarted);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                m = rx.next() => match m {
                    Some(Ok(Message::Binary(b))) if b.first() == Some(&0) => { let _ = stdin.write_all(&b[1..]).await; }
                    Some(Ok(_)) => {}
                    _ => break,
                },
                n = stdout.read(&mut buf) => match n {
                    Ok(n) if n > 0 => {
                        let mut frame = vec![1u8];
                        frame.extend_from_slice(&buf[..n]);
                        if tx.send(Message::Binary(frame.into())).await.is_err() { break; }
                    }
                    _ => break,
                },
                _ = &mut restarted => break,
            }
        }
        let _ = child.kill().await;
        let _ = tx.send(Message::Close(None)).await;
    }
}

/// A stdio server in an image, served through a project by attaching to its pod (a fake API server
/// speaking the real attach protocol, see [`FakeKube`]); after the pod is replaced the gateway
/// attaches to the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_image_server_through_pod_attach_reattaches_after_a_pod_restart() {
    let Some(everything) = peer("MCPCTL_PEER_EVERYTHING") else { return };
    let kube = FakeKube::start(everything).await;
    let client = kube::Client::try_from(kube::Config::new(kube.url.parse().unwrap())).unwrap();
    let reach = mcpctl_gateway::Reach {
        local_stdio: true,
        kube_namespace: Some("mcp".into()),
        attacher: Some(reconciler::runtime::kubernetes::Attacher::with_client(client, "mcp")),
    };
    let server = "apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {name: fs}\nspec: {image: \"ghcr.io/example/everything:1\"}\n";
    let gw = Gw::start_reaching(&project(server, &["fs"]), mcpctl_gateway::Options { reach, ..Default::default() }).await;
    let client = rust_client(&gw.url("p"), ALICE).await;

    let answer = echo_until_ok(&client, "fs__echo", "via attach", Duration::from_secs(30)).await;
    assert!(answer.contains("Echo: via attach"), "{answer}");
    let s = status(&gw).await;
    assert_eq!((s["upstreams"][0]["transport"].as_str(), s["upstreams"][0]["connected"].as_bool()), (Some("attach"), Some(true)), "{s}");
    assert_eq!(*kube.attaches.lock().unwrap(), ["/api/v1/namespaces/mcp/pods/mcp-fs-g1/attach"]);

    kube.restart_pod();
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&gw).await["upstreams"][0]["connected"] == true && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status(&gw).await["upstreams"][0]["connected"], false, "the ended attach is noticed");
    let answer = echo_until_ok(&client, "fs__echo", "after the pod restart", Duration::from_secs(30)).await;
    assert!(answer.contains("Echo: after the pod restart"), "{answer}");
    assert_eq!(
        kube.attaches.lock().unwrap().last().map(String::as_str),
        Some("/api/v1/namespaces/mcp/pods/mcp-fs-g2/attach"),
        "attached to the new pod"
    );

    let _ = client.cancel().await;
    gw.stop().await;
    kube.task.abort();
}
