//! `validate`, `plan` and `apply`: the repo against the runtime database.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context};

use reconciler::{DeployMeta, Plan, Store, StoredResource};
use schema::Resource;

use super::{actor, open_store, Result};
use crate::args::*;
use crate::render;
use crate::CliError;

pub(super) fn validate(g: &Global, a: ValidateArgs) -> Result {
    let files = reconciler::read_dir(&g.repo).with_context(|| format!("reading repo {}", g.repo.display()))?;
    match schema::check(&files).and_then(|state| schema::ceiling::check(&state).map(|()| state)) {
        Ok(state) => {
            let mut out = anstream::stdout();
            if let Some(f) = &a.age_identity {
                let ids = reconciler::recipients::Identities::from_file(f).context("loading --age-identity")?;
                if let Err(errors) = ids.check_decryptable(&state) {
                    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    if a.output == TextOrJson::Json {
                        writeln!(out, "{}", serde_json::json!({"valid": false, "errors": errors})).context("writing output")?;
                    } else {
                        errors.iter().for_each(|e| render::error_line(e));
                    }
                    return Err(CliError::Invalid(errors.len()));
                }
            }
            if a.output == TextOrJson::Json {
                writeln!(out, "{}", serde_json::json!({"valid": true, "resources": state.len(), "files": files.len(), "errors": []}))
                    .context("writing output")?;
            } else {
                render::ok_line(&format!("{} resources in {} files are valid", state.len(), files.len()));
            }
            Ok(())
        }
        Err(diags) => {
            if a.output == TextOrJson::Json {
                writeln!(anstream::stdout(), "{}", serde_json::json!({"valid": false, "errors": diags})).context("writing output")?;
            } else {
                render::diagnostics(&diags);
            }
            Err(CliError::Invalid(diags.len()))
        }
    }
}

/// A spinner naming the current step of a long `plan`/`apply` on stderr; drawn only when stderr
/// is a terminal, and only once a step has taken a moment (fast runs show nothing).
fn steps() -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("template"));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// The plan of the repo against the store, the store, and how many rows the store held.
pub(super) async fn make_plan(g: &Global) -> Result<(Plan, Store, usize)> {
    let bar = steps();
    bar.set_message(format!("reading and validating {}", g.repo.display()));
    let files = reconciler::read_dir(&g.repo).with_context(|| format!("reading repo {}", g.repo.display()));
    // Only the files whose bytes changed since the last run are parsed (the rest come from the
    // decode cache; the whole repo is still validated).
    let desired = match files.map(|mut f| reconciler::decode_cache::check_dir(&g.repo, &mut f)) {
        Ok(Ok(d)) => d,
        Ok(Err(diags)) => {
            bar.finish_and_clear();
            render::diagnostics(&diags);
            return Err(CliError::Invalid(diags.len()));
        }
        Err(e) => {
            bar.finish_and_clear();
            return Err(e.into());
        }
    };
    bar.set_message(format!("reading the store ({} resources in the repo)", desired.len()));
    let store = open_store(g).await?;
    // Every row's key and body hash, and the whole rows only of what the plan changes.
    let (stored, changed) =
        store.resources_for_plan(|rows| reconciler::plan::changed_keys(&desired, rows)).await.context("reading the store")?;
    bar.set_message(format!("planning {} resources against {} stored", desired.len(), stored.len()));
    let revision = format!("sha256:{}", desired.content_hash());
    let plan = reconciler::plan::plan_hashed(&desired, &stored, &changed, &revision);
    bar.finish_and_clear();
    let count = stored.len();
    // `plan` and `apply` end soon after this: the repo-sized state is left to the process's exit
    // rather than freed allocation by allocation (for 100,000 resources that took longer than
    // planning against them).
    std::mem::forget((desired, stored));
    Ok((plan, store, count))
}

pub(super) async fn plan(g: &Global, a: PlanArgs) -> Result {
    if a.base.is_some() {
        return super::review::plan(g, a).await;
    }
    let (plan, _, _) = make_plan(g).await?;
    if let Some(path) = &a.out {
        let json = serde_json::to_string_pretty(&plan).context("serializing the plan")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = anstream::stdout();
    match a.format {
        PlanFormat::Text => render::plan_text(&mut out, &plan),
        PlanFormat::Markdown => render::plan_markdown(&mut out, &plan),
        PlanFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&plan).expect("plan serializes")),
    }
    .context("writing output")?;
    if let Some(path) = &a.out {
        eprintln!("Saved the plan to {}; apply it with `mcpctl apply {}`.", path.display(), path.display());
    }
    if a.detailed_exitcode && !plan.is_empty() {
        return Err(CliError::ChangesPresent);
    }
    Ok(())
}

/// Read a saved plan and check every body in it still decodes.
pub(super) fn read_plan(path: &Path) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let plan: Plan =
        serde_json::from_str(&text).with_context(|| format!("{} is not a plan written by `mcpctl plan -o`", path.display()))?;
    if plan.format_version != reconciler::plan::FORMAT_VERSION {
        bail!(
            "{}: plan format {} is not supported (this mcpctl writes {})",
            path.display(),
            plan.format_version,
            reconciler::plan::FORMAT_VERSION
        );
    }
    for c in &plan.changes {
        if let Some(body) = &c.desired {
            let res = Resource::from_body(&body.to_string()).with_context(|| format!("{}: change {}", path.display(), c.key()))?;
            if res.key() != c.key() {
                bail!("{}: change {} carries the body of {}", path.display(), c.key(), res.key());
            }
        }
    }
    Ok(plan)
}

/// Check that what a saved plan leaves in the store is a valid desired state, as if it came
/// from a repo: the stored resources it does not touch, plus the bodies it writes. A plan file is
/// user input like a repo, so a hand-edited plan (say, a plaintext secret) meets the same rules.
fn check_plan_result(path: &Path, plan: &Plan, stored: &[StoredResource]) -> Result {
    let touched: std::collections::HashSet<_> = plan.changes.iter().map(|c| c.key()).collect();
    let mut resources = Vec::new();
    for row in stored.iter().filter(|r| !touched.contains(&r.key)) {
        resources.push(Resource::from_body(&row.body).with_context(|| format!("decoding stored {}", row.key))?);
    }
    for body in plan.changes.iter().filter_map(|c| c.desired.as_ref()) {
        resources.push(Resource::from_body(&body.to_string()).with_context(|| format!("{}: decoding a change", path.display()))?);
    }
    schema::validate(resources).map(drop).map_err(|diags| {
        // Point at the plan file for what the plan writes; the rest is what the store holds.
        let written: std::collections::HashSet<String> =
            plan.changes.iter().filter(|c| c.desired.is_some()).map(|c| c.key().to_string()).collect();
        let file: std::sync::Arc<str> = path.display().to_string().into();
        let diags = schema::Diagnostics(
            diags
                .0
                .into_iter()
                .map(|mut d| {
                    if d.subject.as_ref().is_some_and(|s| written.contains(s)) {
                        d.file = file.clone();
                    }
                    d
                })
                .collect(),
        );
        render::diagnostics(&diags);
        render::error_line(&format!("{}: applying this plan would leave an invalid state; nothing was changed", path.display()));
        CliError::Invalid(diags.len())
    })
}

/// What `apply` does with a plan before writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// Apply without asking.
    Proceed,
    /// Show the plan and ask y/N first.
    Ask,
    /// The plan would delete every stored resource and `--allow-empty` was not given.
    RefuseEmpty,
}

/// The decision, pure so it is unit-tested: the mass-deletion guard holds on every path; the
/// question is asked only on a terminal, for a plan with changes, without `--auto-approve`.
pub(crate) fn gate(plan_has_changes: bool, empties_store: bool, allow_empty: bool, interactive: bool, auto_approve: bool) -> Gate {
    if empties_store && !allow_empty {
        Gate::RefuseEmpty
    } else if plan_has_changes && interactive && !auto_approve {
        Gate::Ask
    } else {
        Gate::Proceed
    }
}

/// Ask `question [y/N]` on the terminal; only `y`/`yes` is a yes.
fn confirm(question: &str) -> anyhow::Result<bool> {
    let mut out = anstream::stdout();
    write!(out, "{question} [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

pub(super) async fn apply(g: &Global, a: ApplyArgs) -> Result {
    let (plan, store, stored) = match &a.plan {
        Some(path) => {
            let plan = read_plan(path)?;
            let store = open_store(g).await?;
            let stored = store.resources().await.context("reading the store")?;
            check_plan_result(path, &plan, &stored)?;
            (plan, store, stored.len())
        }
        None => make_plan(g).await?,
    };
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let decision = gate(!plan.is_empty(), plan.empties_store(stored), a.allow_empty, interactive, a.auto_approve);
    if decision == Gate::RefuseEmpty {
        let what = match &a.plan {
            Some(p) => format!("the plan {} deletes", p.display()),
            None => format!("the repo {} has no resources, so applying it would delete", g.repo.display()),
        };
        return Err(anyhow::anyhow!("{what} all {stored} resources in the store (tokens included); nothing was changed. Check -C/the plan, or pass --allow-empty if that is intended").into());
    }
    let mut out = anstream::stdout();
    if (!a.quiet || decision == Gate::Ask) && !plan.is_empty() {
        render::plan_text(&mut out, &plan).context("writing output")?;
        writeln!(out).context("writing output")?;
    }
    if decision == Gate::Ask && !confirm("Apply these changes?").context("reading the answer")? {
        return Err(anyhow::anyhow!("apply cancelled; nothing was changed").into());
    }
    let bar = render::progress(plan.changes.len());
    let meta = DeployMeta { revision: plan.revision.clone(), actor: actor(), message: None, commit: None };
    let result = store.apply(&plan, &meta, &|done, _| bar.set_position(done as u64)).await;
    bar.finish_and_clear();
    let deploy = result.context("apply failed; nothing was changed")?;
    render::apply_done(&mut out, &plan, &deploy).context("writing output")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{gate, Gate};

    #[test]
    fn apply_asks_only_on_a_terminal_and_never_empties_the_store_unasked() {
        // (changes, empties, allow_empty, interactive, auto_approve) → decision
        let cases = [
            ((true, false, false, true, false), Gate::Ask),
            ((true, false, false, true, true), Gate::Proceed),
            ((true, false, false, false, false), Gate::Proceed),
            ((false, false, false, true, false), Gate::Proceed),
            ((true, true, false, false, true), Gate::RefuseEmpty),
            ((true, true, false, true, false), Gate::RefuseEmpty),
            ((true, true, true, true, false), Gate::Ask),
            ((true, true, true, false, false), Gate::Proceed),
        ];
        for ((c, e, ae, i, aa), want) in cases {
            assert_eq!(gate(c, e, ae, i, aa), want, "changes={c} empties={e} allow_empty={ae} interactive={i} auto_approve={aa}");
        }
    }
}
