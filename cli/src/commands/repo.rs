//! `validate`, `plan` and `apply`: the repo against the runtime database.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};

use reconciler::{DeployMeta, Plan, Store};
use schema::Resource;

use super::{actor, load_repo, open_store, Result};
use crate::args::*;
use crate::render;
use crate::CliError;

pub(super) fn validate(g: &Global, a: ValidateArgs) -> Result {
    let files = reconciler::read_dir(&g.repo).with_context(|| format!("reading repo {}", g.repo.display()))?;
    match schema::check(&files) {
        Ok(state) => {
            let mut out = anstream::stdout();
            if a.output == TextOrJson::Json {
                writeln!(out, "{}", serde_json::json!({"valid": true, "resources": state.len(), "files": files.len(), "errors": []})).context("writing output")?;
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

pub(super) async fn make_plan(g: &Global) -> Result<(Plan, Store)> {
    let desired = load_repo(&g.repo)?;
    let store = open_store(g).await?;
    let stored = store.resources().await.context("reading the store")?;
    let revision = format!("sha256:{}", desired.content_hash());
    Ok((reconciler::plan(&desired, &stored, &revision), store))
}

pub(super) async fn plan(g: &Global, a: PlanArgs) -> Result {
    let (plan, _) = make_plan(g).await?;
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
    let plan: Plan = serde_json::from_str(&text).with_context(|| format!("{} is not a plan written by `mcpctl plan -o`", path.display()))?;
    if plan.format_version != reconciler::plan::FORMAT_VERSION {
        bail!("{}: plan format {} is not supported (this mcpctl writes {})", path.display(), plan.format_version, reconciler::plan::FORMAT_VERSION);
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

pub(super) async fn apply(g: &Global, a: ApplyArgs) -> Result {
    let (plan, store) = match &a.plan {
        Some(path) => (read_plan(path)?, open_store(g).await?),
        None => make_plan(g).await?,
    };
    let mut out = anstream::stdout();
    if !a.quiet && !plan.is_empty() {
        render::plan_text(&mut out, &plan).context("writing output")?;
        writeln!(out).context("writing output")?;
    }
    let bar = render::progress(plan.changes.len());
    let meta = DeployMeta { revision: plan.revision.clone(), actor: actor(), message: None, commit: None };
    let result = store.apply(&plan, &meta, &|done, _| bar.set_position(done as u64)).await;
    bar.finish_and_clear();
    let deploy = result.context("apply failed; nothing was changed")?;
    render::apply_done(&mut out, &plan, &deploy).context("writing output")?;
    Ok(())
}
