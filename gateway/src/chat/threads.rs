//! `GET /api/v1/threads[?project=&agent=]` and `GET /api/v1/threads/{id}`: the caller's threads
//! (all of its project's for holders of `audit`); another owner's thread is not found.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use reconciler::store::threads::ThreadFilter;
use serde_json::{json, Value};

use super::engine::{owner_of, project_of, reads_all_threads};
use super::ChatError;
use crate::auth::Authenticated;
use crate::AppState;

/// Most threads one list returns.
pub const MAX_THREADS_LISTED: i64 = 1000;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/threads", get(list)).route("/api/v1/threads/{id}", get(one))
}

/// Query of `/api/v1/threads`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub(crate) struct ThreadQuery {
    /// The project (default and only allowed value: the token's).
    project: Option<String>,
    /// Only threads with this agent.
    agent: Option<String>,
}

/// The caller's chat threads, most recently updated first.
#[utoipa::path(get, path = "/api/v1/threads", tag = "chat", params(ThreadQuery),
    responses((status = 200, description = "`[{id, project, agent, personality, title, createdAt, updatedAt, messageCount}]`", body = Object),
        (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(app): State<Arc<AppState>>,
    auth: Result<Authenticated, crate::ApiError>,
    Query(q): Query<ThreadQuery>,
) -> Result<Json<Value>, ChatError> {
    let Authenticated { caller, .. } = auth?;
    let project = project_of(&caller, q.project.as_deref())?;
    let filter = ThreadFilter {
        owner: (!reads_all_threads(&caller, &project)).then(|| owner_of(&caller)),
        project: Some(project),
        agent: q.agent,
        limit: MAX_THREADS_LISTED,
    };
    Ok(Json(json!(app.store.threads(&filter).await?)))
}

/// One thread with its messages, oldest first.
#[utoipa::path(get, path = "/api/v1/threads/{id}", tag = "chat",
    params(("id" = String, Path, description = "Thread id")),
    responses((status = 200, description = "`{id, project, agent, personality, title, createdAt, updatedAt, messageCount, messages: [{id, role, content, toolCalls, toolCallId, isError, status: complete|pending|failed, error, personality, model, usage, latencyMs, createdAt}]}`", body = Object),
        (status = 401, body = crate::openapi::ErrorBody), (status = 404, description = "no such thread, or another owner's", body = crate::openapi::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn one(
    State(app): State<Arc<AppState>>,
    auth: Result<Authenticated, crate::ApiError>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ChatError> {
    let Authenticated { caller, .. } = auth?;
    let own = owner_of(&caller);
    let thread = app
        .store
        .thread(&id, None)
        .await?
        .filter(|t| caller.acts_in(&t.project) && (t.owner == own || reads_all_threads(&caller, &t.project)))
        .ok_or_else(|| ChatError::NotFound(format!("thread `{id}`")))?;
    let messages = app.store.messages(&id).await?;
    let mut v = json!(thread);
    v["messages"] = json!(messages);
    Ok(Json(v))
}
