//! Writing to the repo from the CLI: commit the worktree, push, and roll back by committing an old
//! tree on top (history is never rewritten).
//!
//! # Guarantees
//! [`commit_all`] stages only resource files (`.yaml`, `.yml`, `.json` outside dot-directories)
//! and changes to files git already tracks, and never a file whose content holds a private key
//! (`AGE-SECRET-KEY-`, `-----BEGIN … PRIVATE KEY`); what it leaves out is returned so the caller
//! can say so. [`rollback`] refuses to run over uncommitted changes it would discard unless forced.

use std::path::Path;

/// Error committing or pushing.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("nothing to commit: the worktree matches HEAD")]
    NothingToCommit,
    #[error("`{0}` does not name a commit")]
    NoSuchCommit(String),
    #[error("the remote has commits you do not have (non-fast-forward); run `git pull --rebase`, check `mcpctl plan`, then push again")]
    NonFastForward,
    #[error("the remote refused the push of {refname}: {message}")]
    Rejected { refname: String, message: String },
    #[error("HEAD is not on a branch")]
    DetachedHead,
    #[error("the work tree has uncommitted changes that rollback would discard: {}; commit or stash them, or pass --force", .0.join(", "))]
    Dirty(Vec<String>),
    #[error("staged file(s) hold a private key and must not be committed: {}; unstage them (`git restore --staged <file>`)", .0.join(", "))]
    StagedSecret(Vec<String>),
    #[error("the repository has no work tree")]
    Bare,
}

/// Why [`commit_all`] did not stage a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeftOutReason {
    /// Untracked and not a resource file.
    NotAResourceFile,
    /// The content holds a private key.
    PrivateKey,
}

impl std::fmt::Display for LeftOutReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LeftOutReason::NotAResourceFile => "not a resource file (.yaml, .yml, .json)",
            LeftOutReason::PrivateKey => "holds a private key (AGE-SECRET-KEY- or a PRIVATE KEY header)",
        })
    }
}

/// What [`commit_all`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The new commit, or `None` when nothing was left to commit.
    pub sha: Option<String>,
    /// Changed files not staged, with why, sorted by path.
    pub left_out: Vec<(String, LeftOutReason)>,
}

/// A path `push` may add when untracked: a resource file outside dot-directories.
fn is_stageable_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    (lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")) && !path.split('/').any(|p| p.starts_with('.'))
}

/// Whether `bytes` hold a private key: an age identity (`AGE-SECRET-KEY-…`) or a PEM, OpenSSH or
/// PGP private key header (`-----BEGIN [… ]PRIVATE KEY[ BLOCK]-----`), anywhere in the file (also
/// inside a YAML comment or string).
pub fn holds_private_key(bytes: &[u8]) -> bool {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    if find(bytes, b"AGE-SECRET-KEY-").is_some() {
        return true;
    }
    let mut rest = bytes;
    while let Some(at) = find(rest, BEGIN) {
        let label = &rest[at + BEGIN.len()..];
        if let Some(end) = find(label, b"-----") {
            let label = &label[..end];
            if label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK") {
                return true;
            }
        }
        rest = &rest[at + BEGIN.len()..];
    }
    false
}

fn signature(repo: &git2::Repository) -> Result<git2::Signature<'static>, git2::Error> {
    repo.signature().or_else(|_| git2::Signature::now("mcpctl", "mcpctl@localhost"))
}

/// The branch HEAD is on.
///
/// # Errors
/// When HEAD is detached or unborn.
pub fn current_branch(repo: &git2::Repository) -> Result<String, PublishError> {
    let head = repo.head()?;
    if !head.is_branch() {
        return Err(PublishError::DetachedHead);
    }
    Ok(head.shorthand().unwrap_or("main").to_string())
}

fn commit_tree(repo: &git2::Repository, tree: &git2::Tree<'_>, message: &str) -> Result<String, PublishError> {
    let sig = signature(repo)?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    if let Some(p) = &parent {
        if p.tree_id() == tree.id() {
            return Err(PublishError::NothingToCommit);
        }
    }
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let oid = repo.commit(Some("HEAD"), &sig, &sig, message, tree, &parents)?;
    Ok(oid.to_string())
}

/// Stage the changes `push` may publish and commit them: untracked resource files, edits and
/// deletions of tracked files; never a file holding a private key.
///
/// # Errors
/// [`PublishError::StagedSecret`] when a file already staged (by `git add`) holds a private key;
/// git failures. Nothing to commit is not an error: `sha` is `None`.
pub fn commit_all(dir: &Path, message: &str) -> Result<Committed, PublishError> {
    let repo = git2::Repository::open(dir)?;
    let workdir = repo.workdir().ok_or(PublishError::Bare)?.to_path_buf();
    let mut index = repo.index()?;
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false);
    let mut left_out = Vec::new();
    let mut staged_secrets = Vec::new();
    for e in repo.statuses(Some(&mut opts))?.iter() {
        let Some(path) = e.path().map(str::to_string) else { continue };
        let st = e.status();
        if st.intersects(
            git2::Status::INDEX_NEW | git2::Status::INDEX_MODIFIED | git2::Status::INDEX_TYPECHANGE | git2::Status::INDEX_RENAMED,
        ) {
            let staged = index.get_path(Path::new(&path), 0).and_then(|entry| repo.find_blob(entry.id).ok());
            if staged.is_some_and(|b| holds_private_key(b.content())) {
                staged_secrets.push(path.clone());
            }
        }
        if st.contains(git2::Status::WT_DELETED) {
            index.remove_path(Path::new(&path))?;
        } else if st.intersects(git2::Status::WT_NEW | git2::Status::WT_MODIFIED | git2::Status::WT_TYPECHANGE) {
            if st.contains(git2::Status::WT_NEW) && !is_stageable_path(&path) {
                left_out.push((path, LeftOutReason::NotAResourceFile));
                continue;
            }
            let content = std::fs::read(workdir.join(&path)).unwrap_or_default();
            if holds_private_key(&content) {
                left_out.push((path, LeftOutReason::PrivateKey));
                continue;
            }
            index.add_path(Path::new(&path))?;
        }
    }
    if !staged_secrets.is_empty() {
        return Err(PublishError::StagedSecret(staged_secrets));
    }
    left_out.sort();
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let sha = match commit_tree(&repo, &tree, message) {
        Ok(sha) => Some(sha),
        Err(PublishError::NothingToCommit) => None,
        Err(e) => return Err(e),
    };
    Ok(Committed { sha, left_out })
}

/// Files rollback's checkout would overwrite: changes to tracked files (staged or not), and
/// untracked files at a path the restored tree has.
fn would_discard(repo: &git2::Repository, target: &git2::Tree<'_>) -> Result<Vec<String>, PublishError> {
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true).recurse_untracked_dirs(true).include_ignored(false);
    let tracked = git2::Status::INDEX_NEW
        | git2::Status::INDEX_MODIFIED
        | git2::Status::INDEX_DELETED
        | git2::Status::INDEX_RENAMED
        | git2::Status::INDEX_TYPECHANGE
        | git2::Status::WT_MODIFIED
        | git2::Status::WT_DELETED
        | git2::Status::WT_TYPECHANGE
        | git2::Status::WT_RENAMED
        | git2::Status::CONFLICTED;
    let mut files = Vec::new();
    for e in repo.statuses(Some(&mut opts))?.iter() {
        let Some(path) = e.path() else { continue };
        let st = e.status();
        if st.intersects(tracked) || (st.contains(git2::Status::WT_NEW) && target.get_path(Path::new(path)).is_ok()) {
            files.push(path.to_string());
        }
    }
    files.sort();
    Ok(files)
}

/// Make a new commit on HEAD whose tree is that of `sha`, and update the worktree to it.
///
/// # Errors
/// When `sha` is unknown, the tree is already HEAD's, or (unless `force`) the work tree has
/// changes the checkout would discard ([`PublishError::Dirty`], listing them).
pub fn rollback(dir: &Path, sha: &str, force: bool) -> Result<String, PublishError> {
    let repo = git2::Repository::open(dir)?;
    let target = repo.revparse_single(sha).and_then(|o| o.peel_to_commit()).map_err(|_| PublishError::NoSuchCommit(sha.to_string()))?;
    let tree = target.tree()?;
    if !force {
        let dirty = would_discard(&repo, &tree)?;
        if !dirty.is_empty() {
            return Err(PublishError::Dirty(dirty));
        }
    }
    let short = &target.id().to_string()[..12];
    let summary = target.summary().unwrap_or("").to_string();
    let new = commit_tree(&repo, &tree, &format!("Roll back to {short}\n\nRestores the tree of {short} ({summary})."))?;
    repo.checkout_head(Some(git2::build::CheckoutBuilder::new().force()))?;
    Ok(new)
}

/// Push the current branch to `origin`.
///
/// # Errors
/// [`PublishError::NonFastForward`] when the remote moved; other refusals and transport errors.
pub fn push(dir: &Path) -> Result<String, PublishError> {
    let repo = git2::Repository::open(dir)?;
    let branch = current_branch(&repo)?;
    let mut remote = repo.find_remote("origin")?;
    let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
    let mut rejected: Option<(String, String)> = None;
    {
        let mut cb = crate::credentials::callbacks();
        cb.push_update_reference(|refname, status| {
            if let Some(msg) = status {
                rejected = Some((refname.to_string(), msg.to_string()));
            }
            Ok(())
        });
        let mut opts = git2::PushOptions::new();
        opts.remote_callbacks(cb);
        match remote.push(&[&refspec], Some(&mut opts)) {
            Ok(()) => {}
            Err(e)
                if e.code() == git2::ErrorCode::NotFastForward
                    || e.message().contains("fast-forward")
                    || e.message().contains("fast forward") =>
            {
                return Err(PublishError::NonFastForward)
            }
            Err(e) => return Err(e.into()),
        }
    }
    match rejected {
        Some((_, m)) if m.contains("fast") || m.contains("fetch first") => Err(PublishError::NonFastForward),
        Some((refname, message)) => Err(PublishError::Rejected { refname, message }),
        None => Ok(branch),
    }
}

#[cfg(test)]
mod tests {
    use super::{holds_private_key, is_stageable_path};

    #[test]
    fn private_keys_are_recognised_and_age_ciphertext_is_not() {
        for key in [
            "AGE-SECRET-KEY-1QQQQ",
            "# key: AGE-SECRET-KEY-1QQQQ",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n",
            "x: |\n  -----BEGIN RSA PRIVATE KEY-----\n",
            "-----BEGIN PRIVATE KEY-----",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----",
            "-----BEGIN PGP PRIVATE KEY BLOCK-----",
        ] {
            assert!(holds_private_key(key.as_bytes()), "{key}");
        }
        for fine in [
            "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----",
            "-----BEGIN PUBLIC KEY-----",
            "systemPrompt: never print a PRIVATE KEY\n-----BEGIN CERTIFICATE-----",
            "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
        ] {
            assert!(!holds_private_key(fine.as_bytes()), "{fine}");
        }
    }

    #[test]
    fn only_resource_files_outside_dot_directories_are_stageable() {
        for ok in ["servers/time.yaml", "a.yml", "plan.JSON", "projects/p/agents/x.yaml"] {
            assert!(is_stageable_path(ok), "{ok}");
        }
        for no in ["key.txt", "README.md", ".mcpctl/identity.yaml", "x/.hidden.yaml", "id_ed25519"] {
            assert!(!is_stageable_path(no), "{no}");
        }
    }
}
