//! An agent's tools: an in-process MCP session with its project's own [`ProjectHandler`], the one
//! external clients reach over HTTP. Lists and calls therefore go through the same snapshot,
//! RBAC (the caller's grants, in the agent's project), routing, upstream sessions, metrics and
//! audit — each audit row carrying the thread id.
//!
//! The session runs over in-memory channels (no serialisation); the caller's [`Access`] is put
//! on every request as it arrives, where the HTTP front door would have attached it. The gate of
//! a gated project is open for it: the agent's system blocks carry the project's prompts, and
//! `begin_session` is a step for interactive clients.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use futures::StreamExt;
use rmcp::model::{CallToolRequestParams, ClientJsonRpcMessage, ContentBlock, GetExtensions, JsonRpcMessage, ServerJsonRpcMessage};
use rmcp::service::{RoleClient, RunningService};
use rmcp::ServiceExt;

use super::provider::{ToolCall, ToolDef};
use crate::mcp::access::Access;
use crate::mcp::ProjectHandler;
use crate::AppState;

/// Messages buffered each way on the in-process session.
const CHANNEL: usize = 64;
/// How long a turn waits for the project's servers that are still starting before it lists
/// the tools (a server not up by then is left out of this turn).
pub const TOOLS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest tool result handed to the model (bytes); the rest is cut with a note.
pub const MAX_TOOL_RESULT_BYTES: usize = 64 * 1024;

/// Why the tools of an agent cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    #[error("cannot open the MCP session of project `{project}`: {message}")]
    Open { project: String, message: String },
}

/// One agent turn's MCP session with its project.
pub struct ToolSession {
    client: RunningService<RoleClient, ()>,
}

/// What a tool call came to, as told to the model.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub is_error: bool,
    pub content: String,
}

impl ToolSession {
    /// Open a session with `project`'s handler as `access`.
    ///
    /// # Errors
    /// [`ToolsError::Open`] when the in-process handshake fails.
    pub(crate) async fn open(app: Arc<AppState>, project: &str, access: Access) -> Result<ToolSession, ToolsError> {
        let (to_server, from_client) = futures::channel::mpsc::channel::<ClientJsonRpcMessage>(CHANNEL);
        let (to_client, from_server) = futures::channel::mpsc::channel::<ServerJsonRpcMessage>(CHANNEL);
        let tagged = Arc::new(access.clone());
        let from_client = from_client.map(move |mut m| {
            if let JsonRpcMessage::Request(r) = &mut m {
                r.request.extensions_mut().insert(tagged.clone());
            }
            m
        });
        // Servers still starting are waited for (bounded), so the first turn after a deploy sees them.
        if let Some(view) = app.catalog().projects.get(project).cloned() {
            let ups = view.servers.iter().filter(|s| access.sees_server(&s.name)).filter_map(|s| app.upstreams.get(&s.key));
            futures::future::join_all(ups.map(|u| async move { tokio::time::timeout(TOOLS_WAIT, u.tools()).await })).await;
        }
        let handler = ProjectHandler { app, project: project.to_string(), opened: Arc::new(AtomicBool::new(true)) };
        let fail = |e: String| ToolsError::Open { project: project.to_string(), message: e };
        let server = tokio::spawn(async move { handler.serve((to_client, from_client)).await.map(|running| running.waiting()) });
        let client = ().serve((to_server, from_server)).await.map_err(|e| fail(e.to_string()))?;
        // The server side ends when the client is dropped (its channel closes).
        tokio::spawn(async move {
            if let Ok(Ok(waiting)) = server.await {
                let _ = waiting.await;
            }
        });
        Ok(ToolSession { client })
    }

    /// The tools the caller may see, as offered to the model (`<server>__<tool>`). A project
    /// whose servers cannot be listed offers what it can.
    pub async fn list(&self) -> Vec<ToolDef> {
        match self.client.peer().list_all_tools().await {
            Ok(tools) => tools
                .into_iter()
                .map(|t| ToolDef {
                    name: t.name.to_string(),
                    description: t.description.as_deref().unwrap_or_default().to_string(),
                    parameters: serde_json::Value::Object((*t.input_schema).clone()),
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "listing an agent's tools failed; it answers without them");
                Vec::new()
            }
        }
    }

    /// Run one call. A refusal (RBAC), an unknown tool, bad arguments or an upstream failure
    /// come back as an error result for the model, never as a failure of the turn.
    pub async fn call(&self, call: &ToolCall) -> Outcome {
        let arguments =
            match serde_json::from_str::<serde_json::Value>(if call.arguments.trim().is_empty() { "{}" } else { &call.arguments }) {
                Ok(serde_json::Value::Object(m)) => m,
                Ok(_) | Err(_) => {
                    return Outcome { is_error: true, content: format!("the arguments of `{}` are not a JSON object", call.name) };
                }
            };
        let params = CallToolRequestParams::new(call.name.clone()).with_arguments(arguments);
        match self.client.peer().call_tool(params).await {
            Ok(r) => {
                let mut texts: Vec<String> =
                    r.content
                        .iter()
                        .map(|c| match c {
                            ContentBlock::Text(t) => t.text.clone(),
                            other => serde_json::to_string(other)
                                .map_or_else(|_| "(content)".into(), |j| format!("(non-text content: {j:.200})")),
                        })
                        .collect();
                if texts.is_empty() {
                    if let Some(s) = &r.structured_content {
                        texts.push(s.to_string());
                    }
                }
                let mut content = texts.join("\n");
                crate::audit::truncate(&mut content, MAX_TOOL_RESULT_BYTES);
                Outcome { is_error: r.is_error.unwrap_or(false), content }
            }
            Err(rmcp::ServiceError::McpError(e)) => Outcome { is_error: true, content: e.message.to_string() },
            Err(e) => Outcome { is_error: true, content: format!("the call of `{}` failed: {e}", call.name) },
        }
    }
}
