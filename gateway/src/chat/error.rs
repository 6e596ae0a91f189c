//! What a chat call can fail with, and the one place it becomes an HTTP answer (`{"error": …}`;
//! the OpenAI-compatible routes wrap the same text as OpenAI clients expect).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::provider::LlmError;
use crate::error::ApiError;

/// Everything a chat or thread request can fail with. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("this token may not {0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("Llm `{llm}` is not deployed in project `{project}`")]
    NoLlm { llm: String, project: String },
    #[error("Llm `{llm}`: cannot read its API key: {source}")]
    Key {
        llm: String,
        #[source]
        source: Box<reconciler::secrets::SecretError>,
    },
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error("store: {0}")]
    Store(#[from] reconciler::StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ChatError {
    pub fn status(&self) -> StatusCode {
        match self {
            ChatError::Api(e) => match e {
                ApiError::NoToken | ApiError::BadToken => StatusCode::UNAUTHORIZED,
                ApiError::Forbidden(_) | ApiError::ForbiddenHost(_) => StatusCode::FORBIDDEN,
                ApiError::NotFound(_) | ApiError::UnknownKind(_) => StatusCode::NOT_FOUND,
                ApiError::Store(_) | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
                ApiError::BadQuery(_) => StatusCode::BAD_REQUEST,
            },
            ChatError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ChatError::Forbidden(_) => StatusCode::FORBIDDEN,
            ChatError::NotFound(_) => StatusCode::NOT_FOUND,
            ChatError::NoLlm { .. } | ChatError::Key { .. } | ChatError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ChatError::Llm(LlmError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
            ChatError::Llm(_) => StatusCode::BAD_GATEWAY,
            ChatError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ChatError {
    fn into_response(self) -> Response {
        match self {
            ChatError::Api(e) => e.into_response(),
            other => {
                if matches!(other, ChatError::Store(_) | ChatError::Key { .. } | ChatError::NoLlm { .. } | ChatError::Internal(_)) {
                    tracing::error!(error = %other, "chat failed");
                }
                (other.status(), Json(json!({"error": other.to_string()}))).into_response()
            }
        }
    }
}
