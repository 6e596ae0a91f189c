//! Where a repo's files come from: a directory on disk or a git tree read straight from objects.
//! Both produce the same [`SourceFile`] list for `schema::check`.

use std::path::{Path, PathBuf};

use schema::{is_resource_path, SourceFile};

/// Error reading a repo.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, #[source] source: std::io::Error },
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("git: `{0}` does not name a commit")]
    NoSuchRevision(String),
}

/// Every resource file under `root` (recursively; dot-directories and dot-files skipped),
/// sorted by path so runs are deterministic.
///
/// # Errors
/// When `root` or a file under it cannot be read.
pub fn read_dir(root: &Path) -> Result<Vec<SourceFile>, SourceError> {
    if !root.is_dir() {
        return Err(SourceError::NotADirectory(root.to_path_buf()));
    }
    let mut files = Vec::new();
    walk(root, root, &mut files)?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<SourceFile>) -> Result<(), SourceError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SourceError::Io { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let ft = entry.file_type().map_err(io(&path))?;
        if ft.is_dir() {
            walk(root, &path, out)?;
        } else if ft.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            if is_resource_path(&rel) {
                let bytes = std::fs::read(&path).map_err(io(&path))?;
                out.push(SourceFile::new(rel, bytes));
            }
        }
    }
    Ok(())
}

/// Facts about the commit a tree was read from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommitInfo {
    pub sha: String,
    pub author: String,
    pub committer: String,
    pub message: String,
    /// Commit time, RFC 3339.
    pub time: String,
}

/// Every resource file in the tree of `rev` (a sha, branch or `HEAD`), read from git objects
/// without a worktree.
///
/// # Errors
/// When `rev` does not resolve to a commit or an object cannot be read.
pub fn read_git_tree(repo: &git2::Repository, rev: &str) -> Result<(Vec<SourceFile>, CommitInfo), SourceError> {
    let commit = repo
        .revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|_| SourceError::NoSuchRevision(rev.to_string()))?;
    let tree = commit.tree()?;
    let mut files = Vec::new();
    let mut failure = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        let name = entry.name().unwrap_or("");
        if name.starts_with('.') {
            return git2::TreeWalkResult::Skip;
        }
        let path = format!("{dir}{name}");
        if entry.kind() == Some(git2::ObjectType::Blob) && is_resource_path(&path) {
            match repo.find_blob(entry.id()) {
                Ok(blob) => files.push(SourceFile::new(path, blob.content())),
                Err(e) => {
                    failure = Some(e);
                    return git2::TreeWalkResult::Abort;
                }
            }
        }
        git2::TreeWalkResult::Ok
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let sig = |s: git2::Signature<'_>| format!("{} <{}>", s.name().unwrap_or(""), s.email().unwrap_or(""));
    let time = chrono::DateTime::from_timestamp(commit.time().seconds(), 0).unwrap_or_default().to_rfc3339();
    let info = CommitInfo {
        sha: commit.id().to_string(),
        author: sig(commit.author()),
        committer: sig(commit.committer()),
        message: commit.message().unwrap_or("").trim().to_string(),
        time,
    };
    Ok((files, info))
}
