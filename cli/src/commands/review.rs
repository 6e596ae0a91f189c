//! `mcpctl plan --base REF [--head REF]`: a pull request's review without a database. Both refs
//! are read from git and validated; the head is planned against the base as if the base were
//! deployed, and the access changes between them (schema::access) are added, with the blast
//! radius from a gateway when one is named (`--url`/`--token`, or `$MCPCTL_URL`).
//!
//! # Guarantees
//! Nothing is written and no database is opened. The gateway, when named, is only read (tool
//! lists and the last 30 days of audit events); an unreachable gateway leaves the blast radius
//! out with a note, never fails the review.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;
use serde_json::json;

use reconciler::plan::StoredResource;
use reconciler::{GitRepo, RepoSource};
use schema::access::AccessDiff;
use schema::DesiredState;

use super::Result;
use crate::args::*;
use crate::remote::Remote;
use crate::{render, CliError};

/// The validated state of `rev` (its commit sha too); problems are printed, prefixed by the ref.
fn state_at(repo: &GitRepo, rev: &str) -> Result<(DesiredState, String)> {
    let (files, info) = reconciler::read_git_tree_at(repo.repository(), rev, repo.path()).with_context(|| format!("reading `{rev}`"))?;
    let state = schema::check(&files).map_err(|d| {
        render::error_line(&format!("`{rev}` ({}) is invalid:", &info.sha[..12.min(info.sha.len())]));
        render::diagnostics(&d);
        CliError::Invalid(d.len())
    })?;
    Ok((state, info.sha))
}

/// A state as the store would hold it once deployed.
fn as_stored(state: &DesiredState, revision: &str) -> Vec<StoredResource> {
    state
        .resources()
        .iter()
        .zip(state.hashes())
        .map(|(r, h)| StoredResource {
            key: r.key(),
            body: r.body(),
            hash: h.clone(),
            source: r.source(),
            revision: revision.to_string(),
            updated_at: String::new(),
        })
        .collect()
}

pub(super) async fn plan(g: &Global, a: PlanArgs) -> Result {
    let base_ref = a.base.as_deref().expect("called with --base");
    let cache = std::env::temp_dir();
    let repo = GitRepo::open_at(&RepoSource::Local(g.repo.clone()), &a.head, &cache, "").context("opening the git repository")?;
    let (base, base_sha) = state_at(&repo, base_ref)?;
    let (head, head_sha) = state_at(&repo, &a.head)?;
    let plan = reconciler::plan(&head, &as_stored(&base, &base_sha), &head_sha);
    let access = schema::access::diff(&base, &head);
    let blast = match Remote::resolve(a.url.as_deref(), a.token.as_deref()) {
        Some(remote) => Some(radius(&remote, &access).await),
        None => None,
    };
    if let Some(path) = &a.out {
        let json = serde_json::to_string_pretty(&plan).context("serializing the plan")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = anstream::stdout();
    match a.format {
        PlanFormat::Text => render::plan_text(&mut out, &plan).and_then(|()| render::access_text(&mut out, &access, blast.as_ref())),
        PlanFormat::Markdown => {
            render::plan_markdown(&mut out, &plan).and_then(|()| render::access_markdown(&mut out, &access, blast.as_ref()))
        }
        PlanFormat::Json => {
            let v = json!({"plan": plan, "access": access, "blastRadius": blast});
            writeln!(out, "{}", serde_json::to_string_pretty(&v).expect("json"))
        }
    }
    .context("writing output")?;
    if a.detailed_exitcode && !(plan.is_empty() && access.is_empty()) {
        return Err(CliError::ChangesPresent);
    }
    Ok(())
}

/// What the change does to the tools clients use, as the gateway knows them.
#[derive(Debug, Default, Serialize)]
pub struct Blast {
    /// Look-back of the call counts, in days.
    pub days: u32,
    pub tools: Vec<ToolEffect>,
    /// What could not be learned (an unreachable gateway, a project the token cannot see…).
    pub notes: Vec<String>,
}

/// A tool a project stops (or starts) serving, and who called it lately.
#[derive(Debug, Serialize)]
pub struct ToolEffect {
    pub project: String,
    pub tool: String,
    pub removed: bool,
    /// (token, calls) in the last `days`; `None` when the token may not read the audit log.
    pub calls: Option<Vec<(String, i64)>>,
}

impl Blast {
    /// One line per tool: "removes `time__convert_time` from homelab; used by claude-desktop 412
    /// times in the last 30 days".
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .tools
            .iter()
            .map(|t| {
                let verb = if t.removed { "removes" } else { "adds" };
                let prep = if t.removed { "from" } else { "to" };
                let used = match &t.calls {
                    None => " (call counts need `action:audit`)".to_string(),
                    Some(c) if c.is_empty() => format!("; not called in the last {} days", self.days),
                    Some(c) => {
                        let who: Vec<String> =
                            c.iter().map(|(tok, n)| format!("{tok} {n} {}", if *n == 1 { "time" } else { "times" })).collect();
                        format!("; used by {} in the last {} days", who.join(", "), self.days)
                    }
                };
                format!("{verb} `{}` {prep} {}{used}", t.tool, t.project)
            })
            .collect();
        out.extend(self.notes.iter().cloned());
        out
    }
}

/// Ask the gateway which tools the removed servers serve, and who called them.
async fn radius(remote: &Remote, access: &AccessDiff) -> Blast {
    let mut blast = Blast { days: 30, ..Blast::default() };
    for s in &access.surfaces {
        for srv in &s.added_servers {
            blast.notes.push(format!("adds server `{srv}` to {}: its tools are known once it is deployed", s.project));
        }
        if s.removed_servers.is_empty() {
            continue;
        }
        let listed = match remote.get_json(&format!("/api/v1/projects/{}/tools?days={}", s.project, blast.days)).await {
            Ok(v) => v,
            Err(e) => {
                blast.notes.push(format!("{}: no tool list ({e})", s.project));
                continue;
            }
        };
        for t in listed["tools"].as_array().into_iter().flatten() {
            let server = t["server"].as_str().unwrap_or_default();
            if !s.removed_servers.iter().any(|r| r == server) {
                continue;
            }
            let calls = t
                .get("calls")
                .and_then(|c| c.as_array())
                .map(|c| c.iter().map(|x| (x["token"].as_str().unwrap_or("-").to_string(), x["count"].as_i64().unwrap_or(0))).collect());
            let tool = t["name"].as_str().unwrap_or_default().to_string();
            blast.tools.push(ToolEffect { project: s.project.clone(), tool, removed: true, calls });
        }
        for u in listed["unavailable"].as_array().into_iter().flatten() {
            if let Some(srv) = u["server"].as_str().filter(|srv| s.removed_servers.iter().any(|r| r == srv)) {
                blast.notes.push(format!("removes server `{srv}` from {}: the gateway cannot list its tools now", s.project));
            }
        }
    }
    blast
}
