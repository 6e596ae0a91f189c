//! How a result reads on screen: a tool call's content blocks (text as is, text that is JSON
//! pretty-printed and folded, images and audio as their metadata, embedded resources by URI),
//! its `structuredContent`, a prompt's messages or a resource's contents.

use serde_json::Value;

/// Depth below which JSON is folded (`{…3 keys}`, `[…5 items]`) until unfolded.
pub const FOLD_DEPTH: usize = 2;

/// `v` pretty-printed, objects and arrays deeper than `fold` (if any) shown folded.
pub fn json_lines(v: &Value, fold: Option<usize>) -> Vec<String> {
    let mut out = Vec::new();
    walk(v, 0, fold, "", &mut out, true);
    out
}

fn walk(v: &Value, depth: usize, fold: Option<usize>, prefix: &str, out: &mut Vec<String>, last: bool) {
    let pad = "  ".repeat(depth);
    let comma = if last { "" } else { "," };
    let folded = fold.is_some_and(|f| depth >= f);
    match v {
        Value::Object(m) if m.is_empty() => out.push(format!("{pad}{prefix}{{}}{comma}")),
        Value::Array(a) if a.is_empty() => out.push(format!("{pad}{prefix}[]{comma}")),
        Value::Object(m) if folded => out.push(format!("{pad}{prefix}{{…{} keys}}{comma}", m.len())),
        Value::Array(a) if folded => out.push(format!("{pad}{prefix}[…{} items]{comma}", a.len())),
        Value::Object(m) => {
            out.push(format!("{pad}{prefix}{{"));
            let n = m.len();
            for (i, (k, x)) in m.iter().enumerate() {
                walk(x, depth + 1, fold, &format!("{}: ", Value::String(k.clone())), out, i + 1 == n);
            }
            out.push(format!("{pad}}}{comma}"));
        }
        Value::Array(a) => {
            out.push(format!("{pad}{prefix}["));
            let n = a.len();
            for (i, x) in a.iter().enumerate() {
                walk(x, depth + 1, fold, "", out, i + 1 == n);
            }
            out.push(format!("{pad}]{comma}"));
        }
        scalar => out.push(format!("{pad}{prefix}{scalar}{comma}")),
    }
}

fn base64_len(data: &str) -> usize {
    data.trim_end_matches('=').len() * 3 / 4
}

/// One content block (MCP `ContentBlock`) as lines.
fn block(b: &Value, fold: Option<usize>, out: &mut Vec<String>) {
    let kind = b.get("type").and_then(Value::as_str).unwrap_or("?");
    match kind {
        "text" => {
            let text = b.get("text").and_then(Value::as_str).unwrap_or_default();
            match serde_json::from_str::<Value>(text) {
                Ok(v @ (Value::Object(_) | Value::Array(_))) => {
                    out.push("[text: JSON]".into());
                    out.extend(json_lines(&v, fold));
                }
                _ => {
                    out.push("[text]".into());
                    out.extend(text.lines().map(str::to_owned));
                }
            }
        }
        "image" | "audio" => {
            let mime = b.get("mimeType").and_then(Value::as_str).unwrap_or("?");
            let bytes = b.get("data").and_then(Value::as_str).map(base64_len).unwrap_or(0);
            out.push(format!("[{kind}] {mime}, {bytes} bytes (not shown)"));
        }
        "resource" => {
            let r = b.get("resource").cloned().unwrap_or(Value::Null);
            let uri = r.get("uri").and_then(Value::as_str).unwrap_or("?");
            let mime = r.get("mimeType").and_then(Value::as_str).unwrap_or("-");
            out.push(format!("[resource] {uri} ({mime})"));
            if let Some(t) = r.get("text").and_then(Value::as_str) {
                out.extend(t.lines().map(str::to_owned));
            } else if let Some(d) = r.get("blob").and_then(Value::as_str) {
                out.push(format!("  blob, {} bytes (not shown)", base64_len(d)));
            }
        }
        "resource_link" => {
            out.push(format!("[resource link] {}", b.get("uri").and_then(Value::as_str).unwrap_or("?")));
        }
        _ => out.extend(json_lines(b, fold)),
    }
}

/// The lines of a result (`CallToolResult`, `GetPromptResult` or `ReadResourceResult` as JSON).
pub fn result_lines(v: &Value, fold: Option<usize>) -> Vec<String> {
    let mut out = Vec::new();
    if v.get("isError").and_then(Value::as_bool) == Some(true) {
        out.push("isError: true".into());
    }
    if let Some(content) = v.get("content").and_then(Value::as_array) {
        for b in content {
            block(b, fold, &mut out);
        }
        if let Some(s) = v.get("structuredContent") {
            out.push("[structuredContent]".into());
            out.extend(json_lines(s, fold));
        }
    } else if let Some(msgs) = v.get("messages").and_then(Value::as_array) {
        for m in msgs {
            out.push(format!("[{}]", m.get("role").and_then(Value::as_str).unwrap_or("?")));
            match m.get("content") {
                Some(Value::Array(bs)) => bs.iter().for_each(|b| block(b, fold, &mut out)),
                Some(b) => block(b, fold, &mut out),
                None => {}
            }
        }
    } else if let Some(contents) = v.get("contents").and_then(Value::as_array) {
        for c in contents {
            let mut b = serde_json::json!({"type": "resource", "resource": c});
            block(&b.take(), fold, &mut out);
        }
    } else {
        out.extend(json_lines(v, fold));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_json_is_folded_and_images_are_metadata() {
        let r = json!({"content": [
            {"type": "text", "text": "{\"timezone\": \"UTC\", \"deep\": {\"a\": {\"b\": 1}}}"},
            {"type": "image", "mimeType": "image/png", "data": "AAAA"},
            {"type": "text", "text": "plain\nlines"},
        ]});
        let folded = result_lines(&r, Some(FOLD_DEPTH));
        assert_eq!(
            folded,
            [
                "[text: JSON]",
                "{",
                "  \"timezone\": \"UTC\",",
                "  \"deep\": {",
                "    \"a\": {…1 keys}",
                "  }",
                "}",
                "[image] image/png, 3 bytes (not shown)",
                "[text]",
                "plain",
                "lines"
            ]
        );
        let open = result_lines(&r, None);
        assert!(open.contains(&"      \"b\": 1".to_string()), "{open:?}");
    }
}
