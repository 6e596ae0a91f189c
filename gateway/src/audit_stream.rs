//! `GET /api/v1/auditevents/stream`: the audit events of the token's project as they are stored,
//! as Server-Sent Events (needs `{role: run, action: audit}`, like `/api/v1/auditevents`).
//!
//! Events: `audit` (one audit event as JSON, without its `session`: a session id is a bearer
//! credential of its session), `dropped` (`{"dropped": N}`: this subscriber fell more than
//! [`crate::audit::LIVE_BUFFER`] events behind and lost the N oldest) and `end` (`{"reason": …}`:
//! the token stopped being valid or lost its grant, or the gateway is stopping). A comment is sent
//! every [`KEEP_ALIVE`] so proxies keep the connection open.
//!
//! # Guarantees
//! A stream never slows auditing (the writer publishes without waiting). At most
//! [`MAX_SUBSCRIBERS`] streams are open at once per gateway; past that a request gets 503. The
//! token is judged again for every event, so a revoked or expired token's stream ends.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures::Stream;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use schema::rbac::Request;

use crate::auth::{bearer, Authenticated, Caller};
use crate::error::ApiError;
use crate::AppState;

/// Open streams per gateway.
pub const MAX_SUBSCRIBERS: usize = 64;
/// Interval of the keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/auditevents/stream", get(stream))
}

fn may_audit(c: &Caller, project: Option<&str>) -> bool {
    c.can(project, Request::Action("audit"))
}

/// `?project=`: a user's choice of project (an McpToken always follows its own).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct StreamQuery {
    project: Option<String>,
}

/// The JSON of an event as the API shows it.
fn public(e: &reconciler::audit::AuditEvent) -> Value {
    let mut v = json!(e);
    if let Some(o) = v.as_object_mut() {
        o.remove("session");
        o.remove("id");
    }
    v
}

/// Audit events of the token's project as they are stored (SSE: `audit`, `dropped`, `end`).
#[utoipa::path(get, path = "/api/v1/auditevents/stream", tag = "audit",
    responses((status = 200, description = "text/event-stream: `audit` (auditEvent without `session`), `dropped` (`{dropped}`), `end` (`{reason}`)", content_type = "text/event-stream", body = String), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody), (status = 503, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn stream(
    State(app): State<Arc<AppState>>,
    Authenticated { caller, .. }: Authenticated,
    axum::extract::Query(q): axum::extract::Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // An McpToken follows its own project; a user the project it names (all of them only with a
    // global `audit` grant).
    let project = caller.project().map(str::to_owned).or(q.project);
    if !may_audit(&caller, project.as_deref()) {
        return Err(ApiError::Forbidden("follow audit events (needs `{role: run, action: audit}`)".into()));
    }
    let (mut rx, end) = app.auditor.subscribe();
    if app.auditor.subscribers() > MAX_SUBSCRIBERS {
        return Err(ApiError::Busy(format!("{MAX_SUBSCRIBERS} audit streams are open already")));
    }
    let raw = bearer(&headers).unwrap_or_default().to_owned();
    let subject = caller.display_name();
    let events = async_stream(move |tx| async move {
        loop {
            let next = tokio::select! {
                () = end.cancelled() => {
                    let _ = tx.send(end_event("the gateway is stopping")).await;
                    return;
                }
                () = tx.closed() => return,
                n = rx.recv() => n,
            };
            // Judged again for every event: a revoked or expired token, or a lost grant, ends it.
            match app.snapshot().tokens.authenticate(Some(&raw)) {
                Ok(c) if may_audit(&c, project.as_deref()) && c.display_name() == subject => {}
                _ => {
                    let _ = tx.send(end_event("the token is no longer valid for this stream")).await;
                    return;
                }
            }
            let event = match next {
                Ok(e) if project.as_ref().is_none_or(|p| *p == e.project) => Event::default().event("audit").data(public(&e).to_string()),
                Ok(_) => continue,
                Err(RecvError::Lagged(n)) => Event::default().event("dropped").data(json!({"dropped": n}).to_string()),
                Err(RecvError::Closed) => return,
            };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn end_event(reason: &str) -> Event {
    Event::default().event("end").data(json!({"reason": reason}).to_string())
}

/// A stream fed by `body` through a channel of one event (the producer waits for the client).
fn async_stream<F, Fut>(body: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(body(tx));
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) })
}
