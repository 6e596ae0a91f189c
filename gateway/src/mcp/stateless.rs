//! The direct answer of a stateless (2026-07-28) `tools/call`, the request a stateless client
//! sends most, without an rmcp service built for it.
//!
//! rmcp serves every stateless request with a service of its own (a spawned serve loop,
//! channels, a peer, the handler's `get_info`), which was the largest cost of a call through the
//! gateway. Here only the plain, canonical form of the request is taken; anything else — another
//! method, a session, an `Origin` header, a progress token, `Mcp-Param-*` or other `Mcp-*`
//! headers, an unusual `Accept`, a body rmcp might read differently — goes to rmcp exactly as
//! before, and rmcp produces every protocol error.
//!
//! # Guarantees
//! A request answered here passed the checks rmcp makes on the same request (Host allowlist,
//! `Accept` and `Content-Type`, `MCP-Protocol-Version` equal to the `_meta` protocol version,
//! `Mcp-Method`/`Mcp-Name` equal to the body, the required `_meta` keys, a supported version),
//! then runs the project handler's own `tools/call` ([`ProjectHandler::call_relayed`]: RBAC, the
//! gate, the upstream, audit, metrics) on its own task — so a client that disconnects cancels
//! the call upstream (`notifications/cancelled`) and the call is still audited, as with rmcp —
//! and gets the answer rmcp gives: one JSON-RPC message as `application/json`, with the HTTP
//! status rmcp maps its error code to.
//!
//! A local process's plain result (`content`, no `resultType` other than `complete`) comes back
//! as the bytes it wrote (`upstream::relay`) and is spliced into the answer, `resultType` added
//! when absent: the same JSON value rmcp gives, without decoding it into rmcp's types and
//! encoding it again. Any other result is decoded as rmcp decodes it and answered as before.
//!
//! # Caveats
//! A spliced result keeps members rmcp's types do not know (rmcp would drop them), and is not
//! checked against rmcp's content types beyond its envelope.
//!
//! A request answered here has no response stream: a request the upstream sends during it
//! (sampling, elicitation, roots) is refused and counted, and a log message dropped. rmcp refuses
//! server-to-client requests on 2026-07-28 as well (that revision replaced them with
//! `InputRequiredResult`, which is relayed).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ErrorCode, ProtocolVersion, RequestId, ServerJsonRpcMessage, ServerResult,
};
use rmcp::ErrorData as McpError;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::access::Access;
use super::handler::{tool_response, ProjectHandler};
use super::BEGIN_SESSION;
use crate::upstream::relay::Answer;
use crate::upstream::{Downstream, Relayed};
use crate::AppState;

/// The only protocol revision answered here.
const VERSION: &str = "2026-07-28";

/// A `tools/call` to answer directly.
pub(super) struct Call {
    id: RequestId,
    params: CallToolRequestParams,
    /// Whether the client declared the tasks capability (a task handle may be returned).
    tasks: bool,
}

/// The body as rmcp reads a request (unknown members ignored, as rmcp ignores them).
#[derive(Deserialize)]
struct Message {
    jsonrpc: String,
    id: RequestId,
    method: String,
    params: CallToolRequestParams,
}

/// `Some` when this POST (no session: checked by the caller) is a canonical stateless
/// `tools/call` this module answers, `None` when rmcp should serve it.
pub(super) fn direct(allowed_hosts: &[String], headers: &HeaderMap, body: &[u8]) -> Option<Call> {
    if headers.contains_key(header::ORIGIN) || !host_allowed(headers, allowed_hosts) || !accepts_json_and_sse(headers) {
        return None;
    }
    let content_type = one(headers, header::CONTENT_TYPE.as_str())?;
    let essence = content_type.split_once(';').map_or(content_type, |(e, _)| e);
    if !essence.trim().eq_ignore_ascii_case("application/json") || one(headers, "mcp-protocol-version")? != VERSION {
        return None;
    }
    // No `Mcp-Param-*` (checked against a tool's schema by rmcp) nor any other `Mcp-*` header.
    let known = |n: &str| matches!(n, "mcp-protocol-version" | "mcp-method" | "mcp-name");
    if headers.keys().any(|k| k.as_str().starts_with("mcp-") && !known(k.as_str())) || one(headers, "mcp-method")? != "tools/call" {
        return None;
    }
    let m: Message = serde_json::from_slice(body).ok()?;
    let name = m.params.name.as_ref();
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b));
    if m.jsonrpc != "2.0" || m.method != "tools/call" || name == BEGIN_SESSION || !plain(name) || one(headers, "mcp-name")? != name {
        return None;
    }
    let meta = m.params.meta.as_ref()?;
    let version = meta.protocol_version()?;
    if version.as_str() != VERSION || !meta.missing_required_keys(&ProtocolVersion::V_2026_07_28).is_empty() {
        return None;
    }
    if meta.get_progress_token().is_some() {
        return None;
    }
    let tasks = meta.client_capabilities().is_some_and(|c: ClientCapabilities| c.supports_tasks());
    Some(Call { id: m.id, params: m.params, tasks })
}

/// Answer `call` for `access` in `project`.
pub(super) async fn answer(app: Arc<AppState>, project: String, access: Arc<Access>, call: Call) -> Response {
    let Call { id, params, tasks } = call;
    let cancelled = CancellationToken::new();
    // Dropped with this future (the client went away): the call is cancelled, not abandoned.
    let _disconnect = cancelled.clone().drop_guard();
    let downstream = Downstream { peer: None, request: id.clone(), progress: None, cancelled };
    let handler = ProjectHandler { app, project, opened: Arc::new(AtomicBool::new(false)) };
    let task = tokio::spawn(async move {
        let view = handler.view()?;
        let typed = match handler.call_relayed(&view, &access, params, downstream).await? {
            Relayed::Raw(answer) => match plain(answer.body()) {
                Some(complete) => return Ok(Outcome::Raw { answer, complete }),
                None => serde_json::from_slice(answer.body())
                    .map_err(|e| McpError::internal_error(format!("the upstream's result is not one of rmcp's: {e}"), None))?,
            },
            Relayed::Typed(r) => *r,
        };
        match tool_response(typed)? {
            // As rmcp: no task handle for a client that did not declare tasks (SEP-2663).
            CallToolResponse::Task(_) if !tasks => {
                Err(McpError::missing_required_client_capability(ClientCapabilities::builder().enable_tasks().build()))
            }
            r => Ok(Outcome::Typed(Box::new(ServerResult::from(r)))),
        }
    });
    let result = task.await.unwrap_or_else(|e| Err(McpError::internal_error(format!("the call failed: {e}"), None)));
    let (body, status) = match result {
        Ok(Outcome::Raw { answer, complete }) => (Ok(spliced(&id, answer.body(), complete)), StatusCode::OK),
        Ok(Outcome::Typed(r)) => (serde_json::to_vec(&ServerJsonRpcMessage::response(*r, id)), StatusCode::OK),
        Err(e) => {
            let status = status_of(e.code);
            (serde_json::to_vec(&ServerJsonRpcMessage::error(e, Some(id))), status)
        }
    };
    match body {
        Ok(body) => Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .expect("valid response"),
        Err(e) => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::from(format!("cannot serialize the answer: {e}")))
            .expect("valid response"),
    }
}

/// A call's answer before it is framed.
enum Outcome {
    /// A local process's plain result, as it wrote it (`complete`: it says `resultType`).
    Raw {
        answer: Answer,
        complete: bool,
    },
    Typed(Box<ServerResult>),
}

/// The members of a result that decide whether it is spliced as written.
#[derive(Deserialize)]
struct Shape<'a> {
    #[serde(rename = "resultType", borrow)]
    result_type: Option<std::borrow::Cow<'a, str>>,
    content: Option<Vec<serde::de::IgnoredAny>>,
}

/// `Some(says_complete)` when `result` is a plain tool result (an object with a `content` list and
/// no `resultType` but `complete`), which rmcp would relay unchanged but for `resultType`.
fn plain(result: &[u8]) -> Option<bool> {
    let shape: Shape<'_> = serde_json::from_slice(result).ok()?;
    shape.content?;
    match shape.result_type.as_deref() {
        None => Some(false),
        Some("complete") => Some(true),
        Some(_) => None,
    }
}

/// `{"jsonrpc":"2.0","id":<id>,"result":<result>}`, `"resultType":"complete"` added to the result
/// unless it says so (`complete`). `result` is a JSON object with members ([`plain`]).
fn spliced(id: &RequestId, result: &[u8], complete: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(result.len() + 80);
    out.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    serde_json::to_writer(&mut out, id).expect("a request id is JSON");
    out.extend_from_slice(br#","result":"#);
    match result.strip_prefix(b"{") {
        Some(members) if !complete => {
            out.extend_from_slice(br#"{"resultType":"complete","#);
            out.extend_from_slice(members);
        }
        _ => out.extend_from_slice(result),
    }
    out.push(b'}');
    out
}

/// The HTTP status rmcp gives a JSON-RPC error answering a 2026-07-28 request.
fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::UNSUPPORTED_PROTOCOL_VERSION | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY | ErrorCode::HEADER_MISMATCH => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

/// The header's only value, as text (`None` if absent, repeated or not visible ASCII).
fn one<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v.to_str().ok(),
        _ => None,
    }
}

/// Both media types named plainly (no parameters, no quoted strings) in `Accept`.
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { return false };
        if value.contains('"') {
            return false;
        }
        for entry in value.split(',').map(str::trim) {
            json |= entry.eq_ignore_ascii_case("application/json");
            sse |= entry.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

/// rmcp's DNS-rebinding check of `Host` (hosts compared without brackets, case-insensitively;
/// an allowed entry with a port requires that port). Absent or malformed: not answered here.
fn host_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(host) = one(headers, header::HOST.as_str()) else { return false };
    let Some((host, port)) = authority(host) else { return false };
    allowed.iter().filter(|a| !a.trim().is_empty()).any(|a| {
        let (a_host, a_port) = authority(a.trim()).unwrap_or_else(|| (normalize(a.trim()), None));
        a_host == host && a_port.is_none_or(|p| port == Some(p))
    })
}

fn authority(s: &str) -> Option<(String, Option<u16>)> {
    let a = http::uri::Authority::try_from(s).ok()?;
    Some((normalize(a.host()), a.port_u16()))
}

fn normalize(host: &str) -> String {
    host.trim_matches('[').trim_matches(']').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    const CANONICAL: &[(&str, &str)] = &[
        ("host", "127.0.0.1:8080"),
        ("accept", "application/json, text/event-stream"),
        ("content-type", "application/json"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "everything__echo"),
    ];

    fn body(name: &str, meta: &str) -> Vec<u8> {
        format!(
            r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"{name}","arguments":{{"message":"hi"}},"_meta":{meta}}}}}"#
        )
        .into_bytes()
    }

    const META: &str = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"}}"#;

    fn loopback() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
    }

    #[test]
    fn the_canonical_request_is_answered_directly() {
        let call = direct(&loopback(), &headers(CANONICAL), &body("everything__echo", META)).expect("direct");
        assert_eq!(call.id, RequestId::Number(7));
        assert_eq!(call.params.name, "everything__echo");
        assert!(!call.tasks);
        assert!(direct(&[], &headers(CANONICAL), &body("everything__echo", META)).is_some(), "empty allowlist accepts any host");
    }

    /// Each departure from the canonical form goes to rmcp (which answers it, errors included).
    #[test]
    fn anything_unusual_goes_to_rmcp() {
        let with = |extra: (&'static str, &'static str)| {
            let mut h = headers(CANONICAL);
            h.insert(extra.0, HeaderValue::from_static(extra.1));
            h
        };
        let b = body("everything__echo", META);
        for (why, h) in [
            ("foreign host", with(("host", "evil.example:8080"))),
            ("origin", with(("origin", "http://127.0.0.1:3000"))),
            ("accept without sse", with(("accept", "application/json"))),
            ("quoted accept", with(("accept", r#"application/json;x="a", text/event-stream"#))),
            ("content type", with(("content-type", "text/plain"))),
            ("older revision", with(("mcp-protocol-version", "2025-11-25"))),
            ("other method header", with(("mcp-method", "tools/list"))),
            ("name header mismatch", with(("mcp-name", "everything__other"))),
            ("param header", with(("mcp-param-message", "hi"))),
        ] {
            assert!(direct(&loopback(), &h, &b).is_none(), "{why}");
        }
        let h = headers(CANONICAL);
        let meta_without_caps = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#;
        let progress =
            r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"progressToken":1}"#;
        let older_meta = r#"{"io.modelcontextprotocol/protocolVersion":"2025-11-25","io.modelcontextprotocol/clientCapabilities":{}}"#;
        for (why, b) in [
            ("no _meta", br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"everything__echo"}}"#.to_vec()),
            ("missing capabilities", body("everything__echo", meta_without_caps)),
            ("progress token", body("everything__echo", progress)),
            ("meta version differs from the header", body("everything__echo", older_meta)),
            ("not JSON", b"{".to_vec()),
            ("a notification", br#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"everything__echo"}}"#.to_vec()),
        ] {
            assert!(direct(&loopback(), &h, &b).is_none(), "{why}");
        }
        let mut gate = headers(CANONICAL);
        gate.insert("mcp-name", HeaderValue::from_static(BEGIN_SESSION));
        assert!(direct(&loopback(), &gate, &body(BEGIN_SESSION, META)).is_none(), "begin_session needs the session's peer");
    }

    #[test]
    fn hosts_are_compared_as_rmcp_compares_them() {
        let h = |v: &'static str| headers(&[("host", v)]);
        assert!(host_allowed(&h("LOCALHOST:1"), &loopback()));
        assert!(host_allowed(&h("[::1]:80"), &loopback()));
        assert!(!host_allowed(&h("127.0.0.2"), &loopback()));
        let pinned = vec!["gw.example:8443".to_string()];
        assert!(host_allowed(&h("gw.example:8443"), &pinned));
        assert!(!host_allowed(&h("gw.example:80"), &pinned));
        assert!(!host_allowed(&HeaderMap::new(), &loopback()));
    }

    /// The spliced answer is the JSON value rmcp gives for the same result.
    #[test]
    fn a_plain_result_is_spliced_into_rmcps_answer() {
        let cases = [
            (r#"{"content":[{"type":"text","text":"Echo: hi"}]}"#, Some(false)),
            (r#"{"content":[],"isError":true,"resultType":"complete"}"#, Some(true)),
            (r#"{ "content" : [{"type":"text","text":"}"}], "structuredContent": {"a": 1}}"#, Some(false)),
        ];
        for (raw, expected) in cases {
            let complete = plain(raw.as_bytes());
            assert_eq!(complete, expected, "{raw}");
            for id in [RequestId::Number(7), RequestId::String("a\"b".into())] {
                let ours: serde_json::Value = serde_json::from_slice(&spliced(&id, raw.as_bytes(), complete.unwrap())).unwrap();
                let typed: ServerResult = serde_json::from_str(raw).unwrap();
                let r = match tool_response(typed).unwrap() {
                    CallToolResponse::Complete(r) => ServerResult::CallToolResult(r),
                    _ => unreachable!("a complete result"),
                };
                let rmcps = serde_json::to_value(ServerJsonRpcMessage::response(r, id)).unwrap();
                assert_eq!(ours, rmcps, "{raw}");
            }
        }
    }

    #[test]
    fn other_results_are_not_spliced() {
        for raw in
            [r#"{}"#, r#"{"content":{}}"#, r#"{"resultType":"task","task":{}}"#, r#"{"resultType":"input_required","content":[]}"#, "[]"]
        {
            assert_eq!(plain(raw.as_bytes()), None, "{raw}");
        }
    }

    #[test]
    fn error_statuses_follow_rmcp() {
        assert_eq!(status_of(ErrorCode::INVALID_PARAMS), StatusCode::OK);
        assert_eq!(status_of(ErrorCode::METHOD_NOT_FOUND), StatusCode::NOT_FOUND);
        assert_eq!(status_of(ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY), StatusCode::BAD_REQUEST);
    }
}
