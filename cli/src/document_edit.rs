//! Edits of one resource's YAML document in the checkout: the document is rewritten from its
//! JSON, the other documents of the file and its leading comments stay as written, and the whole
//! repo is validated before any file is replaced (by rename). Shared by `secret set/rotate` and
//! `create usertoken`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use schema::SourceFile;

use crate::{render, CliError};

/// Validate the repo with these files replaced, then write them (each by rename).
///
/// # Errors
/// [`CliError::Invalid`] (the problems printed) when the result would be invalid; nothing is
/// written then. An I/O error otherwise.
pub fn write_checked(repo: &Path, changed: &BTreeMap<String, String>) -> Result<(), CliError> {
    let mut files = reconciler::read_dir(repo).with_context(|| format!("reading repo {}", repo.display()))?;
    files.retain(|f| !changed.contains_key(&f.path));
    files.extend(changed.iter().map(|(p, c)| SourceFile::new(p.clone(), c.as_str())));
    schema::check(&files).map_err(|d| {
        render::diagnostics(&d);
        CliError::Invalid(d.len())
    })?;
    for (rel, content) in changed {
        let full = repo.join(rel);
        let dir = full.parent().expect("a file has a parent");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(format!(".{}.mcpctl-tmp", full.file_name().unwrap_or_default().to_string_lossy()));
        std::fs::write(&tmp, content).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &full).with_context(|| format!("replacing {}", full.display()))?;
    }
    Ok(())
}

/// One `---`-separated document of a file: its first line (0-based) and its lines.
struct Segment {
    start: usize,
    lines: Vec<String>,
}

fn segments(text: &str) -> Vec<Segment> {
    let mut out: Vec<Segment> = vec![Segment { start: 0, lines: Vec::new() }];
    for (i, line) in text.lines().enumerate() {
        let marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if marker && out.last().is_some_and(|s| !s.lines.is_empty()) {
            out.push(Segment { start: i, lines: Vec::new() });
        }
        out.last_mut().expect("never empty").lines.push(line.to_string());
    }
    out
}

/// Rewrite the document holding the resource at 1-based `line` of `text`, which must be one
/// `kind: <kind>` document: `edit` changes its JSON, which is emitted again; the other documents
/// and the document's leading comments are kept as written. `None` when the resource is not
/// alone in its document (a grouped list such as `users: [...]`).
pub fn rewrite_document(text: &str, line: usize, kind: &str, edit: impl FnOnce(&mut Value)) -> Option<String> {
    let mut segs = segments(text);
    let idx = segs.iter().rposition(|s| s.start < line)?;
    let seg = &segs[idx];
    let body = seg.lines.join("\n");
    let docs = schema::document::parse(&body).ok()?;
    let mut doc = match docs.as_slice() {
        [d] if d.get("kind").and_then(|k| k.as_str()) == Some(kind) => d.to_json(),
        _ => return None,
    };
    edit(&mut doc);
    let has_marker = seg.lines.first().is_some_and(|l| l.starts_with("---"));
    let mut lead: Vec<String> = Vec::new();
    for l in seg.lines.iter().skip(usize::from(has_marker)) {
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            lead.push(l.clone());
        } else {
            break;
        }
    }
    let emitted = schema::emit::yaml_document(&doc);
    let emitted_body = emitted.strip_prefix("---\n").unwrap_or(&emitted).trim_end_matches('\n');
    let mut new_lines = Vec::new();
    if has_marker {
        new_lines.push(seg.lines[0].clone());
    }
    new_lines.extend(lead);
    new_lines.extend(emitted_body.lines().map(str::to_string));
    segs[idx].lines = new_lines;
    let mut out = segs.iter().flat_map(|s| s.lines.iter().cloned()).collect::<Vec<_>>().join("\n");
    out.push('\n');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rewriting_a_document_keeps_the_others_and_leading_comments() {
        let text = "# top\napiVersion: mcpctl.io/v1\nkind: SecretBackend\nmetadata: {name: git}\nspec: {type: plaintext, isDefault: true}\n---\n# the keys\napiVersion: mcpctl.io/v1\nkind: Secret\nmetadata:\n  name: k\nspec:\n  data: {}\n";
        let out = rewrite_document(text, 8, "Secret", |d| d["spec"]["data"]["a"] = json!("x\ny\n")).unwrap();
        assert!(out.starts_with("# top\napiVersion: mcpctl.io/v1\nkind: SecretBackend\nmetadata: {name: git}\nspec: {type: plaintext, isDefault: true}\n---\n# the keys\n"), "{out}");
        let docs = schema::document::parse(&out).unwrap();
        assert_eq!(docs[1].to_json()["spec"]["data"]["a"], "x\ny\n");
        assert_eq!(docs[0].to_json()["kind"], "SecretBackend");

        let grouped = "secrets:\n  - metadata: {name: k}\n    spec: {data: {}}\n";
        assert!(rewrite_document(grouped, 2, "Secret", |_| {}).is_none());
        assert!(rewrite_document(text, 8, "User", |_| {}).is_none(), "another kind's document");
    }
}
