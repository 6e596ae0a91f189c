//! The console's MCP I/O: one task that connects (either protocol generation), lists tools,
//! prompts and resources, runs what the UI asks for, and reports back through channels. The UI
//! never touches the network; the transport is wrapped by [`super::wire::Recorder`] so the
//! inspector sees every message.

use rmcp::model::{CallToolRequestParams, GetPromptRequestParams, ReadResourceRequestParams};
use rmcp::ClientLifecycleMode;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::wire::Tap;

/// What the UI asks the client to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    CallTool {
        name: String,
        args: Map<String, Value>,
    },
    GetPrompt {
        name: String,
        args: Map<String, Value>,
    },
    ReadResource {
        uri: String,
    },
    /// List tools, prompts and resources again.
    Refresh,
}

/// A tool, prompt or resource as the panes show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Tool or prompt name; a resource's URI.
    pub name: String,
    pub description: String,
    /// Tools: the input schema; prompts: their arguments as an object schema of strings.
    pub schema: Value,
}

/// What the client reports.
#[derive(Debug, Clone)]
pub enum Update {
    Connected {
        protocol: String,
        server: String,
    },
    Listed {
        tools: Vec<Entry>,
        prompts: Vec<Entry>,
        resources: Vec<Entry>,
        /// Lists that could not be read (e.g. a server without prompts), as text.
        notes: Vec<String>,
    },
    /// The answer to a request: its title and the result as JSON, or the error.
    Answer {
        title: String,
        result: Result<Value, String>,
    },
    /// The connection failed or ended.
    Failed(String),
}

/// Which lifecycle to use: `auto` tries `server/discover` (2026-07-28) and falls back to
/// `initialize` (2025-11-25).
pub fn lifecycle(protocol: &str) -> Result<ClientLifecycleMode, String> {
    use rmcp::model::ProtocolVersion;
    match protocol {
        "auto" => Ok(ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        }),
        "2026-07-28" => Ok(ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] }),
        "2025-11-25" => Ok(ClientLifecycleMode::Initialize),
        other => Err(format!("--protocol `{other}`: expected auto, 2025-11-25 or 2026-07-28")),
    }
}

fn tool_entry(t: rmcp::model::Tool) -> Entry {
    Entry {
        name: t.name.to_string(),
        description: t.description.map(|d| d.to_string()).unwrap_or_default(),
        schema: Value::Object((*t.input_schema).clone()),
    }
}

fn prompt_entry(p: rmcp::model::Prompt) -> Entry {
    let args = p.arguments.unwrap_or_default();
    let properties: Map<String, Value> = args
        .iter()
        .map(|a| (a.name.clone(), json!({"type": "string", "description": a.description.clone().unwrap_or_default()})))
        .collect();
    let required: Vec<&str> = args.iter().filter(|a| a.required == Some(true)).map(|a| a.name.as_str()).collect();
    Entry {
        name: p.name,
        description: p.description.unwrap_or_default(),
        schema: json!({"type": "object", "properties": properties, "required": required}),
    }
}

fn resource_entry(r: rmcp::model::Resource) -> Entry {
    let v = serde_json::to_value(&r).unwrap_or(Value::Null);
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let mime = text("mimeType");
    Entry {
        name: text("uri"),
        description: format!("{}{}", text("name"), if mime.is_empty() { String::new() } else { format!(" ({mime})") }),
        schema: Value::Null,
    }
}

async fn list(peer: &rmcp::Peer<rmcp::RoleClient>) -> Update {
    let mut notes = Vec::new();
    let tools = match peer.list_all_tools().await {
        Ok(t) => t.into_iter().map(tool_entry).collect(),
        Err(e) => {
            notes.push(format!("tools/list: {e}"));
            Vec::new()
        }
    };
    let caps = peer.peer_info().and_then(|i| serde_json::to_value(&i.capabilities).ok()).unwrap_or(Value::Null);
    let prompts = if caps.get("prompts").is_some() {
        match peer.list_all_prompts().await {
            Ok(p) => p.into_iter().map(prompt_entry).collect(),
            Err(e) => {
                notes.push(format!("prompts/list: {e}"));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let resources = if caps.get("resources").is_some() {
        match peer.list_all_resources().await {
            Ok(r) => r.into_iter().map(resource_entry).collect(),
            Err(e) => {
                notes.push(format!("resources/list: {e}"));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    Update::Listed { tools, prompts, resources, notes }
}

fn answer<T: serde::Serialize, E: std::fmt::Display>(title: String, r: Result<T, E>) -> Update {
    Update::Answer { title, result: r.map(|v| serde_json::to_value(v).unwrap_or(Value::Null)).map_err(|e| e.to_string()) }
}

/// Connect to `url` and serve `requests` until the UI drops its sender.
pub async fn run(
    url: String,
    token: Option<String>,
    lifecycle: ClientLifecycleMode,
    tap: Tap,
    mut requests: mpsc::UnboundedReceiver<Request>,
    updates: mpsc::UnboundedSender<Update>,
) {
    let client = match crate::probe::connect(&url, token.as_deref(), "mcpctl-console", lifecycle, Some(tap)).await {
        Ok(c) => c,
        Err(e) => {
            let _ = updates.send(Update::Failed(format!("cannot connect to {}: {e}", reconciler::redact::urls(&url))));
            return;
        }
    };
    let (protocol, server) = crate::probe::describe(&client);
    let _ = updates.send(Update::Connected { protocol, server });
    let peer = client.peer().clone();
    let _ = updates.send(list(&peer).await);
    while let Some(req) = requests.recv().await {
        let peer = peer.clone();
        let updates = updates.clone();
        tokio::spawn(async move {
            let update = match req {
                Request::Refresh => list(&peer).await,
                Request::CallTool { name, args } => {
                    let mut p = CallToolRequestParams::new(name.clone());
                    p.arguments = Some(args);
                    let u = answer(format!("tools/call {name}"), peer.call_tool(p).await);
                    let opened_gate = name == gateway::mcp::BEGIN_SESSION;
                    let _ = updates.send(u);
                    if !opened_gate {
                        return;
                    }
                    // The gate opened: what the session may use has changed.
                    list(&peer).await
                }
                Request::GetPrompt { name, args } => {
                    let mut p = GetPromptRequestParams::new(name.clone());
                    p.arguments = Some(args);
                    answer(format!("prompts/get {name}"), peer.get_prompt(p).await)
                }
                Request::ReadResource { uri } => {
                    answer(format!("resources/read {uri}"), peer.read_resource(ReadResourceRequestParams::new(uri.clone())).await)
                }
            };
            let _ = updates.send(update);
        });
    }
    let _ = client.cancel().await;
}
