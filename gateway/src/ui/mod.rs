//! The read-only web UI at `/ui`: server-rendered HTML (maud, which escapes every interpolated
//! value) over the same deployed snapshot and stores as the REST API, judged by the same RBAC —
//! a page shows only what its caller may `view`, and the audit-backed parts need `audit` where
//! the REST routes need it. No SPA, no build step: one stylesheet and one small script are
//! embedded in the binary ([`assets`]).
//!
//! # Guarantees
//! - Every data page needs a subject: a bearer header, or the login cookie set by `/ui/login`
//!   (see [`auth`]); without one (or with an unusable one) it redirects to `/ui/login`. Assets
//!   are public.
//! - The only state-changing routes are `POST /ui/login` and `POST /ui/logout`; both refuse a
//!   cross-site request (`Sec-Fetch-Site: cross-site`, or an `Origin` other than the `Host`), and
//!   the cookie is `SameSite=Strict`. `Referrer-Policy: same-origin` (with `no-referrer`
//!   browsers send `Origin: null` on the sign-in POST).
//! - Every UI response carries a Content-Security-Policy without inline script or style
//!   ([`CSP`]), `X-Content-Type-Options: nosniff`, `frame-ancestors 'none'` and, for pages,
//!   `Cache-Control: no-store`.
//! - One place maps errors onto the page answered ([`UiError`]).

mod agents;
pub mod assets;
mod audit;
mod auth;
mod dashboard;
mod deploys;
mod layout;
pub mod plot;
mod projects;
mod resources;
mod threads;
mod tokens;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::auth::{bearer, Caller};
use crate::error::ApiError;
use crate::state::Snapshot;
use crate::AppState;

/// The Content-Security-Policy of every UI response: nothing inline, nothing from elsewhere.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Rows of one page of a long list (resources, audit events).
pub const PAGE_ROWS: usize = 100;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(dashboard::page))
        .route("/ui/", get(dashboard::page))
        .route("/ui/login", get(auth::form).post(auth::login))
        .route("/ui/logout", post(auth::logout))
        .route("/ui/deploys", get(deploys::list))
        .route("/ui/deploys/diff", get(deploys::diff))
        .route("/ui/deploys/{id}", get(deploys::one))
        .route("/ui/resources", get(resources::list))
        .route("/ui/resources/{kind}/{name}", get(resources::one))
        .route("/ui/projects", get(projects::list))
        .route("/ui/projects/{name}", get(projects::one))
        .route("/ui/agents", get(agents::list))
        .route("/ui/agents/{project}/{name}", get(agents::one))
        .route("/ui/tokens", get(tokens::page))
        .route("/ui/audit", get(audit::page))
        .route("/ui/threads", get(threads::list))
        .route("/ui/threads/{id}", get(threads::one))
        .route("/ui/assets/{file}", get(assets::serve))
        .layer(axum::middleware::map_response(secure_headers))
}

/// The security headers of every UI response.
async fn secure_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// Everything a UI page can fail with; [`IntoResponse`] is the one place it becomes a page.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// No usable subject: the browser is sent to the login page.
    #[error("sign in first")]
    Login,
    #[error("you may not {0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("bad query: {0}")]
    BadQuery(String),
    #[error("the store is unavailable")]
    Store(#[from] reconciler::StoreError),
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NoToken | ApiError::BadToken => UiError::Login,
            ApiError::Forbidden(w) => UiError::Forbidden(w),
            ApiError::ForbiddenHost(h) => UiError::Forbidden(format!("use host `{h}`")),
            ApiError::NotFound(w) => UiError::NotFound(w),
            ApiError::UnknownKind(k) => UiError::NotFound(format!("kind `{k}`")),
            ApiError::BadQuery(q) => UiError::BadQuery(q),
            ApiError::Busy(_) => UiError::BadQuery("busy, try again".into()),
            ApiError::Store(s) => UiError::Store(s),
        }
    }
}

impl From<crate::chat::ChatError> for UiError {
    fn from(e: crate::chat::ChatError) -> Self {
        use crate::chat::ChatError as C;
        match e {
            C::Api(a) => a.into(),
            C::Forbidden(w) => UiError::Forbidden(w),
            C::NotFound(w) => UiError::NotFound(w),
            C::Store(s) => UiError::Store(s),
            other => UiError::BadQuery(other.to_string()),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = match &self {
            UiError::Login => return Redirect::to("/ui/login").into_response(),
            UiError::Forbidden(_) => StatusCode::FORBIDDEN,
            UiError::NotFound(_) => StatusCode::NOT_FOUND,
            UiError::BadQuery(_) => StatusCode::BAD_REQUEST,
            UiError::Store(e) => {
                tracing::error!(error = %e, "store error");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let title = status.canonical_reason().unwrap_or("Error");
        let body = maud::html! {
            h1 { (title) }
            p.notice { (self.to_string()) }
            p { a href="/ui" { "Back to the dashboard" } }
        };
        (status, layout::page(title, layout::Nav::None, None, body)).into_response()
    }
}

/// The subject of a UI page and the snapshot it is judged against: the bearer header, else the
/// login cookie; judged exactly as the REST API judges a bearer token.
pub struct Viewer {
    pub caller: Caller,
    pub snapshot: Arc<Snapshot>,
}

impl FromRequestParts<Arc<AppState>> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let snapshot = app.snapshot();
        let raw = bearer(&parts.headers).or_else(|| auth::cookie_token(&parts.headers));
        let caller = snapshot.tokens.authenticate(raw).map_err(|_| UiError::Login)?;
        app.usage.touch(&caller);
        Ok(Self { caller, snapshot })
    }
}

impl Viewer {
    /// The deployed projects that `keep` accepts (in name order).
    fn projects(&self, keep: impl Fn(&schema::Resource) -> bool) -> Vec<&schema::Resource> {
        self.snapshot.catalog.state.of_kind(schema::Kind::Project).filter(|r| keep(r)).collect()
    }
}

/// An optional query text: blank is none.
fn given(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests;
