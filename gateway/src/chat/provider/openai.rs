//! The OpenAI Chat Completions wire format (`POST {url}/chat/completions`, streamed): the request
//! body, and the decoder of its `data:` chunks (text deltas, tool-call deltas by index, usage).

use serde_json::{json, Map, Value};

use super::{common_sampling, extra_params, Decoded, Partial, Reply, Request, Role, ToolCall};

/// The streamed request body.
pub fn body(model: &str, req: &Request<'_>) -> Value {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    for t in req.messages {
        messages.push(match t.role {
            Role::User => json!({"role": "user", "content": t.content}),
            Role::Tool => json!({"role": "tool", "tool_call_id": t.tool_call_id, "content": t.content}),
            Role::Assistant if t.tool_calls.is_empty() => json!({"role": "assistant", "content": t.content}),
            Role::Assistant => {
                let calls: Vec<Value> = t
                    .tool_calls
                    .iter()
                    .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                    .collect();
                let content = if t.content.is_empty() { Value::Null } else { Value::String(t.content.clone()) };
                json!({"role": "assistant", "content": content, "tool_calls": calls})
            }
        });
    }
    let mut body = Map::new();
    body.insert("model".into(), model.into());
    body.insert("messages".into(), messages.into());
    body.insert("stream".into(), true.into());
    body.insert("stream_options".into(), json!({"include_usage": true}));
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
            .collect();
        body.insert("tools".into(), tools.into());
        if !req.allow_tools {
            body.insert("tool_choice".into(), "none".into());
        }
    }
    let s = req.sampling;
    common_sampling(s, &mut body);
    if let Some(m) = s.max_tokens {
        body.insert("max_tokens".into(), m.into());
    }
    if !s.stop.is_empty() {
        body.insert("stop".into(), json!(s.stop));
    }
    if let Some(v) = s.seed {
        body.insert("seed".into(), v.into());
    }
    if let Some(v) = s.presence_penalty {
        body.insert("presence_penalty".into(), v.into());
    }
    if let Some(v) = s.frequency_penalty {
        body.insert("frequency_penalty".into(), v.into());
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
    /// One `data:` payload.
    pub(crate) fn data(&mut self, data: &str) -> Result<Decoded, String> {
        if data == "[DONE]" {
            return Ok(Decoded { text: None, done: true });
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else { return Ok(Decoded::default()) };
        if let Some(e) = v.get("error") {
            return Err(e.get("message").and_then(Value::as_str).map_or_else(|| e.to_string(), str::to_string));
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.p.usage.prompt = u["prompt_tokens"].as_i64().unwrap_or(self.p.usage.prompt);
            self.p.usage.completion = u["completion_tokens"].as_i64().unwrap_or(self.p.usage.completion);
        }
        let mut out = Decoded::default();
        let Some(delta) = v.pointer("/choices/0/delta") else { return Ok(out) };
        if let Some(t) = delta.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
            self.p.content.push_str(t);
            out.text = Some(t.to_string());
        }
        for c in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(self.p.calls.len() as u64);
            let call =
                self.p.calls.entry(index).or_insert_with(|| ToolCall { id: String::new(), name: String::new(), arguments: String::new() });
            if let Some(id) = c.get("id").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                call.id = id.to_string();
            }
            if let Some(n) = c.pointer("/function/name").and_then(Value::as_str) {
                call.name.push_str(n);
            }
            if let Some(a) = c.pointer("/function/arguments").and_then(Value::as_str) {
                call.arguments.push_str(a);
            }
        }
        Ok(out)
    }

    pub(crate) fn finish(self) -> Reply {
        let tool_calls = self
            .p
            .calls
            .into_values()
            .enumerate()
            .filter(|(_, c)| !c.name.is_empty())
            .map(|(i, mut c)| {
                if c.id.is_empty() {
                    c.id = format!("call_{i}");
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
    use crate::chat::provider::Usage;

    #[test]
    fn typed_sampling_and_extra_parameters_are_top_level_fields() {
        let extra = [("top_k".to_string(), json!(20)), ("seed".to_string(), json!(99))].into();
        let sampling = schema::spec::Sampling { max_tokens: Some(50), seed: Some(3), extra, ..Default::default() };
        let b = body("m", &Request { system: "", messages: &[], tools: &[], allow_tools: true, sampling: &sampling });
        assert_eq!((&b["max_tokens"], &b["top_k"]), (&json!(50), &json!(20)));
        assert_eq!(b["seed"], 3, "an extra never replaces a field the gateway wrote");
        assert_eq!(b["model"], "m");
    }

    #[test]
    fn tool_call_deltas_are_joined_by_index() {
        let mut d = Decoder::default();
        for chunk in [
            r#"{"choices":[{"delta":{"content":"Hi "}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"time__get","arguments":"{\"tz\""}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"x","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":":\"UTC\"}"}}]}}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
        ] {
            d.data(chunk).unwrap();
        }
        assert!(d.data("[DONE]").unwrap().done);
        let r = d.finish();
        assert_eq!(r.content, "Hi ");
        assert_eq!(r.tool_calls.len(), 2);
        assert_eq!(r.tool_calls[0], ToolCall { id: "a".into(), name: "time__get".into(), arguments: r#"{"tz":"UTC"}"#.into() });
        assert_eq!(r.usage, Usage { prompt: 7, completion: 3 });
        assert!(Decoder::default().data(r#"{"error":{"message":"boom"}}"#).is_err());
    }
}
