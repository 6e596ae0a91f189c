//! `logs`: the captured stderr of a server run by the local runtime.

use std::io::Write;

use anyhow::Context;

use super::Result;
use crate::args::*;

pub(super) fn log_dir() -> anyhow::Result<std::path::PathBuf> {
    if let Ok(d) = std::env::var("MCPCTL_LOG_DIR") {
        return Ok(d.into());
    }
    Ok(dirs::data_dir().context("no data directory; set MCPCTL_LOG_DIR")?.join("mcpctl").join("logs"))
}

pub(super) fn logs(a: LogsArgs) -> Result {
    let path = reconciler::runtime::LocalRuntime::log_path(&log_dir()?, &a.server.replace('/', "_"));
    let text = std::fs::read_to_string(&path).with_context(|| format!("no logs for `{}` ({})", a.server, path.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let start = a.tail.map_or(0, |n| lines.len().saturating_sub(n));
    let mut out = anstream::stdout();
    for l in &lines[start..] {
        writeln!(out, "{l}").context("writing output")?;
    }
    Ok(())
}
