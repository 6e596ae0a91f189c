//! Leaked-credential scan (`mcpctl secret scan`): provider key patterns, private keys, raw
//! `mcpctl_pat_` / `mcpctl_usr_` tokens and high-entropy literal `env` values, in the work tree, in every commit
//! of the history, or in what is staged (a pre-commit hook).
//!
//! # Guarantees
//! A finding never carries the credential: only its rule, position, a 4-character preview, its
//! length and a fingerprint (the first 16 hex digits of its SHA-256), which
//! `.mcpctl/scan-allow.txt` lists to accept a known false positive or a demo value.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use sha2::{Digest, Sha256};

/// The allow-list of fingerprints, relative to the repo root.
pub const ALLOW_FILE: &str = ".mcpctl/scan-allow.txt";

/// Why a scan could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} is not a git repository (--history and --pre-commit read git): {message}")]
    NotGit { path: String, message: String },
    #[error("reading git: {0}")]
    Git(#[from] git2::Error),
}

/// One credential found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// What it looks like, e.g. "OpenAI API key".
    pub rule: &'static str,
    pub path: String,
    pub line: usize,
    pub col: usize,
    /// The first 4 characters and `…`.
    pub preview: String,
    pub len: usize,
    /// First 16 hex digits of the SHA-256 of the value.
    pub fingerprint: String,
    /// The (oldest) commit holding it, for history findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(c) = &self.commit {
            write!(f, "{} ", &c[..12.min(c.len())])?;
        }
        write!(
            f,
            "{}:{}:{}: {} `{}` ({} chars, fingerprint {})",
            self.path, self.line, self.col, self.rule, self.preview, self.len, self.fingerprint
        )
    }
}

/// A token rule: a literal prefix, then at least `min` characters of the allowed set.
struct Rule {
    name: &'static str,
    prefix: &'static str,
    min: usize,
    chars: fn(char) -> bool,
}

fn alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}
fn token(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}
fn upper_digit(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

/// Longer prefixes first, so `sk-ant-` is named before `sk-`.
const RULES: &[Rule] = &[
    Rule { name: "Anthropic API key", prefix: "sk-ant-", min: 32, chars: token },
    Rule { name: "OpenAI API key", prefix: "sk-proj-", min: 32, chars: token },
    Rule { name: "Stripe secret key", prefix: "sk_live_", min: 20, chars: alnum },
    Rule { name: "OpenAI API key", prefix: "sk-", min: 32, chars: token },
    Rule { name: "GitHub token", prefix: "github_pat_", min: 40, chars: token },
    Rule { name: "GitHub token", prefix: "ghp_", min: 36, chars: alnum },
    Rule { name: "GitHub token", prefix: "gho_", min: 36, chars: alnum },
    Rule { name: "GitHub token", prefix: "ghs_", min: 36, chars: alnum },
    Rule { name: "GitLab token", prefix: "glpat-", min: 20, chars: token },
    Rule { name: "Slack token", prefix: "xoxb-", min: 20, chars: token },
    Rule { name: "Slack token", prefix: "xoxp-", min: 20, chars: token },
    Rule { name: "AWS access key id", prefix: "AKIA", min: 16, chars: upper_digit },
    Rule { name: "Google API key", prefix: "AIza", min: 35, chars: token },
    Rule { name: "Hugging Face token", prefix: "hf_", min: 30, chars: alnum },
    Rule { name: "mcpctl token", prefix: "mcpctl_pat_", min: 8, chars: token },
    Rule { name: "mcpctl login token", prefix: "mcpctl_usr_", min: 8, chars: token },
    Rule { name: "age identity", prefix: "AGE-SECRET-KEY-1", min: 50, chars: upper_digit },
];

fn fingerprint(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))[..16].to_string()
}

fn finding(rule: &'static str, path: &str, line: usize, col: usize, value: &str) -> Finding {
    Finding {
        rule,
        path: path.to_string(),
        line,
        col,
        preview: format!("{}…", value.chars().take(4).collect::<String>()),
        len: value.chars().count(),
        fingerprint: fingerprint(value),
        commit: None,
    }
}

/// Shannon entropy in bits per character.
fn entropy(s: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
    }
    let n = s.chars().count() as f64;
    counts
        .values()
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// A literal `env` value that looks like a credential: long, no spaces, not a path or URL, mixed
/// letters and digits, and random-looking (≥ 3.5 bits per character).
pub fn looks_random(v: &str) -> bool {
    v.chars().count() >= 20
        && !v.chars().any(char::is_whitespace)
        && !v.contains("://")
        && !v.starts_with(['/', '.', '$', '~'])
        && v.chars().any(|c| c.is_ascii_digit())
        && v.chars().any(|c| c.is_ascii_alphabetic())
        && entropy(v) >= 3.5
}

/// Scan one file's text. Pure: the caller decides where the text came from.
pub fn scan_text(path: &str, text: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut taken: Vec<(usize, usize)> = Vec::new();
        for rule in RULES {
            let mut from = 0;
            while let Some(off) = line[from..].find(rule.prefix) {
                let start = from + off;
                from = start + rule.prefix.len();
                let boundary = line[..start].chars().next_back().is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
                let tail: String = line[from..].chars().take_while(|c| (rule.chars)(*c)).collect();
                if !boundary || tail.len() < rule.min || taken.iter().any(|(s, e)| start >= *s && start < *e) {
                    continue;
                }
                let end = from + tail.len();
                taken.push((start, end));
                out.push(finding(rule.name, path, i + 1, line[..start].chars().count() + 1, &line[start..end]));
            }
        }
        if let Some(off) = line.find("-----BEGIN ") {
            let rest = &line[off..];
            if rest.contains("PRIVATE KEY-----") && !rest.contains("ENCRYPTED PRIVATE KEY") {
                out.push(finding("private key", path, i + 1, off + 1, rest.trim_end()));
            }
        }
    }
    if path.ends_with(".yaml") || path.ends_with(".yml") || path.ends_with(".json") {
        if let Ok(docs) = schema::document::parse(text) {
            for d in &docs {
                env_values(path, d, false, &mut out);
            }
        }
    }
    out.sort_by_key(|f| (f.line, f.col));
    out.dedup_by(|a, b| a.line == b.line && a.col == b.col);
    out
}

/// High-entropy `value:` strings inside any `env:` list.
fn env_values(path: &str, node: &schema::document::Node, in_env: bool, out: &mut Vec<Finding>) {
    use schema::document::Value;
    match &node.value {
        Value::Map(entries) => {
            for e in entries {
                if in_env && e.key == "value" {
                    if let Value::Str(s) = &e.value.value {
                        if looks_random(s) && !out.iter().any(|f| f.line == e.value.pos.line as usize) {
                            out.push(finding("high-entropy env value", path, e.value.pos.line as usize, e.value.pos.col as usize, s));
                        }
                    }
                }
                env_values(path, &e.value, e.key == "env", out);
            }
        }
        Value::Seq(items) => items.iter().for_each(|n| env_values(path, n, in_env, out)),
        _ => {}
    }
}

/// The fingerprints of `.mcpctl/scan-allow.txt` (first word of each line; `#` comments).
pub fn allow_list(repo: &Path) -> HashSet<String> {
    std::fs::read_to_string(repo.join(ALLOW_FILE))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split('#').next()?.split_whitespace().next().map(str::to_string))
        .collect()
}

fn is_text(bytes: &[u8]) -> Option<&str> {
    if bytes.len() > 2 * 1024 * 1024 || bytes.contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// Scan the files of a directory (not `.git`, nor what git ignores when it is a repository).
///
/// # Errors
/// A directory that cannot be read.
pub fn scan_tree(repo: &Path) -> Result<Vec<Finding>, ScanError> {
    let git = git2::Repository::open(repo).ok();
    let mut out = Vec::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| ScanError::Read { path: dir.display().to_string(), message: e.to_string() })?;
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(repo).unwrap_or(&p).to_string_lossy().replace('\\', "/");
            if e.file_name() == ".git" || git.as_ref().is_some_and(|g| g.status_should_ignore(Path::new(&rel)).unwrap_or(false)) {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                let bytes = std::fs::read(&p).map_err(|err| ScanError::Read { path: p.display().to_string(), message: err.to_string() })?;
                if let Some(text) = is_text(&bytes) {
                    out.extend(scan_text(&rel, text));
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.path, a.line, a.col).cmp(&(&b.path, b.line, b.col)));
    Ok(out)
}

fn open(repo: &Path) -> Result<git2::Repository, ScanError> {
    git2::Repository::open(repo).map_err(|e| ScanError::NotGit { path: repo.display().to_string(), message: e.message().to_string() })
}

/// Scan every blob of every commit reachable from any branch or tag, each once; a finding names
/// the oldest commit that holds it at that path.
///
/// # Errors
/// Not a git repository, or an unreadable object.
pub fn scan_history(repo: &Path) -> Result<Vec<Finding>, ScanError> {
    let git = open(repo)?;
    let mut walk = git.revwalk()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
    for r in git.references()? {
        let r = r?;
        if let Some(oid) = r.peel_to_commit().ok().map(|c| c.id()) {
            walk.push(oid)?;
        }
    }
    let mut seen_blobs: HashSet<(git2::Oid, String)> = HashSet::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut out = Vec::new();
    for oid in walk {
        let commit = git.find_commit(oid?)?;
        let tree = commit.tree()?;
        let mut blobs = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(git2::ObjectType::Blob) {
                blobs.push((format!("{dir}{}", entry.name().unwrap_or("")), entry.id()));
            }
            git2::TreeWalkResult::Ok
        })?;
        for (path, id) in blobs {
            if !seen_blobs.insert((id, path.clone())) {
                continue;
            }
            let blob = git.find_blob(id)?;
            let Some(text) = is_text(blob.content()) else { continue };
            for mut f in scan_text(&path, text) {
                if seen.insert((f.fingerprint.clone(), path.clone())) {
                    f.commit = Some(commit.id().to_string());
                    out.push(f);
                }
            }
        }
    }
    Ok(out)
}

/// Scan what is staged: each file of the index whose content differs from `HEAD`.
///
/// # Errors
/// Not a git repository, or an unreadable object.
pub fn scan_staged(repo: &Path) -> Result<Vec<Finding>, ScanError> {
    let git = open(repo)?;
    let head = git.head().ok().and_then(|h| h.peel_to_tree().ok());
    let index = git.index()?;
    let diff = git.diff_tree_to_index(head.as_ref(), Some(&index), None)?;
    let mut out = Vec::new();
    for d in diff.deltas() {
        if d.status() == git2::Delta::Deleted {
            continue;
        }
        let file = d.new_file();
        let path = file.path().map(|p| p.to_string_lossy().replace('\\', "/")).unwrap_or_default();
        let blob = git.find_blob(file.id())?;
        if let Some(text) = is_text(blob.content()) {
            out.extend(scan_text(&path, text));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_provider_keys_tokens_and_private_keys_with_positions_never_values() {
        let text = "a: 1\nkey: sk-proj-abcdefghijklmnopqrstuvwxyz0123456789AB\n  token mcpctl_pat_abc123def456\n-----BEGIN OPENSSH PRIVATE KEY-----\naws=AKIAIOSFODNN7EXAMPLE\n";
        let f = scan_text("x.yaml", text);
        let got: Vec<(&str, usize, usize)> = f.iter().map(|f| (f.rule, f.line, f.col)).collect();
        assert_eq!(got, vec![("OpenAI API key", 2, 6), ("mcpctl token", 3, 9), ("private key", 4, 1), ("AWS access key id", 5, 5)]);
        for x in &f {
            assert!(!x.to_string().contains("abcdefghij") && !x.to_string().contains("abc123def"), "{x}");
        }
        assert_eq!(f[0].preview, "sk-p…");
    }

    #[test]
    fn ignores_ciphertext_short_prefixes_and_words_containing_prefixes() {
        let text = "ask-me: sk-short\nx: -----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBpUFc2dWhYcGZCaTlXMUU0\ntask-abcdefghijklmnopqrstuvwxyz0123456789\n";
        assert_eq!(scan_text("x.yaml", text), vec![]);
    }

    #[test]
    fn high_entropy_env_values_are_found_only_under_env() {
        let text = "spec:\n  env:\n    - name: TOKEN\n      value: q8ZfL2xR7vKp3WnY9tBc4MdH\n    - name: PATH_X\n      value: /usr/local/bin/something-long\n  other:\n    value: q8ZfL2xR7vKp3WnY9tBc4MdH\n";
        let f = scan_text("s.yaml", text);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].rule, f[0].line, f[0].col), ("high-entropy env value", 4, 14));
        assert!(!looks_random("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"));
    }
}
