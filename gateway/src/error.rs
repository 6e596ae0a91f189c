//! The one place gateway errors become HTTP responses.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Everything a REST request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or malformed bearer token")]
    NoToken,
    #[error("unknown, expired or revoked token")]
    BadToken,
    #[error("this token may not {0}")]
    Forbidden(String),
    #[error("host `{0}` is not accepted (see --allowed-host)")]
    ForbiddenHost(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("unknown kind `{0}`")]
    UnknownKind(String),
    #[error("busy: {0}")]
    Busy(String),
    #[error("bad query: {0}")]
    BadQuery(String),
    #[error("store: {0}")]
    Store(#[from] reconciler::StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::NoToken | ApiError::BadToken => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::ForbiddenHost(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::UnknownKind(_) => StatusCode::NOT_FOUND,
            ApiError::Store(_) | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::BadQuery(_) => StatusCode::BAD_REQUEST,
        };
        if let ApiError::Store(e) = &self {
            tracing::error!(error = %e, "store error");
        }
        let mut resp = (status, Json(json!({"error": self.to_string()}))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer realm=\"mcpctl\""));
        }
        resp
    }
}

impl ApiError {
    /// A copy of an authentication refusal (the extractor keeps the original); other errors
    /// become [`ApiError::BadToken`], which never happens for what [`crate::auth`] produces.
    pub fn clone_auth(&self) -> ApiError {
        match self {
            ApiError::NoToken => ApiError::NoToken,
            _ => ApiError::BadToken,
        }
    }

    /// The response, with a 401's `WWW-Authenticate` naming the RFC 9728 metadata at `url` (MCP
    /// clients discover how to authenticate from it).
    pub fn with_resource_metadata(self, url: &str) -> Response {
        let mut resp = self.into_response();
        if resp.status() == StatusCode::UNAUTHORIZED {
            if let Ok(v) = header::HeaderValue::from_str(&format!("Bearer realm=\"mcpctl\", resource_metadata=\"{url}\"")) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        resp
    }
}
