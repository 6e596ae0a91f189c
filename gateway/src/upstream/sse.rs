//! The legacy HTTP+SSE transport (MCP 2024-11-05) as an rmcp client transport: `GET` the SSE URL,
//! the first `endpoint` event names the URL to `POST` messages to, answers arrive as `message`
//! events on the open stream.
//!
//! # Guarantees
//! - **Same origin only.** The endpoint is resolved against the SSE URL and refused unless it has
//!   the SSE URL's scheme, host and port: a server cannot make the gateway post its clients'
//!   messages elsewhere.
//! - **Bounded events.** One event (its lines and data together) may hold at most [`MAX_EVENT`]
//!   bytes; a larger one ends the connection instead of growing memory.
//! - **Reconnect on drop.** When the stream ends, [`Transport::receive`] yields `None`, so the
//!   session ends and the upstream reconnects (with a new `initialize`) on its next use or the
//!   background reconnect — a legacy SSE session cannot be resumed on a new stream.
//!
//! # Caveats
//! Messages are posted one request each; the `POST`'s own body is ignored (the answer comes on the
//! stream), as the 2024-11-05 revision specifies.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use rmcp::service::{RoleClient, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::mpsc;
use tracing::warn;

/// The largest event accepted on the stream, in bytes.
pub const MAX_EVENT: usize = 16 * 1024 * 1024;
/// How long the server may take to send the `endpoint` event.
const ENDPOINT_WAIT: Duration = Duration::from_secs(10);

/// What went wrong talking HTTP+SSE. URLs in these messages are redacted by the caller.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("`{0}` is not a valid http(s) URL")]
    Url(String),
    #[error("GET {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("GET {url} answered {status}")]
    Status { url: String, status: reqwest::StatusCode },
    #[error("GET {url} answered `{content_type}`, not an event stream (is this a Streamable HTTP server? use `transport: http`)")]
    NotEventStream { url: String, content_type: String },
    #[error("the event stream ended before the `endpoint` event")]
    NoEndpoint,
    #[error("no `endpoint` event within {0:?}")]
    EndpointTimeout(Duration),
    #[error("the `endpoint` event names `{0}`, which is not a valid URL")]
    BadEndpoint(String),
    #[error("the `endpoint` event names `{endpoint}`, not of the SSE URL's origin `{origin}`: refused")]
    CrossOrigin { endpoint: String, origin: String },
    #[error("reading the event stream: {0}")]
    Read(#[source] reqwest::Error),
    #[error("an event exceeded {MAX_EVENT} bytes")]
    TooLarge,
    #[error("POST {url}: {source}")]
    Post {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("POST {url} answered {status}")]
    PostStatus { url: String, status: reqwest::StatusCode },
    #[error("encoding a message: {0}")]
    Encode(#[source] serde_json::Error),
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event:` field; empty means `message`.
    pub event: String,
    pub data: String,
}

/// An incremental `text/event-stream` parser (WHATWG HTML, "Parsing an event stream"), bounded.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
}

impl Parser {
    /// Feed bytes; returns the events completed by them.
    ///
    /// # Errors
    /// [`SseError::TooLarge`] when the event being read exceeds [`MAX_EVENT`].
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, SseError> {
        let mut out = Vec::new();
        for &b in bytes {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.on_line(&line, &mut out);
                }
                _ => {
                    self.line.push(b);
                    if self.line.len() + self.data.len() + self.event.len() > MAX_EVENT {
                        return Err(SseError::TooLarge);
                    }
                }
            }
        }
        Ok(out)
    }

    fn on_line(&mut self, line: &[u8], out: &mut Vec<Event>) {
        if line.is_empty() {
            if self.has_data {
                out.push(Event { event: std::mem::take(&mut self.event), data: std::mem::take(&mut self.data) });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }
}

/// The endpoint an `endpoint` event names, resolved against `base` and checked to be of its origin.
///
/// # Errors
/// [`SseError::BadEndpoint`] or [`SseError::CrossOrigin`].
pub fn endpoint(base: &reqwest::Url, data: &str) -> Result<reqwest::Url, SseError> {
    let url = base.join(data.trim()).map_err(|_| SseError::BadEndpoint(data.trim().to_string()))?;
    if url.origin() != base.origin() {
        return Err(SseError::CrossOrigin { endpoint: url.to_string(), origin: base.origin().ascii_serialization() });
    }
    Ok(url)
}

/// A connected HTTP+SSE session: messages read from the stream by a task of its own.
pub struct SseTransport {
    http: reqwest::Client,
    post: reqwest::Url,
    rx: mpsc::Receiver<RxJsonRpcMessage<RoleClient>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for SseTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl SseTransport {
    /// Open the event stream at `url` and wait for its `endpoint` event.
    ///
    /// # Errors
    /// Any [`SseError`] of the connection or the endpoint.
    pub async fn connect(url: &str) -> Result<SseTransport, SseError> {
        let base = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| SseError::Url(url.to_string()))?;
        let http = reqwest::Client::new();
        let response = http
            .get(base.clone())
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|source| SseError::Connect { url: url.to_string(), source })?;
        if !response.status().is_success() {
            return Err(SseError::Status { url: url.to_string(), status: response.status() });
        }
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        if !content_type.starts_with("text/event-stream") {
            return Err(SseError::NotEventStream { url: url.to_string(), content_type });
        }
        let mut body = response.bytes_stream();
        let mut parser = Parser::default();
        let mut early = Vec::new();
        let post = tokio::time::timeout(ENDPOINT_WAIT, async {
            loop {
                let chunk = body.next().await.ok_or(SseError::NoEndpoint)?.map_err(SseError::Read)?;
                let mut found = None;
                for e in parser.push(&chunk)? {
                    if found.is_none() && e.event == "endpoint" {
                        found = Some(endpoint(&base, &e.data)?);
                    } else {
                        early.push(e);
                    }
                }
                if let Some(post) = found {
                    return Ok::<_, SseError>(post);
                }
            }
        })
        .await
        .map_err(|_| SseError::EndpointTimeout(ENDPOINT_WAIT))??;
        let (tx, rx) = mpsc::channel(256);
        let reader = tokio::spawn(async move {
            // Events around the endpoint in its chunk were parsed already.
            let mut pending = early;
            loop {
                for e in pending.drain(..) {
                    if let Some(m) = message(e) {
                        if tx.send(m).await.is_err() {
                            return;
                        }
                    }
                }
                match body.next().await {
                    Some(Ok(chunk)) => match parser.push(&chunk) {
                        Ok(events) => pending = events,
                        Err(e) => return warn!(error = %e, "SSE upstream stream closed"),
                    },
                    Some(Err(e)) => return warn!(error = %reconciler::redact::urls(&e.to_string()), "SSE upstream stream failed"),
                    None => return,
                }
            }
        });
        Ok(SseTransport { http, post, rx, reader })
    }
}

/// The JSON-RPC message an event carries, if it is a `message` event with one.
fn message(e: Event) -> Option<RxJsonRpcMessage<RoleClient>> {
    if !(e.event.is_empty() || e.event == "message") {
        return None;
    }
    match serde_json::from_str(&e.data) {
        Ok(m) => Some(m),
        Err(err) => {
            warn!(error = %err, "SSE upstream sent a message that is not JSON-RPC; ignored");
            None
        }
    }
}

impl Transport<RoleClient> for SseTransport {
    type Error = SseError;

    fn name() -> Cow<'static, str> {
        "sse".into()
    }

    fn send(&mut self, item: TxJsonRpcMessage<RoleClient>) -> impl Future<Output = Result<(), SseError>> + Send + 'static {
        let (http, post) = (self.http.clone(), self.post.clone());
        async move {
            let body = serde_json::to_vec(&item).map_err(SseError::Encode)?;
            let r = http
                .post(post.clone())
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|source| SseError::Post { url: post.to_string(), source })?;
            if !r.status().is_success() {
                return Err(SseError::PostStatus { url: post.to_string(), status: r.status() });
            }
            Ok(())
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        self.rx.recv().await
    }

    async fn close(&mut self) -> Result<(), SseError> {
        self.reader.abort();
        self.rx.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_parsed_across_chunks_and_line_endings() {
        let mut p = Parser::default();
        assert!(p.push(b": comment\r\nevent: endpoint\r\ndata: /message?sessionId=1").unwrap().is_empty());
        let got = p.push(b"\r\n\r\nevent: message\ndata: {\"a\":\ndata: 1}\n\ndata:x\r").unwrap();
        assert_eq!(
            got,
            [
                Event { event: "endpoint".into(), data: "/message?sessionId=1".into() },
                Event { event: "message".into(), data: "{\"a\":\n1}".into() }
            ]
        );
        assert_eq!(
            p.push(b"\n\r\n").unwrap(),
            [Event { event: String::new(), data: "x".into() }],
            "a CRLF split across chunks is one line end"
        );
        assert!(p.push(b"event: lonely\n\n").unwrap().is_empty(), "no data, no event");
    }

    #[test]
    fn an_oversized_event_is_refused() {
        let mut p = Parser::default();
        let chunk = vec![b'a'; 1024 * 1024];
        p.push(b"data: ").unwrap();
        let mut result = Ok(Vec::new());
        for _ in 0..17 {
            result = p.push(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(SseError::TooLarge)));
    }

    #[test]
    fn the_endpoint_must_be_of_the_same_origin() {
        let base = reqwest::Url::parse("http://127.0.0.1:3001/sse").unwrap();
        assert_eq!(endpoint(&base, "/message?sessionId=abc").unwrap().as_str(), "http://127.0.0.1:3001/message?sessionId=abc");
        assert_eq!(endpoint(&base, "messages/?s=1").unwrap().as_str(), "http://127.0.0.1:3001/messages/?s=1");
        for evil in ["http://evil.example/message", "//evil.example/m", "https://127.0.0.1:3001/m", "http://127.0.0.1:3002/m"] {
            assert!(matches!(endpoint(&base, evil), Err(SseError::CrossOrigin { .. })), "{evil}");
        }
    }
}
