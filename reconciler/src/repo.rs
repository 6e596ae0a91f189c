//! The git repository a reconciler follows: a local repo read in place, or a remote cloned (bare)
//! into a cache directory and fetched.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::source::SourceError;

/// Where the desired state comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoSource {
    /// A repository on this machine (worktree or bare), watched for changes.
    Local(PathBuf),
    /// A URL (`git://`, `http(s)://`, `ssh://`, `file://`), polled and pokable.
    Remote(String),
}

impl RepoSource {
    /// A URL-looking string is remote; anything else is a local path.
    pub fn parse(s: &str) -> RepoSource {
        if s.contains("://") || (s.contains('@') && s.contains(':')) {
            RepoSource::Remote(s.to_string())
        } else {
            RepoSource::Local(PathBuf::from(s))
        }
    }
}

/// An opened repository plus how to find the tip of the followed branch, and the folder inside
/// it that holds the desired state.
pub struct GitRepo {
    repo: git2::Repository,
    source: RepoSource,
    branch: String,
    /// `/`-separated directory inside the repo's tree (`""`: the whole tree).
    path: String,
}

/// `a/b` from `a` and `b`, either possibly empty, without stray slashes.
fn join_path(a: &str, b: &str) -> String {
    let parts: Vec<&str> = a.split('/').chain(b.split('/')).filter(|p| !p.is_empty() && *p != ".").collect();
    parts.join("/")
}

/// Open the repository that contains `dir` (searching upwards, as git does) and return it with
/// `dir`'s path inside its work tree: `-C examples/homelab` in a clone reads that folder.
fn discover(dir: &Path) -> Result<(git2::Repository, String), SourceError> {
    let repo = git2::Repository::discover(dir)?;
    let Some(workdir) = repo.workdir() else {
        // A bare repository has no folders on disk: the whole tree (or `--path`).
        return Ok((repo, String::new()));
    };
    let canon = |p: &Path| p.canonicalize().map_err(|source| SourceError::Io { path: p.to_path_buf(), source });
    let (dir_abs, work_abs) = (canon(dir)?, canon(workdir)?);
    let rel = dir_abs.strip_prefix(&work_abs).map_err(|_| SourceError::NotInWorkTree(dir.to_path_buf()))?;
    if rel.components().next().is_some_and(|c| c.as_os_str() == ".git") {
        return Ok((repo, String::new()));
    }
    let rel = rel.to_string_lossy().replace('\\', "/");
    Ok((repo, rel))
}

impl GitRepo {
    /// Open a local repository, or clone/open the cache of a remote one under `cache_dir`.
    ///
    /// # Errors
    /// When the repository cannot be opened or the cache cannot be created.
    pub fn open(source: &RepoSource, branch: &str, cache_dir: &Path) -> Result<GitRepo, SourceError> {
        GitRepo::open_at(source, branch, cache_dir, "")
    }

    /// [`GitRepo::open`], reading only directory `path` of each commit. A local source may be any
    /// folder inside a work tree: the repository is found upwards and the folder's place in it
    /// comes before `path` (`-C examples/homelab`; `--path` for URLs).
    ///
    /// # Errors
    /// As [`GitRepo::open`]; when a local folder is in no git repository.
    pub fn open_at(source: &RepoSource, branch: &str, cache_dir: &Path, path: &str) -> Result<GitRepo, SourceError> {
        let mut prefix = String::new();
        let repo = match source {
            RepoSource::Local(p) => {
                let (repo, rel) = discover(p)?;
                prefix = rel;
                repo
            }
            RepoSource::Remote(url) => {
                let dir = cache_dir.join(format!("{}.git", &hex::encode(Sha256::digest(url.as_bytes()))[..16]));
                match git2::Repository::open_bare(&dir) {
                    Ok(r) => r,
                    Err(_) => {
                        std::fs::create_dir_all(&dir).map_err(|source| SourceError::Io { path: dir.clone(), source })?;
                        let r = git2::Repository::init_bare(&dir)?;
                        r.remote("origin", url)?;
                        r
                    }
                }
            }
        };
        Ok(GitRepo { repo, source: source.clone(), branch: branch.to_string(), path: join_path(&prefix, path) })
    }

    /// The directory inside the repository's tree that holds the desired state (`""`: all).
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn repository(&self) -> &git2::Repository {
        &self.repo
    }

    pub fn source(&self) -> &RepoSource {
        &self.source
    }

    /// Fetch the followed branch from the remote (no-op for a local repository).
    ///
    /// # Errors
    /// When the remote is unreachable or refuses.
    pub fn fetch(&self) -> Result<(), SourceError> {
        if let RepoSource::Remote(_) = self.source {
            let mut remote = self.repo.find_remote("origin")?;
            let refspec = format!("+refs/heads/{b}:refs/remotes/origin/{b}", b = self.branch);
            let mut opts = git2::FetchOptions::new();
            opts.remote_callbacks(crate::credentials::callbacks());
            remote.fetch(&[&refspec], Some(&mut opts), None)?;
        }
        Ok(())
    }

    /// The reference naming the tip of the followed branch.
    pub fn tip_ref(&self) -> String {
        match self.source {
            RepoSource::Local(_) => format!("refs/heads/{}", self.branch),
            RepoSource::Remote(_) => format!("refs/remotes/origin/{}", self.branch),
        }
    }

    /// The sha at the tip of the followed branch.
    ///
    /// # Errors
    /// When the branch does not exist (yet).
    pub fn tip(&self) -> Result<String, SourceError> {
        let r = self.tip_ref();
        let oid = self.repo.refname_to_id(&r).map_err(|_| SourceError::NoSuchRevision(r))?;
        Ok(oid.to_string())
    }

    /// The directory to watch for ref and object changes (local repositories).
    pub fn git_dir(&self) -> &Path {
        self.repo.path()
    }
}
