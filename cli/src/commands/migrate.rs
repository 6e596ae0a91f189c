//! `mcpctl migrate secrets`: move Secrets' values between SecretBackends, one at a time, with a
//! progress bar; a stopped run is finished by the next one.
//!
//! # Guarantees
//! Per Secret: read at the source, write at the destination, then the flip (its row in
//! `secret_locations`), then a best-effort delete at the source. Servers read the source until the
//! flip and the destination after it, so a run killed at any point leaves every Secret readable;
//! the rerun skips Secrets already on the destination and redoes the one that was cut short.
//! Values are never printed, logged or kept anywhere but the backends.

use std::io::Write;

use anyhow::{anyhow, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use reconciler::secrets::{Backends, SecretResolver};
use schema::{Kind, Resource};

use super::{load_repo, open_existing_store, Result};
use crate::args::*;

/// `name` or `project/name` of a Secret.
fn display(r: &Resource) -> String {
    match &r.metadata.project {
        Some(p) => format!("{p}/{}", r.metadata.name),
        None => r.metadata.name.clone(),
    }
}

pub(super) async fn secrets(g: &Global, a: MigrateSecretsArgs) -> Result {
    let desired = load_repo(&g.repo)?;
    let store = open_existing_store(g).await?;
    let resolver = match &a.age_identity {
        Some(f) => SecretResolver::from_file(f).context("loading --age-identity")?,
        None => SecretResolver::none(),
    };
    let backends = Backends::new(&desired, &store, &resolver).await.context("reading secret locations")?;
    for b in [&a.from, &a.to] {
        backends.backend("", b).map_err(|_| anyhow!("no SecretBackend `{b}` in the repo {}", g.repo.display()))?;
    }
    if a.from == a.to {
        return Err(anyhow!("--from and --to are both `{}`", a.from).into());
    }
    let secrets: Vec<&Resource> = desired.of_kind(Kind::Secret).collect();
    for n in &a.names {
        if !secrets.iter().any(|s| display(s) == *n) {
            return Err(anyhow!("no Secret `{n}` in the repo (give `name` or `project/name`)").into());
        }
    }
    let chosen: Vec<&Resource> = secrets.into_iter().filter(|s| a.names.is_empty() || a.names.contains(&display(s))).collect();
    // The OpenBao token is the trust root: it stays in git (plaintext backend), never in OpenBao.
    let tokens: Vec<(String, String)> = desired
        .of_kind(Kind::SecretBackend)
        .filter_map(|b| match &b.spec {
            schema::Spec::SecretBackend(spec) => {
                spec.openbao.as_ref()?.token_secret_ref.as_ref().map(|r| (r.name.clone(), b.metadata.name.clone()))
            }
            _ => None,
        })
        .collect();
    let mut out = anstream::stdout();
    let token_of =
        |s: &Resource| tokens.iter().find(|(n, _)| s.metadata.project.is_none() && *n == s.metadata.name).map(|(_, b)| b.clone());
    let (chosen, held): (Vec<&Resource>, Vec<&Resource>) = chosen.into_iter().partition(|s| token_of(s).is_none());
    for s in held {
        writeln!(
            out,
            "skip {}: it holds the token of backend {} and stays on its plaintext backend",
            display(s),
            token_of(s).unwrap_or_default()
        )
        .context("writing output")?;
    }
    let (todo, rest): (Vec<&Resource>, Vec<&Resource>) =
        chosen.into_iter().partition(|s| backends.location(s).as_deref() == Some(a.from.as_str()));
    for s in &rest {
        let at = backends.location(s).unwrap_or_else(|| "(no backend)".into());
        if at == a.to {
            writeln!(out, "skip {}: already on {}", display(s), a.to).context("writing output")?;
        } else if !a.names.is_empty() {
            writeln!(out, "skip {}: it is on {at}, not {}", display(s), a.from).context("writing output")?;
        }
    }
    if a.dry_run {
        for s in &todo {
            writeln!(
                out,
                "would move {} from {} to {}{}",
                display(s),
                a.from,
                a.to,
                if a.keep_source { " (keeping the source)" } else { "" }
            )
            .context("writing output")?;
        }
        writeln!(out, "dry run: {} to move, nothing changed", todo.len()).context("writing output")?;
        return Ok(());
    }
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::with_draw_target(Some(todo.len() as u64), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} migrating [{bar:30}] {pos}/{len} secrets {msg}").expect("template").progress_chars("=> "),
    );
    let mut moved = 0;
    for s in &todo {
        bar.set_message(display(s));
        let notes = backends.move_secret(s, &a.from, &a.to, a.keep_source).await.map_err(|e| {
            bar.abandon();
            anyhow!("{e}\n{moved} secret(s) moved before this one; rerun to finish (moved ones are skipped)")
        })?;
        moved += 1;
        bar.suspend(|| -> anyhow::Result<()> {
            writeln!(out, "moved {} from {} to {}", display(s), a.from, a.to)?;
            for n in notes {
                writeln!(out, "  note: {n}")?;
            }
            out.flush()?;
            Ok(())
        })
        .context("writing output")?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    writeln!(out, "{moved} secret(s) moved from {} to {}; {} skipped", a.from, a.to, rest.len()).context("writing output")?;
    if moved > 0 {
        let to_openbao = backends.backend("", &a.to).is_ok_and(|b| b.backend_type == schema::spec::SecretBackendType::Openbao);
        if to_openbao {
            let paths = if todo.len() <= 5 {
                todo.iter().map(|s| format!("{}: externalRef: {}", display(s), Backends::openbao_path(s))).collect::<Vec<_>>().join("; ")
            } else {
                "externalRef: mcpctl/<project or _global>/<name>".to_string()
            };
            writeln!(out, "in the repo, set `backend: {}` and replace `data` with the externalRef of each moved Secret ({paths})", a.to)
                .context("writing output")?;
        } else {
            writeln!(out, "in the repo, set `backend: {}` on the moved Secrets so that it says where they live", a.to)
                .context("writing output")?;
        }
    }
    Ok(())
}
