//! Chat with agents: `POST /api/v1/agents/{agent}/chat` (SSE or one JSON answer), the thread
//! routes, and the OpenAI-compatible `/v1/chat/completions` and `/v1/models`. An agent's reply
//! comes from its `Llm` ([`provider`]); its tool calls run through the project's MCP path
//! ([`tools`]); every step is stored in the thread ([`engine`]).
//!
//! | file | job |
//! |---|---|
//! | `engine` | one turn: judging the call, the tool-use loop, persisting and streaming each step |
//! | `provider/` | the `Llm` as an HTTP client: OpenAI Chat Completions and Anthropic Messages, retries, timeouts |
//! | `tools` | the in-process MCP session an agent's tools are called through |
//! | `threads` | `GET /api/v1/threads[/{id}]` |
//! | `openai_compat` | `/v1/chat/completions` and `/v1/models` for OpenAI client libraries |
//! | `error` | what chat fails with, as HTTP |
//!
//! # Guarantees
//! See [`engine`] (persistence, bounds) and [`provider`] (timeouts, retries, keys). Threads
//! belong to the caller's user (or the token, for a token without one) and are only visible to
//! it and to holders of `{role: run, action: audit}` in the project; another owner's thread is
//! reported as not found.

pub mod engine;
pub mod error;
pub mod openai_compat;
pub mod provider;
pub mod threads;
pub mod tools;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use schema::spec::Sampling;
use schema::{DesiredState, Kind, Spec};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Authenticated;
use crate::AppState;
pub use error::ChatError;
use provider::Llm;

/// Pending replies not touched for this long belong to a gateway that stopped; they are marked
/// failed (see [`recover`]).
pub const STALE_AFTER: Duration = Duration::from_secs(90);
/// How often stale pending replies are looked for.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Settings of chat.
#[derive(Debug, Clone)]
pub struct ChatSettings {
    /// Decrypts / holds the `Llm`s' API keys (the reconciler's resolver in `mcpctl serve`).
    pub secrets: reconciler::secrets::SecretResolver,
    /// At start, pending replies older than this are marked failed. `mcpctl serve` (the only
    /// writer) uses zero: every pending reply at start is an orphan. Gateways sharing a database
    /// use [`STALE_AFTER`], so they do not fail each other's replies in flight.
    pub pending_grace: Duration,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self { secrets: reconciler::secrets::SecretResolver::none(), pending_grace: Duration::ZERO }
    }
}

/// API keys by `Llm` resource key, for the deployed revision named first.
type KeyCache = (String, HashMap<String, Option<Arc<str>>>);

/// Chat's share of the gateway state: the providers' HTTP client and the keys resolved.
pub struct Chat {
    http: reqwest::Client,
    secrets: reconciler::secrets::SecretResolver,
    /// API keys by `Llm` (resource key), for one deployed revision.
    keys: Mutex<KeyCache>,
}

impl Chat {
    pub fn new(s: &ChatSettings) -> Chat {
        Chat { http: provider::http_client(), secrets: s.secrets.clone(), keys: Mutex::new((String::new(), HashMap::new())) }
    }

    /// The `Llm` an agent of `project` names (the project's own, else a cluster-wide one), with
    /// its key (decrypted once per deployed revision, held in memory only).
    ///
    /// # Errors
    /// [`ChatError::NoLlm`], [`ChatError::Key`].
    pub fn llm(&self, state: &DesiredState, project: &str, name: &str, revision: &str) -> Result<Llm, ChatError> {
        let Some(res @ schema::Resource { spec: Spec::Llm(spec), .. }) = state.resolve(Kind::Llm, name, Some(project)) else {
            return Err(ChatError::NoLlm { llm: name.to_string(), project: project.to_string() });
        };
        let llm_name = engine::llm_name(res);
        let cache_key = res.key().to_string();
        let cached = {
            let mut keys = self.keys.lock().expect("keys lock");
            if keys.0 != revision {
                *keys = (revision.to_string(), HashMap::new());
            }
            keys.1.get(&cache_key).cloned()
        };
        let key = match cached {
            Some(k) => k,
            None => {
                let k = match &spec.api_key {
                    Some(src) => Some(Arc::<str>::from(
                        self.secrets
                            .resolve(state, res.metadata.project.as_deref(), &src.secret_ref)
                            .map_err(|source| ChatError::Key { llm: llm_name.clone(), source: Box::new(source) })?
                            .trim(),
                    )),
                    None => None,
                };
                self.keys.lock().expect("keys lock").1.insert(cache_key, k.clone());
                k
            }
        };
        Ok(Llm::new(llm_name, spec, key, self.http.clone()))
    }
}

/// Mark failed the pending replies left by a stopped gateway: at once those older than `grace`,
/// then every [`SWEEP_EVERY`] those older than [`STALE_AFTER`]. Runs until dropped.
pub async fn recover(store: reconciler::Store, grace: Duration) {
    let mut older_than = grace;
    loop {
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(older_than).unwrap_or_default();
        match store.fail_stale_pending(&cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(replies = n, "pending chat replies of a stopped gateway marked failed"),
            Err(e) => tracing::warn!(error = %e, "cannot look for interrupted chat replies"),
        }
        older_than = STALE_AFTER;
        tokio::time::sleep(SWEEP_EVERY).await;
    }
}

/// Every chat route.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/agents/{agent}/chat", post(chat)).merge(threads::router()).merge(openai_compat::router())
}

/// Body of `POST /api/v1/agents/{agent}/chat`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChatBody {
    /// The agent's project (default: the token's).
    project: Option<String>,
    /// The user's message.
    message: String,
    /// Continue this thread (default: a new one).
    thread_id: Option<String>,
    /// Speak as this personality (default: the thread's, else the agent's `defaultPersonality`).
    personality: Option<String>,
    /// A system block for this call only, after all others.
    system: Option<String>,
    /// Overrides of the agent's and personality's sampling for this call.
    #[schema(value_type = Object)]
    #[serde(default)]
    sampling: Sampling,
    /// Answer as `text/event-stream` (default: one JSON answer).
    #[serde(default)]
    stream: bool,
}

/// Chat with an agent. Streamed: SSE events `thread {threadId}`, `delta {text}`,
/// `tool_call_start {id, name, arguments}`, `tool_call_end {id, name, isError, content}`, then
/// `done {threadId, messageId, usage, model, personality}` or `error {message}`.
#[utoipa::path(post, path = "/api/v1/agents/{agent}/chat", tag = "chat", request_body = ChatBody,
    params(("agent" = String, Path, description = "Agent name (in the token's project)")),
    responses(
        (status = 200, description = "`{threadId, messageId, content, toolCalls: [{id, name, arguments, isError, content}], usage: {promptTokens, completionTokens}, model, personality}`, or `text/event-stream` with `\"stream\": true`", body = Object),
        (status = 400, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody),
        (status = 403, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody),
        (status = 502, description = "the Llm failed (the error names it)", body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn chat(
    State(app): State<Arc<AppState>>,
    auth: Result<Authenticated, crate::ApiError>,
    Path(agent): Path<String>,
    body: Result<Json<ChatBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ChatError> {
    let Authenticated { caller, .. } = auth?;
    let Json(b) = body.map_err(|e| ChatError::BadRequest(e.body_text()))?;
    let input = engine::Input {
        project: b.project,
        agent,
        message: b.message,
        thread_id: b.thread_id,
        personality: b.personality,
        system: b.system,
        sampling: b.sampling,
        history: None,
    };
    let prepared = engine::prepare(&app, &caller, input).await?;
    let mut events = prepared.spawn();
    if b.stream {
        let stream = async_stream(events);
        return Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response());
    }
    let mut failed = None;
    let mut done = None;
    while let Some(e) = events.recv().await {
        match e {
            engine::Event::Done(d) => done = Some(d),
            engine::Event::Error { message } => failed = Some(message),
            _ => {}
        }
    }
    match (done, failed) {
        (Some(d), _) => Ok(Json(json!({
            "threadId": d.thread_id,
            "messageId": d.message_id,
            "content": d.content,
            "toolCalls": d.tool_calls,
            "usage": d.usage,
            "model": d.model,
            "personality": d.personality,
            "toolLimitReached": d.tool_limit_reached,
        }))
        .into_response()),
        (None, message) => Ok((
            axum::http::StatusCode::BAD_GATEWAY,
            Json(json!({"error": message.unwrap_or_else(|| "the reply ended without an answer".into())})),
        )
            .into_response()),
    }
}

/// The turn's events as SSE.
fn async_stream(events: tokio::sync::mpsc::Receiver<engine::Event>) -> impl futures::Stream<Item = Result<SseEvent, Infallible>> {
    futures::stream::unfold(events, |mut rx| async move {
        let e = rx.recv().await?;
        let sse = SseEvent::default().event(e.name()).data(e.data().to_string());
        Some((Ok(sse), rx))
    })
}
