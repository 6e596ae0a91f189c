//! `mcpctl backup` and `mcpctl restore`: the runtime data to and from an archive
//! (`reconciler::backup`), with a progress bar on a terminal and a text or JSON summary.

use std::io::{BufReader, Write};
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use reconciler::backup::{self, Summary};

use super::{open_existing_store, open_store, Result};
use crate::args::*;

const ROWS: &str = "{spinner} backing up [{bar:30}] {pos}/{len} rows";
const BYTES: &str = "{spinner} restoring [{bar:30}] {bytes}/{total_bytes}";

/// A bar on stderr (drawn only on a terminal) in the style of `template` ([`ROWS`], [`BYTES`]).
fn bar(total: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template(template).expect("template").progress_chars("=> "));
    bar
}

fn print(out: &mut dyn Write, verb: &str, s: &Summary, format: TextOrJson) -> anyhow::Result<()> {
    match format {
        TextOrJson::Json => writeln!(out, "{}", serde_json::to_string_pretty(s)?)?,
        TextOrJson::Text => {
            writeln!(out, "{verb} {} row(s) ({} version {}):", s.rows(), s.format, s.version)?;
            for t in &s.tables {
                match t.inserted {
                    Some(n) => writeln!(out, "  {:<18} {:>8} rows, {n} new, {} already present", t.table, t.rows, t.rows - n)?,
                    None => writeln!(out, "  {:<18} {:>8} rows", t.table, t.rows)?,
                }
            }
        }
    }
    Ok(())
}

pub(super) async fn backup(g: &Global, a: BackupArgs) -> Result {
    let store = open_existing_store(g).await?;
    let progress = bar(backup::count(&store).await.context("counting rows")?, ROWS);
    let out = a.out.as_deref().filter(|p| *p != Path::new("-"));
    let summary = match out {
        Some(path) => {
            let partial = path.with_extension(match path.extension() {
                Some(e) => format!("{}.partial", e.to_string_lossy()),
                None => "partial".into(),
            });
            let file = std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let written = backup::backup(&store, &mut w, |n| progress.inc(n)).await;
            let summary = match written {
                Ok(s) => s,
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(anyhow::Error::new(e).into());
                }
            };
            w.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .with_context(|| format!("writing {}", partial.display()))?;
            std::fs::rename(&partial, path).with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
            summary
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            backup::backup(&store, &mut out, |n| progress.inc(n)).await.context("backup failed")?
        }
    };
    progress.finish_and_clear();
    // The archive may be on stdout: the summary goes to stderr then.
    if out.is_some() {
        print(&mut anstream::stdout(), "backed up", &summary, a.format)?;
    } else {
        print(&mut anstream::stderr(), "backed up", &summary, a.format)?;
    }
    Ok(())
}

pub(super) async fn restore(g: &Global, a: RestoreArgs) -> Result {
    let store = open_store(g).await?;
    let summary = if a.file == Path::new("-") {
        let progress = ProgressBar::hidden();
        backup::restore(&store, &mut std::io::stdin().lock(), |n| progress.inc(n)).await
    } else {
        let file = std::fs::File::open(&a.file).with_context(|| format!("opening {}", a.file.display()))?;
        let progress = bar(file.metadata().map(|m| m.len()).unwrap_or(0), BYTES);
        let done = backup::restore(&store, &mut BufReader::new(file), |n| progress.inc(n + 1)).await;
        progress.finish_and_clear();
        done
    }
    .with_context(|| format!("restoring {} (nothing was restored)", a.file.display()))?;
    print(&mut anstream::stdout(), "restored", &summary, a.output)?;
    Ok(())
}
