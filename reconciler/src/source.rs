//! Where a repo's files come from: a directory on disk or a git tree read straight from objects.
//! Both produce the same [`SourceFile`] list for `schema::check`.
//!
//! # Guarantees
//! Both sources treat files alike: a resource file larger than [`MAX_FILE_BYTES`] (by its
//! metadata or git object header, checked before a byte of content is read), one that would take
//! the repo past [`schema::load::MAX_REPO_BYTES`] (files taken in path order), a symbolic link
//! named like a resource file or leaving the repo, or (directories only) a FIFO, socket or device
//! named like a resource file, is handed
//! over as a [`Refusal`], which validation reports as an error at `path:1:1`. Nothing is silently
//! skipped that could declare resources, so `plan` never deletes what a skipped file declares.
//! Directories deeper than [`MAX_PATH_DEPTH`] are refused and not entered; past
//! [`MAX_REPO_ENTRIES`] files and directories the whole repo is refused, nothing read. Both walk
//! with an explicit stack, never recursing per directory level.

use std::io::Read;
use std::path::{Path, PathBuf};

use schema::load::{link_leaves_repo, RepoBudget, MAX_FILE_BYTES, MAX_PATH_DEPTH, MAX_REPO_ENTRIES};
use schema::{is_resource_path, Refusal, SourceFile};

/// Git's file mode of a symbolic link.
const GIT_FILEMODE_LINK: i32 = 0o120000;

/// Longest link target read from git (Linux's `PATH_MAX`); a longer one is refused unread.
const MAX_LINK_TARGET_BYTES: usize = 4096;

/// Error reading a repo.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    #[error("git: `{0}` does not name a commit")]
    NoSuchRevision(String),
    #[error("commit {sha}: no directory `{path}` (the path the repo is read from)")]
    NoSuchPath { sha: String, path: String },
    #[error("{0} is not inside a git work tree")]
    NotInWorkTree(PathBuf),
}

/// Every resource file under `root` (recursively; dot-directories and dot-files skipped),
/// sorted by path so runs are deterministic. Files and directories past a limit come back as
/// [`Refusal`]s (see the module's guarantees), never read.
///
/// # Errors
/// When `root` or a file under it cannot be read.
pub fn read_dir(root: &Path) -> Result<Vec<SourceFile>, SourceError> {
    if !root.is_dir() {
        return Err(SourceError::NotADirectory(root.to_path_buf()));
    }
    let mut found = Vec::new();
    if !walk(root, &mut found)? {
        return Ok(vec![SourceFile::refused(".", Refusal::TooManyEntries)]);
    }
    // Path order first, so the repo budget refuses the same files in both sources.
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let mut budget = RepoBudget::default();
    let mut files = Vec::with_capacity(found.len());
    for (rel, path, refused) in found {
        files.push(match refused {
            Some(why) => SourceFile::refused(rel, why),
            None => read_file(&path, rel, &mut budget).map_err(|source| SourceError::Io { path, source })?,
        });
    }
    Ok(files)
}

/// Every resource file under `root` (repo-relative path, path, and a refusal unless it is a
/// regular file), and every directory too deep to enter. `false` when the repo has more than
/// [`MAX_REPO_ENTRIES`] entries.
fn walk(root: &Path, out: &mut Vec<(String, PathBuf, Option<Refusal>)>) -> Result<bool, SourceError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SourceError::Io { path, source }
    };
    let rel_of = |path: &Path| path.strip_prefix(root).unwrap_or(path).to_string_lossy().replace('\\', "/");
    let mut entries = 0usize;
    let mut dirs = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            entries += 1;
            if entries > MAX_REPO_ENTRIES {
                return Ok(false);
            }
            // `file_type` does not follow links: a link is seen as a link.
            let ft = entry.file_type().map_err(io(&path))?;
            if ft.is_dir() {
                if depth + 1 > MAX_PATH_DEPTH {
                    out.push((format!("{}/", rel_of(&path)), path, Some(Refusal::TooDeep)));
                } else {
                    dirs.push((path, depth + 1));
                }
                continue;
            }
            let rel = rel_of(&path);
            if !is_resource_path(&rel) {
                if ft.is_symlink() {
                    let target = std::fs::read_link(&path).map_err(io(&path))?;
                    if link_leaves_repo(&rel, target.as_os_str().as_encoded_bytes()) {
                        out.push((rel, path, Some(Refusal::SymlinkOutside)));
                    }
                }
                continue;
            }
            let refused = if ft.is_symlink() {
                Some(Refusal::Symlink)
            } else if ft.is_file() {
                None
            } else {
                Some(Refusal::NotRegular)
            };
            out.push((rel, path, refused));
        }
    }
    Ok(true)
}

/// Read a regular file, refusing it by the size its metadata gives before reading (against the
/// file limit and the repo's budget), and reading at most one byte past the file limit in case
/// it grows meanwhile.
fn read_file(path: &Path, rel: String, budget: &mut RepoBudget) -> std::io::Result<SourceFile> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > MAX_FILE_BYTES as u64 {
        return Ok(SourceFile::refused(rel, Refusal::TooLarge { bytes: len }));
    }
    if let Err(why) = budget.read(len) {
        return Ok(SourceFile::refused(rel, why));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > MAX_FILE_BYTES {
        return Ok(SourceFile::refused(rel, Refusal::TooLarge { bytes: bytes.len() as u64 }));
    }
    // Grown since its metadata was read: the growth counts too.
    if budget.read((bytes.len() as u64).saturating_sub(len)).is_err() {
        return Ok(SourceFile::refused(rel, Refusal::RepoTooLarge { bytes: bytes.len() as u64 }));
    }
    Ok(SourceFile::new(rel, bytes))
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
    read_git_tree_at(repo, rev, "")
}

/// [`read_git_tree`] of the directory `path` inside the commit's tree (`""` is the root): paths
/// come back relative to it, and nothing outside it is read, so a folder of a monorepo is a repo.
///
/// # Errors
/// As [`read_git_tree`]; [`SourceError::NoSuchPath`] when the commit has no directory `path`.
pub fn read_git_tree_at(repo: &git2::Repository, rev: &str, path: &str) -> Result<(Vec<SourceFile>, CommitInfo), SourceError> {
    let commit = repo.revparse_single(rev).and_then(|o| o.peel_to_commit()).map_err(|_| SourceError::NoSuchRevision(rev.to_string()))?;
    let tree = subtree(repo, &commit, path)?;
    let files = tree_files(repo, tree)?;
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

/// The tree of directory `path` in `commit` (`""` is the root).
///
/// # Errors
/// [`SourceError::NoSuchPath`] when the commit has no directory there.
pub fn subtree<'r>(repo: &'r git2::Repository, commit: &git2::Commit<'r>, path: &str) -> Result<git2::Tree<'r>, SourceError> {
    let root = commit.tree()?;
    let path = path.trim_matches('/');
    if path.is_empty() {
        return Ok(root);
    }
    let missing = || SourceError::NoSuchPath { sha: commit.id().to_string(), path: path.to_string() };
    let entry = root.get_path(Path::new(path)).map_err(|_| missing())?;
    match entry.kind() {
        Some(git2::ObjectType::Tree) => Ok(repo.find_tree(entry.id())?),
        _ => Err(missing()),
    }
}

/// The id of directory `path` in commit `sha`, or `None` when it has none: two commits with the
/// same id there declare the same resources.
///
/// # Errors
/// When `sha` is not a commit.
pub fn subtree_id(repo: &git2::Repository, sha: &str, path: &str) -> Result<Option<git2::Oid>, SourceError> {
    let commit = git2::Oid::from_str(sha).and_then(|o| repo.find_commit(o)).map_err(|_| SourceError::NoSuchRevision(sha.to_string()))?;
    match subtree(repo, &commit, path) {
        Ok(t) => Ok(Some(t.id())),
        Err(SourceError::NoSuchPath { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every resource file of `tree`, sorted by path. Walks with an explicit stack (libgit2's own
/// tree walk recurses once per directory level) and reads each blob's size from its object
/// header before its content.
fn tree_files(repo: &git2::Repository, tree: git2::Tree<'_>) -> Result<Vec<SourceFile>, SourceError> {
    let mut found = Vec::new();
    let mut too_deep = Vec::new();
    let mut links = Vec::new();
    let mut entries = 0usize;
    let mut trees = vec![(String::new(), tree, 0usize)];
    while let Some((dir, tree, depth)) = trees.pop() {
        for entry in tree.iter() {
            let name = String::from_utf8_lossy(entry.name_bytes());
            if name.starts_with('.') {
                continue;
            }
            entries += 1;
            if entries > MAX_REPO_ENTRIES {
                return Ok(vec![SourceFile::refused(".", Refusal::TooManyEntries)]);
            }
            let path = format!("{dir}{name}");
            match entry.kind() {
                Some(git2::ObjectType::Tree) if depth + 1 > MAX_PATH_DEPTH => too_deep.push(format!("{path}/")),
                Some(git2::ObjectType::Tree) => trees.push((format!("{path}/"), repo.find_tree(entry.id())?, depth + 1)),
                Some(git2::ObjectType::Blob) if is_resource_path(&path) => found.push((path, entry.id(), entry.filemode())),
                Some(git2::ObjectType::Blob) if entry.filemode() == GIT_FILEMODE_LINK => links.push((path, entry.id())),
                // Other blobs, and submodules (commits).
                _ => {}
            }
        }
    }
    // Path order first, so the repo budget refuses the same files in both sources.
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let odb = repo.odb()?;
    let mut budget = RepoBudget::default();
    let mut files = Vec::with_capacity(found.len());
    for (path, id, mode) in found {
        if mode == GIT_FILEMODE_LINK {
            files.push(SourceFile::refused(path, Refusal::Symlink));
            continue;
        }
        let (size, _) = odb.read_header(id)?;
        if size > MAX_FILE_BYTES {
            files.push(SourceFile::refused(path, Refusal::TooLarge { bytes: size as u64 }));
            continue;
        }
        if let Err(why) = budget.read(size as u64) {
            files.push(SourceFile::refused(path, why));
            continue;
        }
        files.push(SourceFile::new(path, repo.find_blob(id)?.content()).with_id(id.to_string()));
    }
    files.extend(too_deep.into_iter().map(|dir| SourceFile::refused(dir, Refusal::TooDeep)));
    for (path, id) in links {
        // A link's blob is its target; one longer than any path is refused unread.
        let (size, _) = odb.read_header(id)?;
        if size > MAX_LINK_TARGET_BYTES || link_leaves_repo(&path, repo.find_blob(id)?.content()) {
            files.push(SourceFile::refused(path, Refusal::SymlinkOutside));
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}
