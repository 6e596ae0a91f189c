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

/// An opened repository plus how to find the tip of the followed branch.
pub struct GitRepo {
    repo: git2::Repository,
    source: RepoSource,
    branch: String,
}

impl GitRepo {
    /// Open a local repository, or clone/open the cache of a remote one under `cache_dir`.
    ///
    /// # Errors
    /// When the repository cannot be opened or the cache cannot be created.
    pub fn open(source: &RepoSource, branch: &str, cache_dir: &Path) -> Result<GitRepo, SourceError> {
        let repo = match source {
            RepoSource::Local(p) => git2::Repository::open(p)?,
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
        Ok(GitRepo { repo, source: source.clone(), branch: branch.to_string() })
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
