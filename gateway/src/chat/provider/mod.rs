//! LLM providers as the chat engine sees them: one [`Llm`] per `Llm` resource (its API flavour,
//! model, URL, key and timeout), a request in provider-neutral terms ([`Request`]), and the
//! streamed reply read event by event ([`ReplyStream`]). The two wire formats live in
//! [`openai`] (Chat Completions: OpenAI, LiteLLM, vLLM, Ollama, NIM) and [`anthropic`] (Messages).
//!
//! # Guarantees
//! - Replies are always streamed from the provider (also for a non-streaming chat), so a reply
//!   being written is visible in its pending row and a stalled provider is noticed.
//! - Connect timeout [`CONNECT_TIMEOUT`]; the response head must arrive, and then each chunk of
//!   the stream, within the `Llm`'s `timeoutSeconds` (default [`DEFAULT_TIMEOUT`]).
//! - 429 and 5xx answers (and failures to connect) are retried up to [`MAX_ATTEMPTS`] times in
//!   all, with exponential backoff from [`BACKOFF_BASE`] (capped at [`BACKOFF_CAP`]) and full
//!   jitter, or after the provider's `Retry-After` when it sends one (at most
//!   [`MAX_RETRY_AFTER`]). Nothing is retried once the stream has begun, so no text is ever
//!   received twice. 401/403 are never retried.
//! - The API key is held in memory only; it is scrubbed from any provider text an error quotes,
//!   and errors name the `Llm` (`project/name`), never the key.

pub mod anthropic;
pub mod openai;

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use schema::spec::{Provider, Sampling};
use serde_json::Value;

/// Time allowed to open a connection to a provider.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for the response head and between chunks when the `Llm` sets no `timeoutSeconds`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Attempts of one request in all (the first and its retries).
pub const MAX_ATTEMPTS: u32 = 4;
/// First backoff delay (doubled each retry, before jitter).
pub const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// Largest backoff delay.
pub const BACKOFF_CAP: Duration = Duration::from_secs(8);
/// Largest `Retry-After` honoured; a provider asking for longer fails the request.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Longest provider error text quoted in an error (bytes).
pub const MAX_ERROR_TEXT: usize = 500;
/// Largest line of a provider stream (bytes); a longer one fails the reply.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;
/// Anthropic requires `max_tokens`; sent when neither agent, personality nor call sets one.
pub const DEFAULT_ANTHROPIC_MAX_TOKENS: u32 = 4096;

/// Why a provider call failed. Every message names the `Llm`.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("Llm `{llm}`: the provider refused the API key ({status}): {message}")]
    Unauthorized { llm: String, status: u16, message: String },
    #[error("Llm `{llm}`: the provider rejected the request ({status}): {message}")]
    Rejected { llm: String, status: u16, message: String },
    #[error("Llm `{llm}`: the provider is unavailable ({status}) after {attempts} attempts: {message}")]
    Unavailable { llm: String, status: u16, attempts: u32, message: String },
    #[error("Llm `{llm}`: the provider asked to retry after {after:?}, longer than the {max:?} allowed")]
    RetryTooLate { llm: String, after: Duration, max: Duration },
    #[error("Llm `{llm}`: cannot reach {url} after {attempts} attempts: {message}")]
    Connect { llm: String, url: String, attempts: u32, message: String },
    #[error("Llm `{llm}`: no answer within {0:?}", .timeout)]
    Timeout { llm: String, timeout: Duration },
    #[error("Llm `{llm}`: the stream broke: {message}")]
    Stream { llm: String, message: String },
    #[error("Llm `{llm}`: the provider reported an error mid-reply: {message}")]
    Provider { llm: String, message: String },
}

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    Tool,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text, as the model wrote it.
    pub arguments: String,
}

/// One message of the conversation sent to the model (system text goes in [`Request::system`]).
#[derive(Debug, Clone)]
pub struct Turn {
    pub role: Role,
    pub content: String,
    /// Tool calls of an assistant message.
    pub tool_calls: Vec<ToolCall>,
    /// The call a tool message answers.
    pub tool_call_id: Option<String>,
    pub is_error: bool,
}

/// A tool offered to the model.
#[derive(Debug, Clone)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

/// One model call.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub system: &'a str,
    pub messages: &'a [Turn],
    pub tools: &'a [ToolDef],
    /// `false`: the tools are listed (a history with tool calls needs them) but may not be
    /// called (`tool_choice: none`).
    pub allow_tools: bool,
    pub sampling: &'a Sampling,
}

/// Tokens used, as reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: i64,
    pub completion: i64,
}

/// A whole reply, once its stream ended.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
}

/// An `Llm` resource made usable: where to send, with which key.
#[derive(Clone)]
pub struct Llm {
    /// `project/name` (or `name` for a cluster-wide `Llm`), for errors.
    pub name: String,
    pub provider: Provider,
    pub model: String,
    /// Base URL without a trailing `/`.
    pub url: String,
    key: Option<std::sync::Arc<str>>,
    pub timeout: Duration,
    http: reqwest::Client,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Llm({} {:?} {} at {}, key {})",
            self.name,
            self.provider,
            self.model,
            self.url,
            if self.key.is_some() { "set" } else { "none" }
        )
    }
}

/// The HTTP client every provider call shares (connection pool, connect timeout).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).tcp_nodelay(true).build().unwrap_or_default()
}

impl Llm {
    pub fn new(name: String, spec: &schema::spec::LlmSpec, key: Option<std::sync::Arc<str>>, http: reqwest::Client) -> Llm {
        let url = spec.url.clone().unwrap_or_else(|| match spec.provider {
            Provider::Openai => "https://api.openai.com/v1".to_string(),
            Provider::Anthropic => "https://api.anthropic.com".to_string(),
        });
        Llm {
            name,
            provider: spec.provider,
            model: spec.model.clone(),
            url: url.trim_end_matches('/').to_string(),
            key,
            timeout: spec.timeout_seconds.map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(u64::from(s.max(1)))),
            http,
        }
    }

    /// Send `req` and return the reply's stream once the provider accepted it (retrying as the
    /// module documentation says).
    ///
    /// # Errors
    /// [`LlmError`], naming this `Llm`.
    pub async fn stream(&self, req: Request<'_>) -> Result<ReplyStream, LlmError> {
        let (url, body) = match self.provider {
            Provider::Openai => (format!("{}/chat/completions", self.url), openai::body(&self.model, &req)),
            Provider::Anthropic => {
                let base = self.url.strip_suffix("/v1").unwrap_or(&self.url);
                (format!("{base}/v1/messages"), anthropic::body(&self.model, &req))
            }
        };
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut rq = self.http.post(&url).header("content-type", "application/json").header("accept", "text/event-stream");
            rq = match (self.provider, &self.key) {
                (Provider::Openai, Some(k)) => rq.bearer_auth(&**k),
                (Provider::Anthropic, Some(k)) => rq.header("x-api-key", &**k).header("anthropic-version", anthropic::VERSION),
                (Provider::Anthropic, None) => rq.header("anthropic-version", anthropic::VERSION),
                (Provider::Openai, None) => rq,
            };
            let sent = tokio::time::timeout(self.timeout, rq.body(body.clone()).send()).await;
            let wait = match sent {
                Err(_) => return Err(LlmError::Timeout { llm: self.name.clone(), timeout: self.timeout }),
                Ok(Err(e)) if attempt < MAX_ATTEMPTS && e.is_connect() => backoff(attempt),
                Ok(Err(e)) => {
                    return Err(LlmError::Connect {
                        llm: self.name.clone(),
                        url: reconciler::redact::urls(&url),
                        attempts: attempt,
                        message: self.scrub(&error_chain(&e)),
                    })
                }
                Ok(Ok(resp)) if resp.status().is_success() => return Ok(ReplyStream::new(self, resp)),
                Ok(Ok(resp)) => {
                    let status = resp.status().as_u16();
                    let retry_after = retry_after(resp.headers());
                    let message = self.scrub(&error_text(resp).await);
                    let llm = self.name.clone();
                    match status {
                        401 | 403 => return Err(LlmError::Unauthorized { llm, status, message }),
                        429 | 500..=599 if attempt < MAX_ATTEMPTS => match retry_after {
                            Some(after) if after > MAX_RETRY_AFTER => {
                                return Err(LlmError::RetryTooLate { llm, after, max: MAX_RETRY_AFTER })
                            }
                            Some(after) => after,
                            None => backoff(attempt),
                        },
                        429 | 500..=599 => return Err(LlmError::Unavailable { llm, status, attempts: attempt, message }),
                        _ => return Err(LlmError::Rejected { llm, status, message }),
                    }
                }
            };
            tracing::debug!(llm = %self.name, attempt, ?wait, "provider call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// `text` with the API key replaced, cut to [`MAX_ERROR_TEXT`].
    fn scrub(&self, text: &str) -> String {
        let mut t = match &self.key {
            Some(k) if !k.is_empty() => text.replace(&**k, "(redacted)"),
            _ => text.to_string(),
        };
        crate::audit::truncate(&mut t, MAX_ERROR_TEXT);
        t
    }
}

/// Exponential backoff with full jitter for retry number `attempt` (1-based).
fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    exp.min(BACKOFF_CAP).mul_f64(fastrand::f64())
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

/// The provider's error text: `error.message` of a JSON body, else the body itself.
async fn error_text(resp: reqwest::Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => v
            .pointer("/error/message")
            .or_else(|| v.pointer("/message"))
            .or_else(|| v.get("error"))
            .map_or(text.clone(), |m| m.as_str().map_or_else(|| m.to_string(), str::to_string)),
        Err(_) => text,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// What a provider's stream decoder makes of one `data:` payload.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub text: Option<String>,
    pub done: bool,
}

/// What a decoder has gathered of one reply so far: its text, its tool calls by their index in
/// the stream, the usage reported.
#[derive(Debug, Default)]
pub(crate) struct Partial {
    pub content: String,
    pub calls: std::collections::BTreeMap<u64, ToolCall>,
    pub usage: Usage,
}

/// The wire format being read.
enum Decoder {
    OpenAi(openai::Decoder),
    Anthropic(anthropic::Decoder),
}

/// A reply being received. Read text with [`ReplyStream::next_text`] until `None`, then take the
/// whole reply (tool calls, usage) with [`ReplyStream::finish`].
pub struct ReplyStream {
    llm: String,
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    buf: Vec<u8>,
    idle: Duration,
    decoder: Decoder,
    queued: VecDeque<String>,
    ended: bool,
}

impl ReplyStream {
    fn new(llm: &Llm, resp: reqwest::Response) -> ReplyStream {
        ReplyStream {
            llm: llm.name.clone(),
            body: Box::pin(resp.bytes_stream()),
            buf: Vec::new(),
            idle: llm.timeout,
            decoder: match llm.provider {
                Provider::Openai => Decoder::OpenAi(openai::Decoder::default()),
                Provider::Anthropic => Decoder::Anthropic(anthropic::Decoder::default()),
            },
            queued: VecDeque::new(),
            ended: false,
        }
    }

    /// The next piece of text; `None` once the reply ended.
    ///
    /// # Errors
    /// A broken or stalled stream, or an error the provider sent mid-reply.
    pub async fn next_text(&mut self) -> Result<Option<String>, LlmError> {
        loop {
            if let Some(t) = self.queued.pop_front() {
                return Ok(Some(t));
            }
            if self.ended {
                return Ok(None);
            }
            // Whole lines first; then read more.
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                self.line(&line)?;
                continue;
            }
            if self.buf.len() > MAX_LINE_BYTES {
                return Err(LlmError::Stream { llm: self.llm.clone(), message: format!("a line longer than {MAX_LINE_BYTES} bytes") });
            }
            match tokio::time::timeout(self.idle, self.body.next()).await {
                Err(_) => return Err(LlmError::Timeout { llm: self.llm.clone(), timeout: self.idle }),
                Ok(Some(Ok(chunk))) => self.buf.extend_from_slice(&chunk),
                Ok(Some(Err(e))) => return Err(LlmError::Stream { llm: self.llm.clone(), message: error_chain(&e) }),
                Ok(None) => {
                    let rest = std::mem::take(&mut self.buf);
                    self.line(&rest)?;
                    self.ended = true;
                }
            }
        }
    }

    fn line(&mut self, raw: &[u8]) -> Result<(), LlmError> {
        let line = String::from_utf8_lossy(raw);
        let line = line.trim_end_matches(['\r', '\n']);
        let Some(data) = line.strip_prefix("data:") else { return Ok(()) };
        let data = data.trim_start();
        let decoded = match &mut self.decoder {
            Decoder::OpenAi(d) => d.data(data),
            Decoder::Anthropic(d) => d.data(data),
        }
        .map_err(|message| LlmError::Provider { llm: self.llm.clone(), message })?;
        if let Some(t) = decoded.text.filter(|t| !t.is_empty()) {
            self.queued.push_back(t);
        }
        if decoded.done {
            self.ended = true;
        }
        Ok(())
    }

    /// The whole reply (the text read, tool calls, usage). Call after [`ReplyStream::next_text`]
    /// returned `None`.
    pub fn finish(self) -> Reply {
        match self.decoder {
            Decoder::OpenAi(d) => d.finish(),
            Decoder::Anthropic(d) => d.finish(),
        }
    }
}

/// Sampling fields both wire formats share, as JSON (only the set ones).
fn common_sampling(s: &Sampling, body: &mut serde_json::Map<String, Value>) {
    if let Some(t) = s.temperature {
        body.insert("temperature".into(), t.into());
    }
    if let Some(p) = s.top_p {
        body.insert("top_p".into(), p.into());
    }
}

/// `sampling.extra`, as top-level fields of the request body; a field the gateway already wrote
/// is kept (validation refuses those keys, this only makes sure an extra can never replace one).
fn extra_params(s: &Sampling, body: &mut serde_json::Map<String, Value>) {
    for (k, v) in &s.extra {
        body.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

/// Tool call arguments as a JSON value (an object when the model wrote nothing or garbage, so a
/// provider that requires an object accepts the history).
pub(crate) fn arguments_value(args: &str) -> Value {
    match serde_json::from_str::<Value>(args) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::Object(Default::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_stays_capped_and_jitters() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            assert!(d <= BACKOFF_CAP, "{d:?}");
            assert!(d <= BACKOFF_BASE.saturating_mul(1 << (attempt - 1).min(16)));
        }
        let samples: std::collections::HashSet<_> = (0..20).map(|_| backoff(3)).collect();
        assert!(samples.len() > 1, "jitter varies the delay");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        let later = std::time::SystemTime::now() + Duration::from_secs(30);
        h.insert(reqwest::header::RETRY_AFTER, httpdate::fmt_http_date(later).parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
