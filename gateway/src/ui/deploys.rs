//! `GET /ui/deploys[?revision=]` (the history with each plan's summary and outcome),
//! `/ui/deploys/{id}` (one deploy and the resources it last wrote) and
//! `/ui/deploys/diff?from=&to=` (two deploys side by side and what changed between them).
//! Access is that of `/api/v1/deploys`: any `audit` grant, error texts for a global one.
//!
//! # Caveats
//! The store keeps each resource's current row, not every version: a deploy's resources are
//! those whose current row it wrote (a later deploy that changed one again takes it), and the
//! diff lists what the deploys after `from` up to `to` wrote, as it stands now.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use maud::{html, Markup};
use reconciler::store::Origin;
use reconciler::Deploy;

use super::layout::{self, badge, fields, notice, sha, time, time_opt, Nav};
use super::{given, UiError, Viewer};
use crate::api::{deploy_access, visible};
use crate::AppState;

/// Deploys listed (and the ones a detail or diff can name).
pub const MAX_DEPLOYS: i64 = 500;
/// Resources listed for one deploy or diff.
pub const MAX_CHANGED: i64 = 1000;

#[derive(Debug, serde::Deserialize)]
pub(crate) struct ListQuery {
    revision: Option<String>,
}

fn summary(d: &Deploy) -> Markup {
    html! { span title=(d.summary.to_string()) { "+" (d.summary.add) " ~" (d.summary.change) " −" (d.summary.destroy) } }
}

fn error_cell(d: &Deploy, global: bool) -> Markup {
    match (&d.error, global) {
        (Some(e), true) => html! { code.error { (e) } },
        (Some(_), false) => html! { span.notice { "(hidden)" } },
        (None, _) => html! {},
    }
}

pub(crate) async fn list(State(app): State<Arc<AppState>>, v: Viewer, Query(q): Query<ListQuery>) -> Result<Markup, UiError> {
    let global = deploy_access(&v.caller)?;
    let revision = given(&q.revision);
    let all = app.store.deploys(MAX_DEPLOYS).await?;
    let shown: Vec<&Deploy> = all.iter().filter(|d| revision.as_ref().is_none_or(|r| &d.revision == r)).collect();
    let body = html! {
        h1 { "Deploys" }
        form.filters method="get" action="/ui/deploys/diff" {
            div { label for="from" { "From deploy" } (deploy_select("from", &all, all.get(1).map(|d| d.id))) }
            div { label for="to" { "To deploy" } (deploy_select("to", &all, all.first().map(|d| d.id))) }
            div { button type="submit" { "Compare" } }
        }
        @if let Some(r) = &revision {
            p { "Deploys of revision " (sha(r)) ". " a href="/ui/deploys" { "All deploys" } }
        }
        @if shown.is_empty() {
            (notice("No deploy recorded."))
        } @else {
            div.scroll { table {
                caption { "Newest first (at most " (MAX_DEPLOYS) ")" }
                thead { tr {
                    th scope="col" { "Deploy" } th scope="col" { "Revision" } th scope="col" { "Outcome" } th scope="col" { "Plan" }
                    th scope="col" { "Author" } th scope="col" .hide-narrow { "Message" } th scope="col" { "Finished" } th scope="col" { "Error" }
                } }
                tbody { @for d in &shown { tr {
                    td { a href=(format!("/ui/deploys/{}", d.id)) { "#" (d.id) } }
                    td { (sha(&d.revision)) }
                    td { (badge(&d.outcome)) }
                    td { (summary(d)) }
                    td { (d.author.as_deref().unwrap_or(&d.actor)) }
                    td.hide-narrow { (d.message.as_deref().unwrap_or("")) }
                    td { (time(&d.finished_at)) }
                    td { (error_cell(d, global)) }
                } } }
            } }
        }
    };
    Ok(layout::page("Deploys", Nav::Deploys, Some(&v.caller), body))
}

fn deploy_select(name: &str, all: &[Deploy], chosen: Option<i64>) -> Markup {
    html! {
        select id=(name) name=(name) {
            @for d in all {
                option value=(d.id) selected[Some(d.id) == chosen] { "#" (d.id) " " (d.revision.get(..12).unwrap_or(&d.revision)) " (" (d.outcome) ")" }
            }
        }
    }
}

fn deploy_fields(d: &Deploy, global: bool) -> Markup {
    fields(
        &format!("Deploy #{}", d.id),
        [
            (
                "Revision",
                html! { (sha(&d.revision)) " " a href=(format!("/ui/deploys{}", layout::query(&[("revision", Some(&d.revision))]))) { "(all deploys of it)" } },
            ),
            ("Outcome", badge(&d.outcome)),
            ("Plan", html! { (d.summary.to_string()) }),
            ("Actor", html! { (d.actor) }),
            ("Author", html! { (d.author.as_deref().unwrap_or("—")) }),
            ("Committer", html! { (d.committer.as_deref().unwrap_or("—")) }),
            ("Message", html! { (d.message.as_deref().unwrap_or("—")) }),
            ("Committed", time_opt(d.committed_at.as_deref())),
            ("Started", time(&d.started_at)),
            ("Finished", time(&d.finished_at)),
            ("Error", error_cell(d, global)),
        ],
    )
}

/// The resources among `origins` the caller may view, as a table linking to each.
fn changed_table(v: &Viewer, origins: &[Origin], caption: &str) -> Markup {
    let shown: Vec<&Origin> =
        origins.iter().filter(|o| v.snapshot.catalog.state.get(&o.key).is_some_and(|r| visible(&v.caller, r))).collect();
    html! {
        @if shown.is_empty() {
            (notice("No resource this subject may view was last written by it."))
        } @else {
            div.scroll { table {
                caption { (caption) }
                thead { tr { th scope="col" { "Kind" } th scope="col" { "Project" } th scope="col" { "Name" } th scope="col" { "Source" } th scope="col" { "Revision" } } }
                tbody { @for o in shown { tr {
                    td { (o.key.kind.as_str()) }
                    td { (o.key.project) }
                    td { a href=(super::resources::href(o.key.kind, &o.key.name, Some(&o.key.project).filter(|p| !p.is_empty()).map(String::as_str))) { (o.key.name) } }
                    td { code { (o.source.as_deref().unwrap_or("—")) } }
                    td { (sha(&o.revision)) }
                } } }
            } }
        }
    }
}

pub(crate) async fn one(State(app): State<Arc<AppState>>, v: Viewer, Path(id): Path<i64>) -> Result<Markup, UiError> {
    let global = deploy_access(&v.caller)?;
    let all = app.store.deploys(MAX_DEPLOYS).await?;
    let d = all.iter().find(|d| d.id == id).ok_or_else(|| UiError::NotFound(format!("deploy #{id}")))?;
    let origins = app.store.origins_of(std::slice::from_ref(&d.revision), MAX_CHANGED).await?;
    let body = html! {
        h1 { "Deploy #" (d.id) }
        (deploy_fields(d, global))
        h2 { "Resources it wrote" }
        p.notice { "Resources whose stored row this deploy's revision last created or changed." }
        (changed_table(&v, &origins, "Written by this deploy"))
    };
    Ok(layout::page(&format!("Deploy #{id}"), Nav::Deploys, Some(&v.caller), body))
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct DiffQuery {
    from: i64,
    to: i64,
}

pub(crate) async fn diff(State(app): State<Arc<AppState>>, v: Viewer, Query(q): Query<DiffQuery>) -> Result<Markup, UiError> {
    let global = deploy_access(&v.caller)?;
    let all = app.store.deploys(MAX_DEPLOYS).await?;
    let (lo, hi) = (q.from.min(q.to), q.from.max(q.to));
    let find = |id: i64| all.iter().find(|d| d.id == id).ok_or_else(|| UiError::NotFound(format!("deploy #{id}")));
    let (a, b) = (find(lo)?, find(hi)?);
    let between: Vec<String> =
        all.iter().filter(|d| d.id > lo && d.id <= hi && d.outcome == "applied").map(|d| d.revision.clone()).collect();
    let origins = app.store.origins_of(&between, MAX_CHANGED).await?;
    let body = html! {
        h1 { "Deploy #" (a.id) " → #" (b.id) }
        div.cards {
            div.card { (deploy_fields(a, global)) }
            div.card { (deploy_fields(b, global)) }
        }
        h2 { "Changed after #" (a.id) " up to #" (b.id) }
        p.notice { (between.len()) " applied deploy(s) in between; the resources they last wrote, as stored now." }
        (changed_table(&v, &origins, "Written by the deploys in between"))
    };
    Ok(layout::page("Deploy diff", Nav::Deploys, Some(&v.caller), body))
}
