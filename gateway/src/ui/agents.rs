//! `GET /ui/agents` (the agents the caller may view) and `/ui/agents/{project}/{name}
//! [?personality=]` (its personalities, the prompts bound to it by scope, and the system blocks
//! of a chat with it in order, as [`schema::agent::system_blocks`] assembles them for chat).

use axum::extract::{Path, Query};
use maud::{html, Markup};

use schema::spec::PromptScope;
use schema::{Kind, Resource, Spec};

use super::layout::{self, encode, notice, Nav};
use super::{given, UiError, Viewer};
use crate::api::visible;

pub(crate) async fn list(v: Viewer) -> Result<Markup, UiError> {
    let agents: Vec<&Resource> = v.snapshot.catalog.state.of_kind(Kind::Agent).filter(|r| visible(&v.caller, r)).collect();
    let body = html! {
        h1 { "Agents" }
        @if agents.is_empty() {
            (notice("No agent this subject may view."))
        } @else {
            div.scroll { table {
                caption { "Agents this subject may view" }
                thead { tr { th scope="col" { "Agent" } th scope="col" { "Project" } th scope="col" { "Llm" } th scope="col" { "Default personality" } th scope="col" { "Description" } } }
                tbody { @for r in &agents {
                    @if let Spec::Agent(a) = &r.spec {
                        @let project = r.metadata.project.as_deref().unwrap_or_default();
                        tr {
                            td { a href=(format!("/ui/agents/{}/{}", encode(project), encode(r.name()))) { (r.name()) } }
                            td { (project) }
                            td { (a.llm) }
                            td { (a.default_personality.as_deref().unwrap_or("—")) }
                            td { (a.description.as_deref().unwrap_or("")) }
                        }
                    }
                } }
            } }
        }
    };
    Ok(layout::page("Agents", Nav::Agents, Some(&v.caller), body))
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct OneQuery {
    personality: Option<String>,
}

fn scope_name(s: PromptScope) -> &'static str {
    match s {
        PromptScope::Project => "project",
        PromptScope::Agent => "agent",
        PromptScope::Personality => "personality",
    }
}

pub(crate) async fn one(v: Viewer, Path((project, name)): Path<(String, String)>, Query(q): Query<OneQuery>) -> Result<Markup, UiError> {
    let state = &v.snapshot.catalog.state;
    let res = state
        .resolve(Kind::Agent, &name, Some(&project))
        .filter(|r| r.metadata.project.as_deref() == Some(project.as_str()) && visible(&v.caller, r))
        .ok_or_else(|| UiError::NotFound(format!("agent `{name}` in project `{project}`")))?;
    let Spec::Agent(agent) = &res.spec else { return Err(UiError::NotFound(format!("agent `{name}`"))) };
    let in_project =
        |k: Kind| state.of_kind(k).filter(|r| r.metadata.project.as_deref() == Some(project.as_str())).filter(|r| visible(&v.caller, r));
    let personalities: Vec<&Resource> =
        in_project(Kind::Personality).filter(|r| matches!(&r.spec, Spec::Personality(p) if p.agent == name)).collect();
    let prompts: Vec<&Resource> = in_project(Kind::Prompt)
        .filter(|r| match &r.spec {
            Spec::Prompt(p) => p.scope == PromptScope::Project || p.agent.as_deref() == Some(name.as_str()),
            _ => false,
        })
        .collect();
    let chosen = given(&q.personality);
    // The blocks as chat assembles them; an unknown personality is said, not a failure.
    let blocks = schema::agent::system_blocks(state, &project, &name, chosen.as_deref(), None);
    let in_force = chosen.clone().or_else(|| agent.default_personality.clone());
    let base = format!("/ui/agents/{}/{}", encode(&project), encode(&name));
    let body = html! {
        h1 { "Agent " (name) " " span.notice { "(" (project) ")" } }
        (layout::fields("Agent", [
            ("Llm", html! { a href=(super::resources::href(Kind::Llm, &agent.llm, Some(&project))) { (agent.llm) } }),
            ("Description", html! { (agent.description.as_deref().unwrap_or("—")) }),
            ("Default personality", html! { (agent.default_personality.as_deref().unwrap_or("—")) }),
            ("Resource", html! { a href=(super::resources::href(Kind::Agent, &name, Some(&project))) { "fields, YAML, source" } }),
        ]))
        h2 { "Personalities" }
        @if personalities.is_empty() { (notice("None.")) }
        ul { @for p in &personalities {
            li {
                a href=(format!("{base}?personality={}", encode(p.name()))) aria-current=[(in_force.as_deref() == Some(p.name())).then_some("true")] { (p.name()) }
                @if let Spec::Personality(ps) = &p.spec { @if let Some(d) = &ps.description { " — " (d) } }
            }
        } }
        h2 { "Prompt bindings" }
        @if prompts.is_empty() { (notice("No prompt applies to this agent.")) } @else {
            div.scroll { table {
                caption { "Prompts that apply to this agent, by scope" }
                thead { tr { th scope="col" { "Prompt" } th scope="col" { "Scope" } th scope="col" { "Personality" } th scope="col" { "Priority" } th scope="col" { "Description" } } }
                tbody { @for p in &prompts { @if let Spec::Prompt(ps) = &p.spec { tr {
                    td { a href=(super::resources::href(Kind::Prompt, p.name(), Some(&project))) { (p.name()) } }
                    td { (scope_name(ps.scope)) }
                    td { (ps.personality.as_deref().unwrap_or("—")) }
                    td { (ps.priority) }
                    td { (ps.description.as_deref().unwrap_or("")) }
                } } } }
            } }
        }
        h2 { "System blocks, in order" }
        p { "With personality " code { (in_force.as_deref().unwrap_or("(none)")) } ", a chat's system message is these blocks joined by a blank line." }
        @match &blocks {
            Err(e) => p.error { (e.to_string()) },
            Ok(b) if b.is_empty() => (notice("No system text.")),
            Ok(b) => ol { @for blk in b { li {
                p { strong { (blk.source.as_str()) } @if let Some(n) = &blk.name { " " code { (n) } } @if blk.priority != 0 { " (priority " (blk.priority) ")" } }
                @if block_visible(&v, &project, blk) { pre { (blk.content) } } @else { (notice("Hidden: this subject may not view the resource it comes from.")) }
            } } },
        }
    };
    Ok(layout::page(&format!("Agent {name}"), Nav::Agents, Some(&v.caller), body))
}

/// Whether the caller may view the resource a block's text comes from (the agent's own prompt
/// is the agent's, already visible).
fn block_visible(v: &Viewer, project: &str, b: &schema::agent::SystemBlock) -> bool {
    use schema::agent::BlockSource as B;
    let kind = match b.source {
        B::AgentSystemPrompt | B::Override => return true,
        B::PersonalitySystemPrompt => Kind::Personality,
        B::ProjectPrompt | B::AgentPrompt | B::PersonalityPrompt => Kind::Prompt,
    };
    let name = b.name.as_deref().unwrap_or_default();
    v.snapshot.catalog.state.resolve(kind, name, Some(project)).is_some_and(|r| visible(&v.caller, r))
}
