//! `GET /ui/tokens`: the signed-in subject (as `/api/v1/whoami` tells it), the McpTokens and
//! users' login tokens the caller may view — prefix, owner, expiry, revocation, when last used
//! and their effective grants. No secret is shown: not the token, not its hash.

use std::sync::Arc;

use axum::extract::State;
use maud::{html, Markup};

use schema::rbac::{self, EffectiveBinding, SubjectRef};
use schema::{Kind, Resource, Spec};

use super::layout::{self, badge, notice, time, Nav};
use super::{UiError, Viewer};
use crate::api::visible;
use crate::AppState;

fn expiry(at: Option<&chrono::DateTime<chrono::Utc>>) -> Markup {
    match at {
        Some(t) if *t <= chrono::Utc::now() => html! { (badge("expired")) " " (time(&t.to_rfc3339())) },
        Some(t) => time(&t.to_rfc3339()),
        None => html! { "never" },
    }
}

/// Grants as `binding (in project, from definition / group)` lines.
fn grants(list: &[EffectiveBinding]) -> Markup {
    html! {
        @if list.is_empty() { span.notice { "none" } }
        ul { @for e in list { li {
            code { (rbac::binding_syntax(&e.binding)) }
            @if let Some(p) = &e.project { " in " (p) }
            @if let Some(d) = &e.definition { " from " (d.to_string()) }
            @if let Some(g) = &e.group { " via group " (g) }
        } } }
    }
}

pub(crate) async fn page(State(app): State<Arc<AppState>>, v: Viewer) -> Result<Markup, UiError> {
    let state = &v.snapshot.catalog.state;
    let usage = app.store.token_usage().await?;
    let tokens: Vec<&Resource> = state.of_kind(Kind::McpToken).filter(|r| visible(&v.caller, r)).collect();
    let users: Vec<&Resource> = state.of_kind(Kind::User).filter(|r| visible(&v.caller, r)).collect();
    let c = &v.caller;
    let body = html! {
        h1 { "Tokens" }
        h2 { "Signed in as" }
        (layout::fields("This subject", [
            ("Subject", html! { code { (c.subject().to_string()) } }),
            ("Token prefix", html! { code { (c.prefix) } }),
            ("Expires", expiry(c.expires_at.as_ref())),
            ("Grants", grants(&c.grants)),
        ]))
        h2 { "McpTokens" }
        @if tokens.is_empty() { (notice("No McpToken this subject may view.")) } @else {
            div.scroll { table {
                caption { "McpTokens this subject may view (no secrets)" }
                thead { tr { th scope="col" { "Token" } th scope="col" { "Project" } th scope="col" { "Prefix" } th scope="col" { "User" }
                    th scope="col" { "Expires" } th scope="col" { "Last used" } th scope="col" { "Effective grants" } } }
                tbody { @for r in &tokens { @if let Spec::McpToken(t) = &r.spec {
                    @let project = r.metadata.project.as_deref().unwrap_or_default();
                    @let used = usage.get(&t.hash);
                    tr {
                        td { a href=(super::resources::href(Kind::McpToken, r.name(), Some(project))) { (r.name()) }
                            @if t.revoked { " " (badge("revoked")) }
                            @if let Some(d) = &t.description { br; span.notice { (d) } } }
                        td { (project) }
                        td { code { (t.prefix) } }
                        td { (t.user.as_deref().unwrap_or("—")) }
                        td { (expiry(t.expires_at.as_ref())) }
                        td { @match used { Some(u) => { (time(&u.last_used_at)) " (" (u.uses) " uses)" }, None => "never" } }
                        td { (grants(&rbac::effective_bindings(state, SubjectRef::McpToken { name: r.name(), project }))) }
                    }
                } } }
            } }
        }
        h2 { "Users' login tokens" }
        @if users.is_empty() { (notice("No user this subject may view.")) } @else {
            div.scroll { table {
                caption { "Users this subject may view and their login tokens (no secrets)" }
                thead { tr { th scope="col" { "User" } th scope="col" { "Tokens" } th scope="col" { "Effective grants" } } }
                tbody { @for r in &users { @if let Spec::User(u) = &r.spec { tr {
                    td { a href=(super::resources::href(Kind::User, r.name(), None)) { (r.name()) } @if u.disabled { " " (badge("disabled")) } }
                    td { ul { @for t in &u.tokens { li {
                        code { (t.name) } " " code { (t.prefix) } ", expires " (expiry(t.expires_at.as_ref()))
                        @if t.revoked { " " (badge("revoked")) }
                    } } } }
                    td { (grants(&rbac::effective_bindings(state, SubjectRef::User(r.name())))) }
                } } } }
            } }
        }
    };
    Ok(layout::page("Tokens", Nav::Tokens, Some(&v.caller), body))
}
