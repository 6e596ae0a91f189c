//! `GET /ui/resources?kind=&project=&q=&start=` (the resources of one kind the caller may view,
//! filtered by project and name, [`PAGE_ROWS`](super::PAGE_ROWS) at a time) and
//! `/ui/resources/{kind}/{name}?project=` (one resource: fields, YAML, the file and line it came
//! from with the deploy that wrote it, and what refers to it). Visibility and redaction are the
//! REST API's ([`crate::api::visible`], [`crate::api::public_json`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use maud::{html, Markup};
use serde_json::Value;

use schema::{Kind, Resource, Scope};

use super::layout::{self, encode, fields, notice, sha, time, Nav};
use super::{given, UiError, Viewer, PAGE_ROWS};
use crate::api::{parse_kind, public_json, visible};
use crate::AppState;

/// Most referrers listed on a resource's page.
pub const MAX_REFERRERS: usize = 200;

/// The link to a resource's page.
pub fn href(kind: Kind, name: &str, project: Option<&str>) -> String {
    format!("/ui/resources/{}/{}{}", kind.plural(), encode(name), layout::query(&[("project", project)]))
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct ListQuery {
    kind: Option<String>,
    project: Option<String>,
    q: Option<String>,
    start: Option<usize>,
}

/// A resource's one-line description, if its spec has one.
fn description(res: &Resource) -> Option<String> {
    res.to_json().pointer("/spec/description").and_then(Value::as_str).map(str::to_owned)
}

pub(crate) async fn list(v: Viewer, Query(q): Query<ListQuery>) -> Result<Markup, UiError> {
    let kind = parse_kind(given(&q.kind).as_deref().unwrap_or("servers"))?;
    let project = given(&q.project);
    let needle = given(&q.q).map(|s| s.to_lowercase());
    let state = &v.snapshot.catalog.state;
    // Counts per kind of what the caller may view (the kind menu).
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in state.resources().iter().filter(|r| visible(&v.caller, r)) {
        *counts.entry(r.kind().plural()).or_default() += 1;
    }
    let projects: Vec<&str> = v.projects(|r| visible(&v.caller, r)).into_iter().map(Resource::name).collect();
    let matching: Vec<&Resource> = state
        .of_kind(kind)
        .filter(|r| project.is_none() || r.metadata.project == project)
        .filter(|r| needle.as_ref().is_none_or(|n| r.name().contains(n.as_str())))
        .filter(|r| visible(&v.caller, r))
        .collect();
    let start = q.start.unwrap_or(0).min(matching.len());
    let page: Vec<&Resource> = matching.iter().skip(start).take(PAGE_ROWS).copied().collect();
    let more = |at: usize| {
        format!(
            "/ui/resources{}",
            layout::query(&[
                ("kind", Some(kind.plural())),
                ("project", project.as_deref()),
                ("q", q.q.as_deref()),
                ("start", Some(&at.to_string()))
            ])
        )
    };
    let body = html! {
        h1 { "Resources" }
        nav aria-label="Kinds" {
            ul.legend {
                @for k in Kind::ALL {
                    @if let Some(n) = counts.get(k.plural()) {
                        li { a href=(format!("/ui/resources?kind={}", k.plural())) aria-current=[(*k == kind).then_some("page")] { (k.plural()) " (" (n) ")" } }
                    }
                }
            }
        }
        form.filters method="get" action="/ui/resources" {
            div { label for="kind" { "Kind" }
                select #kind name="kind" { @for k in Kind::ALL { option value=(k.plural()) selected[*k == kind] { (k.plural()) } } } }
            div { label for="project" { "Project" }
                select #project name="project" {
                    option value="" { "any" }
                    @for p in &projects { option value=(p) selected[project.as_deref() == Some(*p)] { (p) } }
                } }
            div { label for="q" { "Name contains" } input #q type="search" name="q" value=(q.q.as_deref().unwrap_or("")); }
            div { button type="submit" { "Filter" } }
        }
        @if matching.is_empty() {
            (notice("No resource of this kind that this subject may view matches."))
        } @else {
            div.scroll { table {
                caption { (matching.len()) " " (kind.plural()) "; " (start + 1) "–" (start + page.len()) " shown" }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Project" } th scope="col" { "Description" } } }
                tbody { @for r in &page { tr {
                    td { a href=(href(r.kind(), r.name(), r.metadata.project.as_deref())) { (r.name()) } }
                    td { (r.metadata.project.as_deref().unwrap_or("(global)")) }
                    td { (description(r).unwrap_or_default()) }
                } } }
            } }
            nav.pager aria-label="Pages" {
                @if start > 0 { a href=(more(start.saturating_sub(PAGE_ROWS))) { "Previous page" } }
                @if start + page.len() < matching.len() { a href=(more(start + PAGE_ROWS)) { "Next page" } }
            }
        }
    };
    Ok(layout::page("Resources", Nav::Resources, Some(&v.caller), body))
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct OneQuery {
    project: Option<String>,
}

/// Whether `v` (a spec's JSON) holds the string `name` anywhere.
fn mentions(v: &Value, name: &str) -> bool {
    match v {
        Value::String(s) => s == name,
        Value::Array(a) => a.iter().any(|x| mentions(x, name)),
        Value::Object(o) => o.values().any(|x| mentions(x, name)),
        _ => false,
    }
}

/// Whether a resource of kind `by` can name one of kind `target` in its spec: never one of its
/// own kind, and a server only a template or a secret (so a server's page does not read every
/// other server).
fn may_refer(by: Kind, target: Kind) -> bool {
    by != target && (by != Kind::Server || matches!(target, Kind::Template | Kind::Secret))
}

/// The resources the caller may view that name `res` in their spec (a field whose value is its
/// name), in its project or, for a global one, anywhere.
fn referrers<'a>(v: &'a Viewer, res: &Resource) -> Vec<&'a Resource> {
    v.snapshot
        .catalog
        .state
        .resources()
        .iter()
        .filter(|r| may_refer(r.kind(), res.kind()))
        .filter(|r| res.metadata.project.is_none() || r.metadata.project == res.metadata.project || res.kind() == Kind::Project)
        .filter(|r| mentions(&r.to_json()["spec"], res.name()))
        .filter(|r| visible(&v.caller, r))
        .take(MAX_REFERRERS)
        .collect()
}

/// A spec value as shown in the fields table: text as it is, anything else as compact JSON.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The body of a resource's page (pure: what the escaping test renders).
pub(crate) fn detail(res: &Resource, origin: Option<&reconciler::store::Origin>, refs: &[&Resource]) -> Markup {
    let doc = public_json(res);
    let spec: Vec<(String, String)> =
        doc["spec"].as_object().map(|o| o.iter().map(|(k, v)| (k.clone(), value_text(v))).collect()).unwrap_or_default();
    html! {
        h1 { (res.kind().as_str()) " " (res.name()) }
        (fields("Metadata", [
            ("Kind", html! { (res.kind().as_str()) }),
            ("Name", html! { (res.name()) }),
            ("Project", html! { (res.metadata.project.as_deref().unwrap_or("(global)")) }),
            ("Labels", html! { @for (k, v) in &res.metadata.labels { code { (k) "=" (v) } " " } }),
        ]))
        h2 { "Source" }
        @match origin {
            Some(o) => (fields("Where it came from", [
                ("File", html! { code { (o.source.as_deref().unwrap_or("(not from a file)")) } }),
                ("Written by", html! { (sha(&o.revision)) " " a href=(format!("/ui/deploys{}", layout::query(&[("revision", Some(&o.revision))]))) { "(its deploy)" } }),
                ("Updated", time(&o.updated_at)),
            ])),
            None => (notice("Not in the store (deployed state only).")),
        }
        h2 { "Spec" }
        table.fields {
            caption { "Fields" }
            tbody { @for (k, v) in &spec { tr { th scope="row" { (k) } td { (v) } } } }
        }
        h2 { "YAML" }
        pre { code { (schema::emit::yaml_document(&doc)) } }
        h2 { "Referred to by" }
        @if refs.is_empty() {
            (notice("Nothing this subject may view refers to it."))
        } @else {
            ul { @for r in refs { li { a href=(href(r.kind(), r.name(), r.metadata.project.as_deref())) { (r.kind().as_str()) " " (r.name()) } @if let Some(p) = &r.metadata.project { " (" (p) ")" } } } }
        }
    }
}

pub(crate) async fn one(
    State(app): State<Arc<AppState>>,
    v: Viewer,
    Path((kind, name)): Path<(String, String)>,
    Query(q): Query<OneQuery>,
) -> Result<Markup, UiError> {
    let kind = parse_kind(&kind)?;
    let project = (kind.scope() != Scope::Cluster).then(|| given(&q.project).or_else(|| v.caller.project().map(str::to_owned))).flatten();
    let res = v
        .snapshot
        .catalog
        .state
        .resolve(kind, &name, project.as_deref())
        .filter(|r| visible(&v.caller, r))
        .ok_or_else(|| UiError::NotFound(format!("{kind} `{name}`")))?;
    let origin = app.store.origin(kind, res.metadata.project.as_deref(), res.name()).await?;
    let refs = referrers(&v, res);
    let title = format!("{} {}", kind.as_str(), res.name());
    Ok(layout::page(&title, Nav::Resources, Some(&v.caller), detail(res, origin.as_ref(), &refs)))
}
