//! Validation findings, printed as `path:line:column: kind/name: message`.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::document::Pos;

/// One problem found in the repo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Repo-relative path of the file.
    pub file: Arc<str>,
    pub line: u32,
    pub column: u32,
    /// `Kind/name` of the resource concerned, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub message: String,
}

impl Diagnostic {
    pub fn new(file: &Arc<str>, pos: Pos, subject: Option<String>, message: impl Into<String>) -> Self {
        Self { file: file.clone(), line: pos.line, column: pos.col, subject, message: message.into() }
    }

    fn sort_key(&self) -> (&str, u32, u32) {
        (&self.file, self.line, self.column)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if let Some(s) = &self.subject {
            write!(f, "{s}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem of one validation run, sorted by file and position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(transparent)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn sorted(mut list: Vec<Diagnostic>) -> Self {
        list.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        list.dedup();
        Diagnostics(list)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}
