//! The upstream test server for the MCP conformance suite (`@modelcontextprotocol/conformance`):
//! every tool, prompt and resource its server scenarios call, written with rmcp and spoken over
//! stdio. The suite talks to the *gateway*, which proxies to this server: what is measured is
//! the gateway's fidelity (progress, logging, sampling and elicitation all cross it).
//!
//! Not shipped: a test fixture built as a binary so the gateway's tests can run it
//! (`CARGO_BIN_EXE_conformance-upstream`).

#![allow(deprecated)] // logging and sampling are deprecated by SEP-2577 but tested by the suite

use std::time::Duration;

use rmcp::model::*;
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ErrorData as McpError, ServerHandler, ServiceExt};
use serde_json::{json, Value};

/// 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A 44-byte WAV header with no samples.
const WAV: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("fixture JSON matches the rmcp model")
}

fn text(t: impl Into<String>) -> CallToolResponse {
    CallToolResponse::Complete(from(json!({"content": [{"type": "text", "text": t.into()}]})))
}

fn no_args() -> Value {
    json!({"type": "object", "properties": {}})
}

fn tools() -> Vec<Tool> {
    let t = |name: &str, description: &str, schema: Value| {
        from::<Tool>(json!({"name": name, "description": description, "inputSchema": schema}))
    };
    let string_arg = |arg: &str| json!({"type": "object", "properties": {arg: {"type": "string"}}, "required": [arg]});
    vec![
        t("test_simple_text", "Returns simple text", no_args()),
        t("test_image_content", "Returns an image", no_args()),
        t("test_audio_content", "Returns audio", no_args()),
        t("test_embedded_resource", "Returns an embedded resource", no_args()),
        t("test_multiple_content_types", "Returns text, image and a resource", no_args()),
        t("test_tool_with_logging", "Logs three messages while running", no_args()),
        t("test_tool_with_progress", "Reports progress 0, 50, 100", no_args()),
        t("test_error_handling", "Always fails with isError", no_args()),
        t("test_sampling", "Asks the client's LLM", string_arg("prompt")),
        t("test_elicitation", "Asks the user", string_arg("message")),
        t("test_elicitation_sep1034_defaults", "Elicitation with defaults", no_args()),
        t("test_elicitation_sep1330_enums", "Elicitation with enum variants", no_args()),
        t(
            "json_schema_2020_12_tool",
            "Tool with JSON Schema 2020-12 features",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {"address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
                "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
                "additionalProperties": false
            }),
        ),
    ]
}

#[derive(Clone)]
struct Conformance;

impl Conformance {
    async fn elicit(ctx: &RequestContext<RoleServer>, message: &str, schema: Value) -> Result<ElicitResult, McpError> {
        let params: ElicitRequestParams = from(json!({"message": message, "requestedSchema": schema}));
        ctx.peer.create_elicitation(params).await.map_err(|e| McpError::internal_error(format!("elicitation failed: {e}"), None))
    }
}

impl ServerHandler for Conformance {
    fn get_info(&self) -> ServerConfig {
        let caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_logging()
            .enable_completions()
            .build();
        ServerConfig::new(caps).with_server_info(Implementation::new("mcpctl-conformance-upstream", env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(&self, _r: Option<PaginatedRequestParams>, _c: RequestContext<RoleServer>) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(&self, req: CallToolRequestParams, ctx: RequestContext<RoleServer>) -> Result<CallToolResponse, McpError> {
        let arg = |k: &str| req.arguments.as_ref().and_then(|a| a.get(k)).and_then(Value::as_str).unwrap_or_default().to_string();
        Ok(match req.name.as_ref() {
            "test_simple_text" => text("This is a simple text response for testing."),
            "test_image_content" => {
                CallToolResponse::Complete(from(json!({"content": [{"type": "image", "data": PNG, "mimeType": "image/png"}]})))
            }
            "test_audio_content" => {
                CallToolResponse::Complete(from(json!({"content": [{"type": "audio", "data": WAV, "mimeType": "audio/wav"}]})))
            }
            "test_embedded_resource" => CallToolResponse::Complete(from(
                json!({"content": [{"type": "resource", "resource": {"uri": "test://embedded-resource", "mimeType": "text/plain", "text": "This is an embedded resource content."}}]}),
            )),
            "test_multiple_content_types" => CallToolResponse::Complete(from(json!({"content": [
                {"type": "text", "text": "Multiple content types test:"},
                {"type": "image", "data": PNG, "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": "test://mixed-content-resource", "mimeType": "application/json", "text": "{\"test\":\"data\",\"value\":123}"}}
            ]}))),
            "test_tool_with_logging" => {
                for (i, m) in ["Tool execution started", "Tool processing data", "Tool execution completed"].iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    let _ = ctx.peer.notify_logging_message(from(json!({"level": "info", "logger": "conformance", "data": m}))).await;
                }
                text("Tool with logging executed successfully")
            }
            "test_tool_with_progress" => {
                let token = ctx.meta.get_progress_token();
                for (i, p) in [0, 50, 100].iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    if let Some(t) = &token {
                        let _ = ctx.peer.notify_progress(from(json!({"progressToken": t, "progress": p, "total": 100}))).await;
                    }
                }
                text("Tool with progress executed successfully")
            }
            "test_error_handling" => CallToolResponse::Complete(from(
                json!({"isError": true, "content": [{"type": "text", "text": "This tool intentionally returns an error for testing"}]}),
            )),
            "test_sampling" => {
                let params: CreateMessageRequestParams =
                    from(json!({"messages": [{"role": "user", "content": {"type": "text", "text": arg("prompt")}}], "maxTokens": 100}));
                let r =
                    ctx.peer.create_message(params).await.map_err(|e| McpError::internal_error(format!("sampling failed: {e}"), None))?;
                let answer = serde_json::to_value(&r)
                    .ok()
                    .and_then(|v| v.pointer("/content/text").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_default();
                text(format!("LLM response: {answer}"))
            }
            "test_elicitation" => {
                let schema = json!({"type": "object", "properties": {"username": {"type": "string", "description": "User's response"}, "email": {"type": "string", "description": "User's email address"}}, "required": ["username", "email"]});
                let r = Self::elicit(&ctx, &arg("message"), schema).await?;
                text(format!("User response: {}", serde_json::to_string(&r).unwrap_or_default()))
            }
            "test_elicitation_sep1034_defaults" => {
                let schema = json!({"type": "object", "properties": {
                    "name": {"type": "string", "default": "John Doe"},
                    "age": {"type": "integer", "default": 30},
                    "score": {"type": "number", "default": 95.5},
                    "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
                    "verified": {"type": "boolean", "default": true}
                }});
                let r = Self::elicit(&ctx, "Please review and update the form fields with defaults", schema).await?;
                text(format!("Elicitation completed: {}", serde_json::to_string(&r).unwrap_or_default()))
            }
            "test_elicitation_sep1330_enums" => {
                let schema = json!({"type": "object", "properties": {
                    "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                    "titledSingle": {"type": "string", "oneOf": [{"const": "value1", "title": "First Option"}, {"const": "value2", "title": "Second Option"}, {"const": "value3", "title": "Third Option"}]},
                    "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
                    "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                    "titledMulti": {"type": "array", "items": {"anyOf": [{"const": "value1", "title": "First Choice"}, {"const": "value2", "title": "Second Choice"}, {"const": "value3", "title": "Third Choice"}]}}
                }});
                let r = Self::elicit(&ctx, "Please select options from the enum fields", schema).await?;
                text(format!("Elicitation completed: {}", serde_json::to_string(&r).unwrap_or_default()))
            }
            "json_schema_2020_12_tool" => text("ok"),
            other => return Err(McpError::invalid_params(format!("unknown tool {other}"), None)),
        })
    }

    async fn list_prompts(
        &self,
        _r: Option<PaginatedRequestParams>,
        _c: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(from(json!({"prompts": [
            {"name": "test_simple_prompt", "description": "A simple prompt"},
            {"name": "test_prompt_with_arguments", "description": "A prompt with arguments", "arguments": [{"name": "arg1", "description": "First test argument", "required": true}, {"name": "arg2", "description": "Second test argument", "required": true}]},
            {"name": "test_prompt_with_embedded_resource", "description": "A prompt embedding a resource", "arguments": [{"name": "resourceUri", "description": "URI of the resource to embed", "required": true}]},
            {"name": "test_prompt_with_image", "description": "A prompt with an image"}
        ]})))
    }

    async fn get_prompt(&self, req: GetPromptRequestParams, _c: RequestContext<RoleServer>) -> Result<GetPromptResponse, McpError> {
        let arg = |k: &str| req.arguments.as_ref().and_then(|a| a.get(k)).and_then(Value::as_str).unwrap_or_default().to_string();
        let messages = match req.name.as_str() {
            "test_simple_prompt" => json!([{"role": "user", "content": {"type": "text", "text": "This is a simple prompt for testing."}}]),
            "test_prompt_with_arguments" => {
                json!([{"role": "user", "content": {"type": "text", "text": format!("Prompt with arguments: arg1='{}', arg2='{}'", arg("arg1"), arg("arg2"))}}])
            }
            "test_prompt_with_embedded_resource" => json!([
                {"role": "user", "content": {"type": "resource", "resource": {"uri": arg("resourceUri"), "mimeType": "text/plain", "text": "Embedded resource content for testing."}}},
                {"role": "user", "content": {"type": "text", "text": "Please process the embedded resource above."}}
            ]),
            "test_prompt_with_image" => json!([
                {"role": "user", "content": {"type": "image", "data": PNG, "mimeType": "image/png"}},
                {"role": "user", "content": {"type": "text", "text": "Please analyze the image above."}}
            ]),
            other => return Err(McpError::invalid_params(format!("unknown prompt {other}"), None)),
        };
        Ok(GetPromptResponse::Complete(from(json!({"messages": messages}))))
    }

    async fn list_resources(
        &self,
        _r: Option<PaginatedRequestParams>,
        _c: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(from(json!({"resources": [
            {"uri": "test://static-text", "name": "static-text", "description": "A static text resource", "mimeType": "text/plain"},
            {"uri": "test://static-binary", "name": "static-binary", "description": "A static binary resource", "mimeType": "image/png"},
            {"uri": "test://watched-resource", "name": "watched-resource", "description": "A resource to subscribe to", "mimeType": "text/plain"}
        ]})))
    }

    async fn list_resource_templates(
        &self,
        _r: Option<PaginatedRequestParams>,
        _c: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(from(
            json!({"resourceTemplates": [{"uriTemplate": "test://template/{id}/data", "name": "template", "description": "A templated resource", "mimeType": "application/json"}]}),
        ))
    }

    async fn read_resource(
        &self,
        req: ReadResourceRequestParams,
        _c: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = req.uri.as_str();
        let contents = if uri == "test://static-text" || uri == "test://watched-resource" {
            json!([{"uri": uri, "mimeType": "text/plain", "text": "This is the content of the static text resource."}])
        } else if uri == "test://static-binary" {
            json!([{"uri": uri, "mimeType": "image/png", "blob": PNG}])
        } else if let Some(id) = uri.strip_prefix("test://template/").and_then(|r| r.strip_suffix("/data")) {
            json!([{"uri": uri, "mimeType": "application/json", "text": format!("{{\"id\":\"{id}\",\"templateTest\":true,\"data\":\"Data for ID: {id}\"}}")}])
        } else {
            return Err(McpError::resource_not_found(format!("no resource {uri}"), None));
        };
        Ok(ReadResourceResponse::Complete(from(json!({"contents": contents}))))
    }

    async fn subscribe(&self, _req: SubscribeRequestParams, _c: RequestContext<RoleServer>) -> Result<(), McpError> {
        Ok(())
    }

    async fn unsubscribe(&self, _req: UnsubscribeRequestParams, _c: RequestContext<RoleServer>) -> Result<(), McpError> {
        Ok(())
    }

    async fn set_level(&self, _req: SetLevelRequestParams, _c: RequestContext<RoleServer>) -> Result<(), McpError> {
        Ok(())
    }

    async fn complete(&self, req: CompleteRequestParams, _c: RequestContext<RoleServer>) -> Result<CompleteResult, McpError> {
        let prefix = req.argument.value.clone();
        let values: Vec<&str> = ["paris", "park", "party"].into_iter().filter(|v| v.starts_with(prefix.as_str())).collect();
        Ok(from(json!({"completion": {"values": values, "total": values.len(), "hasMore": false}})))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let service = Conformance.serve((tokio::io::stdin(), tokio::io::stdout())).await.expect("serve stdio");
    let _ = service.waiting().await;
}
