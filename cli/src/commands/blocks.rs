//! The system-block preview of `mcpctl describe agent NAME [--personality P]`: the blocks the
//! gateway will send before a chat, in order, and the sampling in force — computed from the
//! stored state by the same function the gateway uses (`schema::agent`).

use std::io::{self, Write};

use anstyle::Style;
use serde_json::{json, Value};

use schema::agent::{self, SystemBlock};
use schema::{DesiredState, Resource};

use crate::render::escape_controls;

/// What `describe agent` previews.
pub(super) struct Preview {
    pub personality: Option<String>,
    pub blocks: Vec<SystemBlock>,
    pub sampling: schema::spec::Sampling,
}

/// The preview of agent `res` as `personality` (default: its `defaultPersonality`).
///
/// # Errors
/// An unknown personality (naming it, with a suggestion).
pub(super) fn preview(state: &DesiredState, res: &Resource, personality: Option<&str>) -> Result<Preview, agent::AgentError> {
    let project = res.metadata.project.as_deref().unwrap_or_default();
    let spec = agent::agent(state, project, res.name())?;
    let persona = agent::personality(state, project, res.name(), personality)?;
    let blocks = agent::system_blocks(state, project, res.name(), personality, None)?;
    let sampling = agent::effective_sampling(spec, persona.map(|(_, p)| p), &Default::default());
    Ok(Preview { personality: persona.map(|(n, _)| n.to_string()), blocks, sampling })
}

impl Preview {
    pub(super) fn to_json(&self) -> Value {
        json!({"personality": self.personality, "systemBlocks": self.blocks, "sampling": self.sampling})
    }

    /// A numbered table: source, name, priority, the first line of the text.
    pub(super) fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let bold = Style::new().bold();
        let title = format!("System blocks (personality: {}):", self.personality.as_deref().unwrap_or("none"));
        writeln!(out, "{}{title}{}", bold.render(), bold.render_reset())?;
        if self.blocks.is_empty() {
            writeln!(out, "  (none)")?;
        }
        let rows: Vec<[String; 5]> = self
            .blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let first = b.content.trim().lines().next().unwrap_or_default();
                let first: String = first.chars().take(72).collect();
                [
                    (i + 1).to_string(),
                    b.source.as_str().to_string(),
                    b.name.clone().unwrap_or_else(|| "-".into()),
                    b.priority.to_string(),
                    escape_controls(&first).into_owned(),
                ]
            })
            .collect();
        let header = ["#", "SOURCE", "NAME", "PRIORITY", "FIRST LINE"].map(String::from);
        let all: Vec<&[String; 5]> = std::iter::once(&header).chain(rows.iter()).collect();
        let widths: Vec<usize> = (0..5).map(|c| all.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
        if !rows.is_empty() {
            for r in all {
                let cells: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
                writeln!(out, "  {}", cells.join("  ").trim_end())?;
            }
        }
        let sampling = serde_json::to_string(&self.sampling).expect("json");
        writeln!(
            out,
            "{}Sampling:{} {}",
            bold.render(),
            bold.render_reset(),
            if self.sampling.is_empty() { "(provider defaults)" } else { &sampling }
        )
    }
}
