//! `mcpctl config get-contexts|use-context|current-context|delete-context`: the login contexts
//! of the config file ([`crate::context`]), kubectl-style. Tokens are shown as their prefix only.

use std::io::Write;

use anyhow::Context as _;
use serde_json::{json, Value};

use super::Result;
use crate::args::*;
use crate::context::{config_path, Config};
use crate::CliError;

/// What `config` refuses.
#[derive(Debug, thiserror::Error)]
pub enum ConfigCmdError {
    #[error("no current context (see `mcpctl config get-contexts`; `mcpctl login --url URL` sets one)")]
    NoCurrent,
}

impl From<ConfigCmdError> for CliError {
    fn from(e: ConfigCmdError) -> Self {
        CliError::Other(e.into())
    }
}

/// Rows as left-aligned columns, the header in bold (as `get`'s tables).
fn columns(out: &mut impl Write, rows: &[[String; 5]]) -> std::io::Result<()> {
    let widths: Vec<usize> = (0..5).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for (i, r) in rows.iter().enumerate() {
        let line: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let line = line.join("   ");
        let bold = anstyle::Style::new().bold();
        match i {
            0 => writeln!(out, "{}{}{}", bold.render(), line.trim_end(), bold.render_reset())?,
            _ => writeln!(out, "{}", line.trim_end())?,
        }
    }
    Ok(())
}

pub(super) fn config(c: ConfigCommand) -> Result {
    let path = config_path()?;
    let mut config = Config::load(&path)?;
    let mut out = anstream::stdout();
    match c {
        ConfigCommand::GetContexts { output } => {
            let current = config.current_context.as_deref();
            match output {
                TextOrJson::Json => {
                    let items: Vec<Value> = config
                        .contexts
                        .iter()
                        .map(|c| {
                            json!({"name": c.name, "url": c.url, "user": c.user, "tokenPrefix": c.token_prefix(), "current": Some(c.name.as_str()) == current})
                        })
                        .collect();
                    writeln!(out, "{}", serde_json::to_string_pretty(&json!({"currentContext": current, "contexts": items})).expect("json"))
                }
                TextOrJson::Text => {
                    let mut rows = vec![["CURRENT".to_string(), "NAME".into(), "URL".into(), "USER".into(), "TOKEN".into()]];
                    for c in &config.contexts {
                        let mark = if Some(c.name.as_str()) == current { "*" } else { "" };
                        rows.push([
                            mark.into(),
                            c.name.clone(),
                            reconciler::redact::urls(&c.url),
                            c.user.clone().unwrap_or_else(|| "-".into()),
                            format!("{}…", c.token_prefix()),
                        ]);
                    }
                    columns(&mut out, &rows)
                }
            }
            .context("writing output")?;
        }
        ConfigCommand::UseContext { name } => {
            if config.get(&name).is_none() {
                return Err(crate::context::ContextError::NoSuchContext { name, path: path.display().to_string() }.into());
            }
            config.current_context = Some(name.clone());
            config.save(&path)?;
            writeln!(out, "Switched to context `{name}`.").context("writing output")?;
        }
        ConfigCommand::CurrentContext => {
            let name = config.current().map(|c| c.name.clone()).ok_or(ConfigCmdError::NoCurrent)?;
            writeln!(out, "{name}").context("writing output")?;
        }
        ConfigCommand::DeleteContext { name } => {
            let before = config.contexts.len();
            config.contexts.retain(|c| c.name != name);
            if config.contexts.len() == before {
                return Err(crate::context::ContextError::NoSuchContext { name, path: path.display().to_string() }.into());
            }
            if config.current_context.as_deref() == Some(name.as_str()) {
                config.current_context = None;
            }
            config.save(&path)?;
            writeln!(out, "Deleted context `{name}`.").context("writing output")?;
        }
    }
    Ok(())
}
