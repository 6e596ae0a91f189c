//! Writing to the repo from the CLI: commit the worktree, push, and roll back by committing an old
//! tree on top (history is never rewritten).

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

/// Stage every change in the worktree (adds, edits, deletions) and commit it.
///
/// # Errors
/// [`PublishError::NothingToCommit`] when nothing changed; git failures.
pub fn commit_all(dir: &Path, message: &str) -> Result<String, PublishError> {
    let repo = git2::Repository::open(dir)?;
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    index.update_all(["*"], None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    commit_tree(&repo, &tree, message)
}

/// Make a new commit on HEAD whose tree is that of `sha`, and update the worktree to it.
///
/// # Errors
/// When `sha` is unknown or the tree is already HEAD's.
pub fn rollback(dir: &Path, sha: &str) -> Result<String, PublishError> {
    let repo = git2::Repository::open(dir)?;
    let target = repo.revparse_single(sha).and_then(|o| o.peel_to_commit()).map_err(|_| PublishError::NoSuchCommit(sha.to_string()))?;
    let tree = target.tree()?;
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
            Err(e) if e.code() == git2::ErrorCode::NotFastForward || e.message().contains("fast-forward") || e.message().contains("fast forward") => {
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
