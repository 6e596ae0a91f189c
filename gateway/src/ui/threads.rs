//! `GET /ui/threads[?project=&agent=]` and `/ui/threads/{id}`: chat threads and one
//! conversation with its tool calls. Who sees what is decided exactly as the REST thread routes
//! decide ([`crate::chat::threads`]): the caller's own threads, all of its project's for holders
//! of `audit`; another owner's thread is not found. A thread's audited tool calls are shown to
//! holders of `audit` in its project.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use maud::{html, Markup};

use reconciler::audit::AuditFilter;
use reconciler::store::threads::{Message, ThreadFilter};

use super::layout::{self, badge, encode, notice, time, Nav};
use super::{given, UiError, Viewer};
use crate::api::visible;
use crate::chat::engine::{owner_of, project_of, reads_all_threads};
use crate::chat::threads::MAX_THREADS_LISTED;
use crate::AppState;

/// Audited tool calls shown with one thread.
pub const MAX_THREAD_CALLS: i64 = 500;

#[derive(Debug, serde::Deserialize)]
pub(crate) struct ListQuery {
    project: Option<String>,
    agent: Option<String>,
}

pub(crate) async fn list(State(app): State<Arc<AppState>>, v: Viewer, Query(q): Query<ListQuery>) -> Result<Markup, UiError> {
    let c = &v.caller;
    let projects: Vec<&str> = v.projects(|r| visible(c, r) && c.acts_in(r.name())).into_iter().map(schema::Resource::name).collect();
    // A user is bound to no project: the one asked, else the first it may view.
    let named = given(&q.project).or_else(|| c.project().is_none().then(|| projects.first().map(|p| (*p).to_owned())).flatten());
    let project = project_of(c, named.as_deref())?;
    let filter = ThreadFilter {
        owner: (!reads_all_threads(c, &project)).then(|| owner_of(c)),
        project: Some(project.clone()),
        agent: given(&q.agent),
        limit: MAX_THREADS_LISTED,
    };
    let threads = app.store.threads(&filter).await?;
    let body = html! {
        h1 { "Threads" }
        @if c.project().is_none() {
            form.filters method="get" action="/ui/threads" {
                div { label for="project" { "Project" }
                    select #project name="project" { @for p in &projects { option value=(p) selected[*p == project] { (p) } } } }
                div { button type="submit" { "Show" } }
            }
        }
        p { @if filter.owner.is_some() { "Your threads in " } @else { "Every thread of " } code { (project) } "." }
        @if threads.is_empty() { (notice("No thread.")) } @else {
            div.scroll { table {
                caption { "Most recently updated first" }
                thead { tr { th scope="col" { "Title" } th scope="col" { "Agent" } th scope="col" { "Personality" } th scope="col" { "Owner" } th scope="col" { "Messages" } th scope="col" { "Updated" } } }
                tbody { @for t in &threads { tr {
                    td { a href=(format!("/ui/threads/{}", encode(&t.id))) { (if t.title.is_empty() { "(untitled)" } else { &t.title }) } }
                    td { (t.agent) }
                    td { (t.personality.as_deref().unwrap_or("—")) }
                    td { (t.owner) }
                    td { (t.message_count) }
                    td { (time(&t.updated_at)) }
                } } }
            } }
        }
    };
    Ok(layout::page("Threads", Nav::Threads, Some(&v.caller), body))
}

fn message(m: &Message) -> Markup {
    html! {
        article class=(format!("msg {}", m.role)) aria-label=(format!("{} message {}", m.role, m.id)) {
            p.meta {
                strong { (m.role) } " · " (time(&m.created_at))
                @if m.status != "complete" { " · " (badge(&m.status)) }
                @if let Some(p) = &m.personality { " · personality " (p) }
                @if let Some(model) = &m.model { " · " (model) }
                @if let Some(ms) = m.latency_ms { " · " (ms) " ms" }
                @if let Some(u) = &m.usage { " · " (u.prompt_tokens) "+" (u.completion_tokens) " tokens" }
                @if let Some(id) = &m.tool_call_id { " · result of " code { (id) } }
            }
            @if !m.content.is_empty() { pre { (m.content) } }
            @if let Some(calls) = m.tool_calls.as_ref().and_then(|c| c.as_array()) {
                ul { @for call in calls {
                    li {
                        "Tool call " code { (call.pointer("/function/name").or_else(|| call.get("name")).and_then(|n| n.as_str()).unwrap_or("?")) }
                        @if let Some(id) = call.get("id").and_then(|i| i.as_str()) { " (" code { (id) } ")" }
                        pre { (call.pointer("/function/arguments").or_else(|| call.get("arguments")).map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_owned)).unwrap_or_default()) }
                    }
                } }
            }
            @if let Some(e) = &m.error { p.error { (e) } }
        }
    }
}

pub(crate) async fn one(State(app): State<Arc<AppState>>, v: Viewer, Path(id): Path<String>) -> Result<Markup, UiError> {
    let c = &v.caller;
    let own = owner_of(c);
    let thread = app
        .store
        .thread(&id, None)
        .await?
        .filter(|t| c.acts_in(&t.project) && (t.owner == own || reads_all_threads(c, &t.project)))
        .ok_or_else(|| UiError::NotFound(format!("thread `{id}`")))?;
    let messages = app.store.messages(&id).await?;
    let calls = if c.can(Some(&thread.project), schema::rbac::Request::Action("audit")) {
        let filter = AuditFilter { thread: Some(id.clone()), limit: MAX_THREAD_CALLS, ..Default::default() };
        Some(app.store.audit_events(&filter).await?)
    } else {
        None
    };
    let body = html! {
        h1 { (if thread.title.is_empty() { "(untitled)" } else { &thread.title }) }
        (layout::fields("Thread", [
            ("Project", html! { (thread.project) }),
            ("Agent", html! { a href=(format!("/ui/agents/{}/{}", encode(&thread.project), encode(&thread.agent))) { (thread.agent) } }),
            ("Personality", html! { (thread.personality.as_deref().unwrap_or("—")) }),
            ("Owner", html! { (thread.owner) }),
            ("Created", time(&thread.created_at)),
            ("Updated", time(&thread.updated_at)),
        ]))
        h2 { "Conversation" }
        @if messages.is_empty() { (notice("No message.")) }
        @for m in &messages { (message(m)) }
        h2 { "Audited tool calls" }
        @match &calls {
            None => (layout::needs_audit("The audit events of this thread")),
            Some(e) if e.is_empty() => (notice("No tool call was audited for this thread.")),
            Some(e) => (super::audit::table(e)),
        }
    };
    Ok(layout::page("Thread", Nav::Threads, Some(&v.caller), body))
}
