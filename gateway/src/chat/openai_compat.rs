//! The OpenAI-compatible face of the agents, so any OpenAI client library talks to one:
//! `GET /v1/models` (the agents the token may chat with, as `<project>/<agent>` and
//! `<project>/<agent>:<personality>`) and `POST /v1/chat/completions` (streamed or not) where
//! `model` names one of them.
//!
//! The client's messages are the conversation (OpenAI's API is stateless): its `system` messages
//! become the call's system override block, the rest is sent after the agent's own system
//! blocks. The agent's tools run in the gateway (the client sees only the final text); each call
//! is recorded as a new thread (its id in `mcpctl_thread_id` and the `x-mcpctl-thread-id` header).
//! Errors use OpenAI's shape `{"error": {"message", "type", "code"}}`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use schema::spec::Sampling;
use schema::{Kind, Spec};
use serde::Deserialize;
use serde_json::{json, Value};

use super::engine::{self, may_chat, Event};
use super::provider::{Role, Turn};
use super::ChatError;
use crate::auth::Authenticated;
use crate::AppState;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/v1/models", get(models)).route("/v1/chat/completions", post(completions))
}

/// An error as OpenAI clients expect it.
pub struct OpenAiError(ChatError);

impl<E: Into<ChatError>> From<E> for OpenAiError {
    fn from(e: E) -> Self {
        OpenAiError(e.into())
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let kind = match status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            400 => "invalid_request_error",
            _ => "api_error",
        };
        (status, Json(json!({"error": {"message": self.0.to_string(), "type": kind, "code": status.as_u16()}}))).into_response()
    }
}

/// The agents (and their personalities) this token may chat with.
#[utoipa::path(get, path = "/v1/models", tag = "openai",
    responses((status = 200, description = "`{object: list, data: [{id: <project>/<agent>[:<personality>], object: model, created, owned_by}]}`", body = Object),
        (status = 401, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn models(auth: Result<Authenticated, crate::ApiError>) -> Result<Json<Value>, OpenAiError> {
    let Authenticated { caller, snapshot } = auth?;
    let state = &snapshot.catalog.state;
    let mut data = Vec::new();
    for a in state.of_kind(Kind::Agent) {
        let project = a.metadata.project.as_deref().unwrap_or_default();
        if !may_chat(&caller, project, a.name()) {
            continue;
        }
        data.push(json!({"id": format!("{project}/{}", a.name()), "object": "model", "created": 0, "owned_by": "mcpctl"}));
        for p in state.of_kind(Kind::Personality).filter(|r| r.metadata.project.as_deref() == Some(project)) {
            if matches!(&p.spec, Spec::Personality(ps) if ps.agent == a.name()) {
                let id = format!("{project}/{}:{}", a.name(), p.name());
                data.push(json!({"id": id, "object": "model", "created": 0, "owned_by": "mcpctl"}));
            }
        }
    }
    Ok(Json(json!({"object": "list", "data": data})))
}

/// Body of `POST /v1/chat/completions` (the fields used; others are ignored, as OpenAI-compatible
/// servers do).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CompletionBody {
    /// `<project>/<agent>[:<personality>]`.
    model: String,
    #[schema(value_type = Vec<Object>)]
    messages: Vec<Value>,
    #[serde(default)]
    stream: bool,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    #[schema(value_type = Object)]
    stop: Option<Value>,
    seed: Option<i64>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
}

/// `content` of an OpenAI message: a string, or the text parts of a list.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join(""),
        _ => String::new(),
    }
}

/// Chat with an agent as if it were an OpenAI model.
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai", request_body = CompletionBody,
    responses((status = 200, description = "An OpenAI `chat.completion` (or `chat.completion.chunk` SSE with `stream: true`)", body = Object),
        (status = 400, body = crate::openapi::ErrorBody), (status = 401, body = crate::openapi::ErrorBody),
        (status = 403, body = crate::openapi::ErrorBody), (status = 404, body = crate::openapi::ErrorBody),
        (status = 502, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn completions(
    State(app): State<Arc<AppState>>,
    auth: Result<Authenticated, crate::ApiError>,
    body: Result<Json<CompletionBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, OpenAiError> {
    let Authenticated { caller, .. } = auth?;
    let Json(b) = body.map_err(|e| ChatError::BadRequest(e.body_text()))?;
    let (path, personality) = match b.model.split_once(':') {
        Some((p, persona)) => (p, Some(persona.to_string())),
        None => (b.model.as_str(), None),
    };
    let (project, agent) = path.split_once('/').ok_or_else(|| {
        ChatError::NotFound(format!("model `{}` (models are `<project>/<agent>[:<personality>]`, see /v1/models)", b.model))
    })?;
    let mut system = Vec::new();
    let mut history = Vec::new();
    for m in &b.messages {
        let content = text_of(&m["content"]);
        let turn = |role| Turn { role, content: content.clone(), tool_calls: vec![], tool_call_id: None, is_error: false };
        match m["role"].as_str() {
            Some("system" | "developer") => system.push(content.clone()),
            Some("user") => history.push(turn(Role::User)),
            Some("assistant") => history.push(turn(Role::Assistant)),
            // The client's own tool messages answer tools the client ran; the agent's tools run here.
            _ => {}
        }
    }
    let Some(last) = history.pop().filter(|t| t.role == Role::User) else {
        return Err(ChatError::BadRequest("the last message must be the user's".into()).into());
    };
    let stop = match b.stop {
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    let sampling = Sampling {
        temperature: b.temperature,
        top_p: b.top_p,
        max_tokens: b.max_completion_tokens.or(b.max_tokens),
        stop,
        presence_penalty: b.presence_penalty,
        frequency_penalty: b.frequency_penalty,
        seed: b.seed,
        extra: Default::default(),
    };
    let input = engine::Input {
        project: Some(project.to_string()),
        agent: agent.to_string(),
        message: last.content,
        thread_id: None,
        personality,
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        sampling,
        history: Some(history),
    };
    let prepared = engine::prepare(&app, &caller, input).await?;
    let (thread, model) = (prepared.thread_id().to_string(), b.model.clone());
    let id = format!("chatcmpl-{}", thread.trim_start_matches("th_"));
    let created = chrono::Utc::now().timestamp();
    let mut events = prepared.spawn();
    let header = HeaderValue::from_str(&thread).ok();
    let mut resp = if b.stream {
        let chunk = move |delta: Value, finish: Option<&str>, usage: Option<Value>| {
            let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
            if let Some(u) = usage {
                c["usage"] = u;
            }
            c
        };
        let stream = futures::stream::unfold((events, chunk, false, false), |(mut rx, chunk, began, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let Some(e) = rx.recv().await else {
                    return Some((Ok::<_, Infallible>(SseEvent::default().data("[DONE]")), (rx, chunk, began, true)));
                };
                let data = match e {
                    Event::Delta { text } if !began => chunk(json!({"role": "assistant", "content": text}), None, None),
                    Event::Delta { text } => chunk(json!({"content": text}), None, None),
                    Event::Done(d) => {
                        let u = json!({"prompt_tokens": d.usage.prompt_tokens, "completion_tokens": d.usage.completion_tokens,
                            "total_tokens": d.usage.prompt_tokens + d.usage.completion_tokens});
                        let mut c = chunk(json!({}), Some("stop"), Some(u));
                        c["mcpctl_thread_id"] = json!(d.thread_id);
                        c
                    }
                    Event::Error { message } => json!({"error": {"message": message, "type": "api_error", "code": 502}}),
                    _ => continue,
                };
                return Some((Ok(SseEvent::default().data(data.to_string())), (rx, chunk, true, false)));
            }
        });
        Sse::new(stream).into_response()
    } else {
        let (mut done, mut failed) = (None, None);
        while let Some(e) = events.recv().await {
            match e {
                Event::Done(d) => done = Some(d),
                Event::Error { message } => failed = Some(message),
                _ => {}
            }
        }
        let Some(d) = done else {
            let message = failed.unwrap_or_else(|| "the reply ended without an answer".into());
            return Ok((
                axum::http::StatusCode::BAD_GATEWAY,
                Json(json!({"error": {"message": message, "type": "api_error", "code": 502}})),
            )
                .into_response());
        };
        Json(json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": d.content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": d.usage.prompt_tokens, "completion_tokens": d.usage.completion_tokens,
                "total_tokens": d.usage.prompt_tokens + d.usage.completion_tokens},
            "mcpctl_thread_id": d.thread_id,
        }))
        .into_response()
    };
    if let Some(h) = header {
        resp.headers_mut().insert("x-mcpctl-thread-id", h);
    }
    Ok(resp)
}
