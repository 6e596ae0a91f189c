//! `GET /ui`: what is deployed (commit sha, author, message, time), the reconcile status (last
//! attempt, outcome, drift), the last failed deploy's error, and the health of the caller's
//! upstreams — what `/api/v1/status` and `/api/v1/deploys` answer, on one page.

use std::sync::Arc;

use axum::extract::State;
use maud::{html, Markup};

use super::layout::{self, badge, fields, notice, sha, time, time_opt, Nav};
use super::{UiError, Viewer};
use crate::api::{deploy_access, shown_upstreams};
use crate::AppState;

/// Deploys looked through for the last failure.
const RECENT_DEPLOYS: i64 = 50;

pub(crate) async fn page(State(app): State<Arc<AppState>>, v: Viewer) -> Result<Markup, UiError> {
    let s = app.status();
    let access = deploy_access(&v.caller).ok();
    let (good, recent) = match access {
        Some(_) => (app.store.last_good_deploy().await?, app.store.deploys(RECENT_DEPLOYS).await?),
        None => (None, Vec::new()),
    };
    let failed = recent.iter().find(|d| d.outcome == "failed");
    let upstreams = shown_upstreams(&app, &v.caller, &v.snapshot);
    let body = html! {
        h1 { "Dashboard" }
        div.cards {
            section.card aria-labelledby="deployed" {
                h2 #deployed { "Deployed commit" }
                @match (&s.deployed, &good) {
                    (None, _) => (notice("Nothing is deployed yet.")),
                    (Some(rev), None) => {
                        (fields("In force", [("Revision", sha(rev))]))
                        (layout::needs_audit("The commit's author and message"))
                    }
                    (Some(rev), Some(d)) => (fields("In force", [
                        ("Revision", html! { a href=(format!("/ui/deploys/{}", d.id)) { (sha(rev)) } }),
                        ("Author", html! { (d.author.as_deref().unwrap_or(&d.actor)) }),
                        ("Message", html! { (d.message.as_deref().unwrap_or("—")) }),
                        ("Committed", time_opt(d.committed_at.as_deref())),
                        ("Deployed", time(&d.finished_at)),
                    ])),
                }
            }
            section.card aria-labelledby="reconcile" {
                h2 #reconcile { "Reconcile status" }
                (fields("Last attempt", [
                    ("Last attempted", html! { @match &s.last_attempted { Some(r) => (sha(r)), None => "—" } }),
                    ("Outcome", html! { @match &s.last_outcome { Some(o) => (badge(o)), None => "—" } }),
                    ("Drift", if s.drift { badge("drift") } else { badge("none") }),
                ]))
            }
            section.card aria-labelledby="lasterror" {
                h2 #lasterror { "Last error" }
                @match (access, failed) {
                    (None, _) => (layout::needs_audit("The deploy history")),
                    (Some(_), None) => (notice("No failed deploy among the recent ones.")),
                    (Some(global), Some(d)) => {
                        p { a href=(format!("/ui/deploys/{}", d.id)) { "Deploy " (d.id) } " of " (sha(&d.revision)) ", " (time(&d.finished_at)) }
                        @match (global, &d.error) {
                            (true, Some(e)) => pre.error { code { (e) } },
                            _ => (notice("The error text needs a global `audit` grant (it may concern other projects).")),
                        }
                    }
                }
            }
        }
        h2 { "Upstream health" }
        @if upstreams.is_empty() {
            (notice("No upstream of a server this subject may view is running."))
        } @else {
            div.scroll { table {
                caption { "Upstreams of the servers this subject may view" }
                thead { tr { th scope="col" { "Server" } th scope="col" { "Transport" } th scope="col" { "Health" } th scope="col" { "Connected" } th scope="col" { "Last check" } th scope="col" { "Error" } } }
                tbody {
                    @for h in &upstreams {
                        tr {
                            td { (h.server) }
                            td { (h.transport) }
                            td { (badge(h.health.as_str())) }
                            td { (if h.connected { "yes" } else { "no" }) }
                            td { (time_opt(h.check.last_check.as_deref())) }
                            td { (h.error.as_deref().or(h.check.last_error.as_deref()).unwrap_or("")) }
                        }
                    }
                }
            } }
        }
    };
    Ok(layout::page("Dashboard", Nav::Dashboard, Some(&v.caller), body))
}
