//! The Anthropic Messages wire format (`POST {url}/v1/messages`, streamed): the request body
//! (system apart, tool use and tool results as content blocks, consecutive same-role messages
//! merged) and the decoder of its events (`content_block_start/delta`, `message_delta`, `error`).

use serde_json::{json, Map, Value};

use super::{
    arguments_value, common_sampling, extra_params, Decoded, Partial, Reply, Request, Role, ToolCall, DEFAULT_ANTHROPIC_MAX_TOKENS,
};

/// The `anthropic-version` header sent.
pub const VERSION: &str = "2023-06-01";

/// The streamed request body.
pub fn body(model: &str, req: &Request<'_>) -> Value {
    let mut messages: Vec<(&str, Vec<Value>)> = Vec::new();
    for t in req.messages {
        let (role, blocks) = match t.role {
            Role::User => ("user", vec![json!({"type": "text", "text": t.content})]),
            Role::Tool => {
                ("user", vec![json!({"type": "tool_result", "tool_use_id": t.tool_call_id, "content": t.content, "is_error": t.is_error})])
            }
            Role::Assistant => {
                let mut b = Vec::new();
                if !t.content.is_empty() {
                    b.push(json!({"type": "text", "text": t.content}));
                }
                for c in &t.tool_calls {
                    b.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": arguments_value(&c.arguments)}));
                }
                if b.is_empty() {
                    b.push(json!({"type": "text", "text": ""}));
                }
                ("assistant", b)
            }
        };
        match messages.last_mut() {
            Some((r, existing)) if *r == role => existing.extend(blocks),
            _ => messages.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = messages.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect();
    let s = req.sampling;
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), messages.into());
    body.insert("max_tokens".into(), s.max_tokens.unwrap_or(DEFAULT_ANTHROPIC_MAX_TOKENS).into());
    body.insert("stream".into(), true.into());
    if !req.system.is_empty() {
        body.insert("system".into(), req.system.into());
    }
    if !req.tools.is_empty() {
        let tools: Vec<Value> =
            req.tools.iter().map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters})).collect();
        body.insert("tools".into(), tools.into());
        if !req.allow_tools {
            body.insert("tool_choice".into(), json!({"type": "none"}));
        }
    }
    common_sampling(s, &mut body);
    if !s.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(s.stop));
    }
    extra_params(s, &mut body);
    Value::Object(body)
}

/// Accumulates one streamed reply.
#[derive(Debug, Default)]
pub struct Decoder {
    p: Partial,
}

impl Decoder {
    /// One `data:` payload (the event type is repeated inside it as `type`).
    pub(crate) fn data(&mut self, data: &str) -> Result<Decoded, String> {
        let Ok(v) = serde_json::from_str::<Value>(data) else { return Ok(Decoded::default()) };
        let mut out = Decoded::default();
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "error" => {
                let e = v.get("error").unwrap_or(&v);
                return Err(e.get("message").and_then(Value::as_str).map_or_else(|| e.to_string(), str::to_string));
            }
            "message_start" => {
                if let Some(u) = v.pointer("/message/usage") {
                    self.p.usage.prompt = u["input_tokens"].as_i64().unwrap_or(0);
                    self.p.usage.completion = u["output_tokens"].as_i64().unwrap_or(0);
                }
            }
            "content_block_start" => {
                let b = &v["content_block"];
                match b["type"].as_str() {
                    Some("tool_use") => {
                        let call = ToolCall {
                            id: b["id"].as_str().unwrap_or_default().to_string(),
                            name: b["name"].as_str().unwrap_or_default().to_string(),
                            arguments: String::new(),
                        };
                        self.p.calls.insert(index, call);
                    }
                    Some("text") => {
                        if let Some(t) = b["text"].as_str().filter(|t| !t.is_empty()) {
                            self.p.content.push_str(t);
                            out.text = Some(t.to_string());
                        }
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let d = &v["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => {
                        if let Some(t) = d["text"].as_str() {
                            self.p.content.push_str(t);
                            out.text = Some(t.to_string());
                        }
                    }
                    Some("input_json_delta") => {
                        if let (Some(c), Some(p)) = (self.p.calls.get_mut(&index), d["partial_json"].as_str()) {
                            c.arguments.push_str(p);
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(o) = v.pointer("/usage/output_tokens").and_then(Value::as_i64) {
                    self.p.usage.completion = o;
                }
                if let Some(i) = v.pointer("/usage/input_tokens").and_then(Value::as_i64) {
                    self.p.usage.prompt = i;
                }
            }
            "message_stop" => out.done = true,
            _ => {}
        }
        Ok(out)
    }

    pub(crate) fn finish(self) -> Reply {
        let tool_calls = self
            .p
            .calls
            .into_values()
            .map(|mut c| {
                if c.arguments.trim().is_empty() {
                    c.arguments = "{}".into();
                }
                c
            })
            .collect();
        Reply { content: self.p.content, tool_calls, usage: self.p.usage }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::provider::Turn;
    use crate::chat::provider::Usage;

    #[test]
    fn history_merges_roles_and_carries_tool_blocks() {
        let turn = |role, content: &str| Turn { role, content: content.into(), tool_calls: vec![], tool_call_id: None, is_error: false };
        let mut asked = turn(Role::Assistant, "");
        asked.tool_calls = vec![ToolCall { id: "t1".into(), name: "time__now".into(), arguments: r#"{"tz":"UTC"}"#.into() }];
        let mut answer = turn(Role::Tool, "12:00");
        answer.tool_call_id = Some("t1".into());
        let msgs = [turn(Role::User, "a"), turn(Role::User, "b"), asked, answer];
        let extra = [("top_k".to_string(), json!(3)), ("metadata".to_string(), json!({"user_id": "u1"}))].into();
        let sampling = schema::spec::Sampling { stop: vec!["X".into()], extra, ..Default::default() };
        let b = body("claude", &Request { system: "sys", messages: &msgs, tools: &[], allow_tools: true, sampling: &sampling });
        assert_eq!(b["system"], "sys");
        assert_eq!((&b["top_k"], &b["metadata"]["user_id"]), (&json!(3), &json!("u1")), "extra parameters at the top level");
        assert_eq!(b["max_tokens"], DEFAULT_ANTHROPIC_MAX_TOKENS);
        assert_eq!(b["stop_sequences"], json!(["X"]));
        let m = b["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(m[0]["content"].as_array().unwrap().len(), 2);
        assert_eq!(m[1]["content"][0]["input"]["tz"], "UTC");
        assert_eq!(m[2]["content"][0]["tool_use_id"], "t1");
    }

    #[test]
    fn stream_events_build_text_tools_and_usage() {
        let mut d = Decoder::default();
        for e in [
            r#"{"type":"message_start","message":{"usage":{"input_tokens":11,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"tu","name":"time__now","input":{}}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"tz\":"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"UTC\"}"}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#,
        ] {
            d.data(e).unwrap();
        }
        assert!(d.data(r#"{"type":"message_stop"}"#).unwrap().done);
        let r = d.finish();
        assert_eq!(r.content, "Hello");
        assert_eq!(r.tool_calls, vec![ToolCall { id: "tu".into(), name: "time__now".into(), arguments: r#"{"tz":"UTC"}"#.into() }]);
        assert_eq!(r.usage, Usage { prompt: 11, completion: 9 });
    }
}
