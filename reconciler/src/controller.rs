//! The reconcile loop: a new commit on the followed branch is a deploy.
//!
//! Shaped like kube-runtime's controller: [`Reconciler::reconcile`] is the one reconcile
//! function; it returns an [`Outcome`], and [`error_policy`] decides how long to wait after a
//! failure. Triggers: changes under a local repository's git dir (`notify`), a poll interval
//! (remotes are fetched then), and pokes through a [`Handle`] (the git webhook).
//!
//! # Guarantees
//! A commit is applied in one transaction or not at all. An invalid commit is recorded as a
//! `failed` deploy with its errors, the store stays at the last good commit, and that commit is not
//! tried again until the branch moves. Every interval the store is compared with the last good
//! commit; drift is recorded and, with self-heal on, reverted.
//!
//! A commit is refused (recorded as `failed`, last good state kept) when, in this order:
//! - a signed-commit policy is set and the commit's signature is not accepted (checked before any
//!   blob of the commit is read);
//! - a signed-commit policy is set and the commit does not descend from the last good deploy (a
//!   force-push back to an older signed commit would otherwise undo later commits, e.g. a token
//!   revocation; `mcpctl rollback` makes a new commit on top, so it is not affected);
//! - it is invalid, or (with [`Reconciler::with_decrypt_check`]) a Secret value cannot be
//!   decrypted with the installation's identity (each such secret and key is named);
//! - its desired state is empty while the store is not, unless [`Settings::allow_empty`] (a commit
//!   that deletes every file would otherwise delete every resource, tokens included).
//!
//! On Postgres, only the holder of the leader lock ([`crate::leader`]) reconciles: the others
//! are standbys that try for the lock every second. A reconciler that takes the lock re-reads
//! the deploy history first, so it goes on from the last deploy recorded by any leader, and its
//! writes are fenced (they commit only while it holds the lock). Losing the lock stops its
//! servers and makes it a standby again.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, info_span, warn, Instrument};

use schema::DesiredState;

use crate::leader::{LeaderError, LeaderLock, Role};
use crate::plan::{plan, Summary};
use crate::repo::{GitRepo, RepoSource};
use crate::source::{read_git_tree_at, subtree_id, CommitInfo, SourceError};
use crate::store::{DeployMeta, Store, StoreError};

/// Error of one reconcile attempt (the loop keeps going).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("reading the repository: {0}")]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("watching {path}: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error(transparent)]
    Leader(#[from] LeaderError),
    /// Another reconciler holds the leader lock of this Postgres database.
    #[error("this reconciler is a standby: another one holds the leader lock of the database")]
    Standby,
}

/// What one reconcile did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new commit was applied (possibly with no changes).
    Deployed { sha: String, summary: Summary },
    /// A new commit failed validation; recorded, nothing changed.
    Invalid { sha: String, errors: String },
    /// Nothing new; the store matches the last good commit.
    UpToDate { sha: Option<String> },
    /// The store had drifted from the last good commit.
    Drift { sha: String, summary: Summary, reverted: bool },
}

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub source: RepoSource,
    pub branch: String,
    /// Where remote repositories are cloned.
    pub cache_dir: PathBuf,
    /// Poll and drift-check interval.
    pub interval: Duration,
    /// Revert out-of-band changes (default on).
    pub self_heal: bool,
    /// When set, only commits SSH-signed by one of these keys, descending from the last good
    /// deploy, are deployed.
    pub allowed_signers: Option<crate::signature::AllowedSigners>,
    /// Deploy a commit with no resources even when the store has some (default off: refused).
    pub allow_empty: bool,
}

/// Pokes the loop from outside (webhook route, tests).
#[derive(Debug, Clone)]
pub struct Handle {
    tx: mpsc::Sender<()>,
}

impl Handle {
    /// Ask for a reconcile now. Never blocks; pokes coalesce.
    pub fn poke(&self) {
        let _ = self.tx.try_send(());
    }
}

/// How long the loop lets a burst of writes under the git dir settle after the first event.
/// Why 5 ms: `git commit` writes its objects and then the ref within a few milliseconds; waiting
/// longer only adds latency, since any later write is an event of its own.
const FS_SETTLE: Duration = Duration::from_millis(5);

/// Backoff after a failed reconcile: 1 s, 2 s, 4 s … capped at the interval.
pub fn error_policy(failures: u32, interval: Duration) -> Duration {
    Duration::from_secs(1u64 << failures.min(10)).min(interval)
}

/// The reconciler state between runs.
pub struct Reconciler {
    store: Store,
    repo: GitRepo,
    settings: Settings,
    last_attempted: Option<String>,
    last_good: Option<(String, DesiredState)>,
    runtimes: Vec<crate::runtime::Runtime>,
    /// Fetches values of Secrets not kept in git before the runtimes start servers.
    secrets: Option<crate::secrets::SecretResolver>,
    /// The commit whose secrets were all fetched last.
    fetched_for: Option<String>,
    listeners: Vec<Box<dyn Fn() + Send + Sync>>,
    identities: Option<crate::recipients::Identities>,
    /// Decoded files of the last commit read, by path and blob id: a commit that changes one
    /// file parses one file. Emptied at every periodic drift check, so nothing rests on it for
    /// longer than one interval (it is exact by construction; see [`schema::FileCache`]).
    cache: schema::FileCache,
    /// When the cache was last emptied.
    cache_since: std::time::Instant,
    /// What the store holds after this reconciler's last write or read of it (see `deploy`).
    applied: Option<Vec<crate::plan::StoredResource>>,
    /// The leader lock (Postgres only).
    leader: Option<LeaderLock>,
    /// The lock connection whose takeover the deploy history was re-read for.
    resumed_for: Option<i32>,
    role: tokio::sync::watch::Sender<Role>,
    /// Whether this standby spell was logged.
    standby_logged: bool,
}

impl Reconciler {
    /// Open the repository and pick up where the deploy history left off.
    ///
    /// # Errors
    /// When the repository cannot be opened or the store read.
    pub async fn new(store: Store, settings: Settings) -> Result<Reconciler, ReconcileError> {
        Reconciler::new_at(store, settings, "").await
    }

    /// [`Reconciler::new`] following only directory `path` of the repository (after the folder
    /// a local source names inside its work tree; see [`GitRepo::open_at`]). Commits that leave
    /// that directory's tree as it is are recorded as `unchanged` without reading a blob.
    ///
    /// # Errors
    /// As [`Reconciler::new`].
    pub async fn new_at(store: Store, settings: Settings, path: &str) -> Result<Reconciler, ReconcileError> {
        let repo = GitRepo::open_at(&settings.source, &settings.branch, &settings.cache_dir, path)?;
        let leader = match store.backend() {
            crate::Backend::Postgres => Some(LeaderLock::new(store.url())?),
            crate::Backend::Sqlite => None,
        };
        let role = if leader.is_some() { Role::Standby } else { Role::Single };
        let mut r = Reconciler {
            store,
            repo,
            settings,
            last_attempted: None,
            last_good: None,
            runtimes: Vec::new(),
            secrets: None,
            fetched_for: None,
            listeners: Vec::new(),
            identities: None,
            cache: schema::FileCache::default(),
            cache_since: std::time::Instant::now(),
            applied: None,
            leader,
            resumed_for: None,
            role: tokio::sync::watch::Sender::new(role),
            standby_logged: false,
        };
        r.resume().await?;
        Ok(r)
    }

    /// Pick up where the deploy history left off: the newest attempt, and the desired state in
    /// force (re-read from git for drift checks). Nothing this reconciler remembered of the
    /// store is kept.
    async fn resume(&mut self) -> Result<(), ReconcileError> {
        self.last_attempted = self.store.deploys(1).await?.into_iter().next().map(|d| d.revision);
        self.last_good = None;
        self.applied = None;
        self.fetched_for = None;
        if let Some(d) = self.store.last_good_deploy().await? {
            if let Ok((files, _)) = read_git_tree_at(self.repo.repository(), &d.revision, self.repo.path()) {
                if let Ok(state) = schema::check_cached(&files, &mut self.cache) {
                    self.last_good = Some((d.revision, state));
                }
            }
        }
        Ok(())
    }

    /// This reconciler's role, as it changes (`single` on SQLite).
    pub fn role(&self) -> tokio::sync::watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// Make sure this reconciler may write: always on SQLite; on Postgres while it holds the
    /// leader lock (taken when free; the deploy history is re-read once it is taken).
    ///
    /// # Errors
    /// [`ReconcileError::Standby`] when another reconciler holds the lock;
    /// [`ReconcileError::Leader`] when the lock's connection fails (the lock is not held then).
    async fn ensure_leader(&mut self) -> Result<(), ReconcileError> {
        let Some(lock) = self.leader.as_mut() else { return Ok(()) };
        let held = match lock.ensure().await {
            Ok(held) => held,
            Err(e) => {
                self.step_down().await;
                return Err(e.into());
            }
        };
        let pid = lock.held_by();
        if !held {
            self.step_down().await;
            return Err(ReconcileError::Standby);
        }
        if self.resumed_for != pid {
            self.store = self.store.fenced(pid);
            self.resume().await?;
            self.resumed_for = pid;
            self.standby_logged = false;
            self.role.send_replace(Role::Leader);
            warn!(last = ?self.last_attempted, "leader: took the leader lock; going on from the last recorded deploy");
        }
        Ok(())
    }

    /// Not (or no longer) the leader: stop this process's servers and say so once.
    async fn step_down(&mut self) {
        self.resumed_for = None;
        if *self.role.borrow() == Role::Leader {
            warn!("lost the leader lock; stopping this process's servers");
            for rt in &mut self.runtimes {
                rt.shutdown().await;
            }
        }
        self.role.send_replace(Role::Standby);
        if !self.standby_logged {
            warn!("{}", crate::leader::STANDBY_MESSAGE);
            self.standby_logged = true;
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// How many files the last commit read had to parse (the rest came from the cache).
    pub fn files_parsed_last(&self) -> usize {
        self.cache.parsed_last
    }

    /// The directory of the repository the desired state is read from (`""`: the whole tree).
    pub fn path(&self) -> &str {
        self.repo.path()
    }

    /// Also run the servers of each deployed commit on `runtime`.
    pub fn with_runtime(mut self, runtime: crate::runtime::Runtime) -> Self {
        self.runtimes.push(runtime);
        self
    }

    /// Fetch the values of Secrets on external backends with `secrets` (a clone of the runtimes'
    /// resolver) whenever a new commit's servers are about to start.
    pub fn with_secrets(mut self, secrets: crate::secrets::SecretResolver) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Refuse a commit whose Secret values these identities cannot decrypt (the values are
    /// decrypted and dropped; nothing is kept).
    pub fn with_decrypt_check(mut self, identities: crate::recipients::Identities) -> Self {
        self.identities = Some(identities);
        self
    }

    /// Call `f` after every reconcile that changed the store (deploys, drift reverts), e.g. to drop
    /// the gateway's token cache.
    pub fn on_change(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.listeners.push(Box::new(f));
        self
    }

    /// The desired state in force (the last good commit's).
    pub fn desired(&self) -> Option<&DesiredState> {
        self.last_good.as_ref().map(|(_, d)| d)
    }

    /// Fetch, and deploy the branch tip if it is new; otherwise check for drift.
    ///
    /// # Errors
    /// When the remote cannot be fetched or the store fails. The store is unchanged then.
    pub async fn reconcile(&mut self) -> Result<Outcome, ReconcileError> {
        self.reconcile_with(true).await
    }

    /// [`Reconciler::reconcile`]; with `drift_check` off, a branch that did not move is left at
    /// that (the loop's pokes and file events: the drift check, which reads the whole store, runs
    /// on its own timer, not once per event of a burst of git writes).
    async fn reconcile_with(&mut self, drift_check: bool) -> Result<Outcome, ReconcileError> {
        self.ensure_leader().await?;
        self.repo.fetch()?;
        let tip = match self.repo.tip() {
            Ok(t) => t,
            Err(SourceError::NoSuchRevision(_)) => return Ok(Outcome::UpToDate { sha: None }),
            Err(e) => return Err(e.into()),
        };
        if self.last_attempted.as_deref() == Some(tip.as_str()) {
            if !drift_check {
                return Ok(Outcome::UpToDate { sha: self.last_good.as_ref().map(|(sha, _)| sha.clone()) });
            }
            return self.check_drift().await;
        }
        let span = info_span!("reconcile", sha = %&tip[..12], reason = "new commit");
        self.deploy(tip).instrument(span).await
    }

    async fn deploy(&mut self, sha: String) -> Result<Outcome, ReconcileError> {
        // Only the commit object until the policy has accepted it: no blob is read before.
        let meta = meta_for(&commit_info(self.repo.repository(), &sha)?, "mcpctl reconcile", None);
        if self.settings.allowed_signers.is_some() {
            let good = self.store.last_good_deploy().await?.map(|d| d.revision);
            let allowed = self.settings.allowed_signers.as_ref().expect("checked");
            let refusal = match crate::signature::verify_commit(self.repo.repository(), &sha, allowed) {
                Err(e) => Some(e.to_string()),
                Ok(_) => not_descending(self.repo.repository(), good.as_deref(), &sha),
            };
            if let Some(e) = refusal {
                return self.refuse(sha, &meta, format!("refused by the signed-commit policy: {e}"), "commit refused").await;
            }
        }
        if let Some((good, _)) = &self.last_good {
            let (repo, path) = (self.repo.repository(), self.repo.path());
            let here = subtree_id(repo, &sha, path)?;
            if here.is_some() && here == subtree_id(repo, good, path)? {
                // The folder is the one in force: same resources, nothing to read or plan.
                self.store.record_unchanged(&meta).await?;
                info!(path, "commit leaves the followed path unchanged");
                self.last_attempted = Some(sha.clone());
                if let Some((good, _)) = self.last_good.as_mut() {
                    *good = sha.clone();
                }
                return Ok(Outcome::Deployed { sha, summary: Summary::default() });
            }
        }
        let files = match read_git_tree_at(self.repo.repository(), &sha, self.repo.path()) {
            Ok((files, _)) => files,
            Err(e @ SourceError::NoSuchPath { .. }) => {
                return self.refuse(sha, &meta, e.to_string(), "commit lacks the followed path").await
            }
            Err(e) => return Err(e.into()),
        };
        let desired = match schema::check_cached(&files, &mut self.cache) {
            Ok(d) => d,
            Err(diags) => return self.refuse(sha, &meta, diags.to_string(), "commit is invalid").await,
        };
        if let Some(Err(errors)) = self.identities.as_ref().map(|i| i.check_decryptable(&desired)) {
            let errors = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n");
            return self.refuse(sha, &meta, errors, "commit has secrets this installation cannot decrypt").await;
        }
        tracing::debug!(files = files.len(), parsed = self.cache.parsed_last, "read the commit");
        // What the store held after this reconciler's last write, when it has that: planning
        // against it skips reading the table. The apply's fingerprint check still compares with
        // the table itself, so a store changed meanwhile means a full pass, never a wrong write.
        let mut snapshot = self.applied.take();
        let p = loop {
            let from_snapshot = snapshot.is_some();
            let stored = match snapshot.take() {
                Some(s) => s,
                None => self.store.resources().await?,
            };
            if desired.is_empty() && !stored.is_empty() && !self.settings.allow_empty {
                let errors = format!(
                    "commit {} has no resources while {} are deployed; refusing to delete them all (pass --allow-empty to reconcile/serve if that is intended)",
                    &sha[..12.min(sha.len())],
                    stored.len()
                );
                return self.refuse(sha, &meta, errors, "commit would empty the store").await;
            }
            let p = plan(&desired, &stored, &sha);
            // The table as this apply leaves it, and its fingerprint: kept by the store, so the
            // next apply checks its base without reading every row.
            let next = after_apply(stored, &p);
            let after = crate::plan::fingerprint(&next);
            match self.store.apply_commit(&p, &meta, Some(&after)).await {
                Ok(_) => {
                    self.applied = Some(next);
                    break p;
                }
                Err(StoreError::AlreadyRecorded { id }) => {
                    // The previous leader committed this deploy just before this one took over.
                    info!(deploy = id, "commit already deployed by the previous leader");
                    self.last_attempted = Some(sha.clone());
                    self.last_good = Some((sha.clone(), desired));
                    return Ok(Outcome::UpToDate { sha: Some(sha) });
                }
                Err(e @ StoreError::NotLeader) => return Err(e.into()),
                Err(StoreError::StoreMoved { .. }) if from_snapshot => {
                    info!("the store changed since this reconciler's last write; planning again from the table");
                    continue;
                }
                Err(e @ StoreError::StoreMoved { .. }) => return Err(e.into()),
                Err(e) => {
                    self.last_attempted = Some(sha);
                    return Err(e.into());
                }
            }
        };
        info!(summary = %p.summary, "deployed");
        self.store.set_drift("").await?;
        self.last_attempted = Some(sha.clone());
        self.last_good = Some((sha.clone(), desired));
        Ok(Outcome::Deployed { sha, summary: p.summary })
    }

    /// Record a refused commit as a failed deploy; the store keeps the last good state and the
    /// commit is not tried again until the branch moves.
    async fn refuse(&mut self, sha: String, meta: &DeployMeta, errors: String, what: &str) -> Result<Outcome, ReconcileError> {
        warn!(errors = %errors, "{what}; keeping the last good state");
        self.store.record_failure(meta, &errors).await?;
        self.last_attempted = Some(sha.clone());
        Ok(Outcome::Invalid { sha, errors })
    }

    async fn check_drift(&mut self) -> Result<Outcome, ReconcileError> {
        // The timer's full pass: once an interval, the next commit is parsed whole.
        if self.cache_since.elapsed() >= self.settings.interval {
            self.cache.clear();
            self.cache_since = std::time::Instant::now();
        }
        let Some((sha, desired)) = &self.last_good else {
            return Ok(Outcome::UpToDate { sha: None });
        };
        let stored = self.store.resources().await?;
        let p = plan(desired, &stored, sha);
        if p.is_empty() {
            // What was just read is the snapshot the next deploy plans against.
            self.applied = Some(stored);
            return Ok(Outcome::UpToDate { sha: Some(sha.clone()) });
        }
        self.applied = None;
        let sha = sha.clone();
        let changed: Vec<String> = p.changes.iter().map(|c| c.key().to_string()).collect();
        warn!(sha = %&sha[..12.min(sha.len())], drift = %changed.join(", "), "store drifted from the last good commit");
        self.store.set_drift(&changed.join(", ")).await?;
        if !self.settings.self_heal {
            return Ok(Outcome::Drift { sha, summary: p.summary, reverted: false });
        }
        let meta = meta_for(
            &commit_info(self.repo.repository(), &sha)?,
            "mcpctl reconcile (self-heal)",
            Some(format!("revert drift: {}", changed.join(", "))),
        );
        let next = after_apply(stored, &p);
        let after = crate::plan::fingerprint(&next);
        self.store.apply_knowing(&p, &meta, &|_, _| {}, Some(&after)).await?;
        self.applied = Some(next);
        self.store.set_drift("").await?;
        Ok(Outcome::Drift { sha, summary: p.summary, reverted: true })
    }

    /// Run until `shutdown` resolves. Returns a [`Handle`] for pokes before starting.
    ///
    /// # Errors
    /// Only when a local repository cannot be watched.
    pub async fn run(
        mut self,
        mut pokes: mpsc::Receiver<()>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ReconcileError> {
        let (tx, mut fs_events) = mpsc::channel::<()>(1);
        let _watcher = match &self.settings.source {
            RepoSource::Local(_) => Some(watch(self.repo.git_dir().to_path_buf(), tx)?),
            RepoSource::Remote(_) => None,
        };
        tokio::pin!(shutdown);
        let mut failures = 0u32;
        // When the next full pass (fetch, deploy or drift check) is due: every interval, however
        // many pokes and file events come between.
        let mut full_at = tokio::time::Instant::now();
        loop {
            let full = tokio::time::Instant::now() >= full_at;
            if full {
                full_at = tokio::time::Instant::now() + self.settings.interval;
            }
            let wait = match self.reconcile_with(full).await {
                Err(ReconcileError::Standby) => {
                    full_at = tokio::time::Instant::now();
                    crate::leader::RETRY
                }
                Err(ReconcileError::Store(StoreError::NotLeader)) => {
                    self.step_down().await;
                    full_at = tokio::time::Instant::now();
                    crate::leader::RETRY
                }
                Ok(outcome) => {
                    failures = 0;
                    log_outcome(&outcome);
                    if matches!(outcome, Outcome::Deployed { .. } | Outcome::Drift { reverted: true, .. }) {
                        self.listeners.iter().for_each(|f| f());
                    }
                    if let Some((sha, desired)) = self.last_good.as_ref() {
                        if let Some(secrets) = self.secrets.as_ref().filter(|_| self.fetched_for.as_ref() != Some(sha)) {
                            // A backend that failed is asked again at the next run.
                            if secrets.prefetch(desired, &self.store).await {
                                self.fetched_for = Some(sha.clone());
                            }
                        }
                        for rt in &mut self.runtimes {
                            let statuses = rt.sync(desired).await;
                            if let Err(e) = self.store.set_server_status(rt.name(), &statuses).await {
                                warn!(error = %e, "cannot record server status");
                            }
                        }
                    }
                    full_at.saturating_duration_since(tokio::time::Instant::now())
                }
                Err(e) => {
                    failures += 1;
                    let wait = error_policy(failures, self.settings.interval);
                    warn!(error = %e, retry_in = ?wait, "reconcile failed; keeping the last good state");
                    // The retry is a full pass.
                    full_at = tokio::time::Instant::now() + wait;
                    wait
                }
            };
            tokio::select! {
                _ = &mut shutdown => {
                    for rt in &mut self.runtimes {
                        rt.shutdown().await;
                    }
                    return Ok(());
                }
                _ = tokio::time::sleep(wait) => {}
                Some(()) = pokes.recv() => {}
                Some(()) = fs_events.recv() => {
                    // Let a burst of ref/object writes settle a moment. An event that comes before
                    // the ref moved costs only a look at the ref (no drift check), and the ref's
                    // own write is an event too.
                    tokio::time::sleep(FS_SETTLE).await;
                    while fs_events.try_recv().is_ok() {}
                }
            }
        }
    }
}

/// `stored` with `p` applied, as far as planning and the fingerprint care (keys, bodies, hashes).
fn after_apply(stored: Vec<crate::plan::StoredResource>, p: &crate::plan::Plan) -> Vec<crate::plan::StoredResource> {
    use crate::plan::{body_hash, Action, StoredResource};
    if p.is_empty() {
        return stored;
    }
    let mut rows: std::collections::BTreeMap<schema::ResourceKey, StoredResource> =
        stored.into_iter().map(|s| (s.key.clone(), s)).collect();
    for c in &p.changes {
        let key = c.key();
        match (c.action, &c.desired) {
            (Action::Delete, _) | (_, None) => {
                rows.remove(&key);
            }
            (_, Some(body)) => {
                let body = body.to_string();
                let hash = body_hash(&body);
                rows.insert(
                    key.clone(),
                    StoredResource { key, body, hash, source: c.source.clone(), revision: p.revision.clone(), updated_at: String::new() },
                );
            }
        }
    }
    rows.into_values().collect()
}

/// A poke channel: give the [`Handle`] to whoever may trigger, the receiver to [`Reconciler::run`].
pub fn channel() -> (Handle, mpsc::Receiver<()>) {
    let (tx, rx) = mpsc::channel(1);
    (Handle { tx }, rx)
}

fn log_outcome(o: &Outcome) {
    match o {
        Outcome::Deployed { sha, summary } => info!(sha = %sha, %summary, "deployed"),
        Outcome::Invalid { sha, .. } => warn!(sha = %sha, "invalid commit recorded"),
        Outcome::Drift { sha, summary, reverted } => warn!(sha = %sha, %summary, reverted, "drift"),
        Outcome::UpToDate { .. } => {}
    }
}

fn meta_for(info: &CommitInfo, actor: &str, message: Option<String>) -> DeployMeta {
    DeployMeta {
        revision: info.sha.clone(),
        actor: actor.to_string(),
        message: Some(message.unwrap_or_else(|| info.message.clone())),
        commit: Some(info.clone()),
    }
}

/// Why `sha` may not follow the last good deploy `good`, if it may not: it must be that commit or
/// a descendant of it. Deploys not made from a commit (`mcpctl apply`) do not constrain.
fn not_descending(repo: &git2::Repository, good: Option<&str>, sha: &str) -> Option<String> {
    let good = good?;
    let good_oid = git2::Oid::from_str(good).ok().filter(|_| good.len() == 40)?;
    let short = |s: &str| s[..12.min(s.len())].to_string();
    let tip = match git2::Oid::from_str(sha) {
        Ok(t) if t == good_oid => return None,
        Ok(t) => t,
        Err(e) => return Some(format!("`{sha}` is not a commit id: {}", e.message())),
    };
    match repo.graph_descendant_of(tip, good_oid) {
        Ok(true) => None,
        Ok(false) => Some(format!(
            "commit {} does not descend from the last deployed commit {} (a force-push to older or unrelated history?); make a new commit on top of {}, e.g. with `mcpctl rollback`",
            short(sha),
            short(good),
            short(good)
        )),
        Err(e) => Some(format!("cannot check that commit {} descends from the last deployed commit {}: {}", short(sha), short(good), e.message())),
    }
}

/// Facts about commit `sha` from the commit object alone (no tree or blob is read), in the form
/// [`read_git_tree`] gives them.
fn commit_info(repo: &git2::Repository, sha: &str) -> Result<CommitInfo, SourceError> {
    let commit = git2::Oid::from_str(sha).and_then(|o| repo.find_commit(o)).map_err(|_| SourceError::NoSuchRevision(sha.to_string()))?;
    let sig = |s: git2::Signature<'_>| format!("{} <{}>", s.name().unwrap_or(""), s.email().unwrap_or(""));
    Ok(CommitInfo {
        sha: commit.id().to_string(),
        author: sig(commit.author()),
        committer: sig(commit.committer()),
        message: commit.message().unwrap_or("").trim().to_string(),
        time: chrono::DateTime::from_timestamp(commit.time().seconds(), 0).unwrap_or_default().to_rfc3339(),
    })
}

/// Watch a git dir's refs and objects; each change sends a (coalesced) event.
fn watch(git_dir: PathBuf, tx: mpsc::Sender<()>) -> Result<notify::RecommendedWatcher, ReconcileError> {
    use notify::Watcher;
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.try_send(());
        }
    })
    .map_err(|source| ReconcileError::Watch { path: git_dir.clone(), source })?;
    w.watch(&git_dir, notify::RecursiveMode::Recursive).map_err(|source| ReconcileError::Watch { path: git_dir.clone(), source })?;
    Ok(w)
}
