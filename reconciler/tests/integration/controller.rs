//! The reconcile loop against real git: a bare repository behind `git daemon` on 127.0.0.1, and
//! a local repository watched with notify.

use std::time::Duration;

use crate::common::{doc, git, sqlite, GitRemote};
use mcpctl_reconciler::{Outcome, Reconciler, RepoSource, Settings};

fn settings(source: RepoSource, cache: &std::path::Path, self_heal: bool) -> Settings {
    Settings {
        source,
        branch: "main".into(),
        cache_dir: cache.to_path_buf(),
        interval: Duration::from_secs(3600),
        self_heal,
        allowed_signers: None,
        allow_empty: false,
    }
}

fn good(email: &str) -> String {
    doc("User", "alice", None, &format!("{{email: {email}}}")) + &doc("Project", "home", None, "{}")
}

#[tokio::test]
async fn commits_deploy_bad_commits_are_recorded_and_not_retried() {
    let remote = GitRemote::start();
    let (store, dir) = sqlite().await;
    let mut r = Reconciler::new(store.clone(), settings(RepoSource::Remote(remote.url.clone()), dir.path(), true)).await.unwrap();
    assert_eq!(r.reconcile().await.unwrap(), Outcome::UpToDate { sha: None }, "empty remote");

    let sha1 = remote.commit(&good("a@example.com"), "first");
    let Outcome::Deployed { sha, summary } = r.reconcile().await.unwrap() else { panic!() };
    assert_eq!((sha.as_str(), summary.add), (sha1.as_str(), 2));
    let before = store.resources().await.unwrap();

    let bad = remote.commit(&(good("a@example.com") + &doc("Agent", "x", Some("home"), "{llm: missing}")), "break it");
    let Outcome::Invalid { sha, errors } = r.reconcile().await.unwrap() else { panic!() };
    assert_eq!(sha, bad);
    assert!(errors.contains("repo.yaml:") && errors.contains("Llm `missing` not found"), "{errors}");
    assert_eq!(store.resources().await.unwrap(), before, "a bad commit changed the store");
    let d = &store.deploys(1).await.unwrap()[0];
    assert_eq!((d.outcome.as_str(), d.revision.as_str(), d.message.as_deref()), ("failed", bad.as_str(), Some("break it")));
    assert_eq!(d.author.as_deref(), Some("Dev <dev@example.com>"));
    // Not retried: the next run only checks drift.
    assert_eq!(r.reconcile().await.unwrap(), Outcome::UpToDate { sha: Some(sha1.clone()) });
    assert_eq!(store.deploys(10).await.unwrap().len(), 2);

    // A fix deploys; a restarted reconciler picks up where the history left off.
    let sha3 = remote.commit(&good("b@example.com"), "fix");
    assert!(matches!(r.reconcile().await.unwrap(), Outcome::Deployed { sha, .. } if sha == sha3));
    let mut again = Reconciler::new(store.clone(), settings(RepoSource::Remote(remote.url.clone()), dir.path(), true)).await.unwrap();
    assert_eq!(again.reconcile().await.unwrap(), Outcome::UpToDate { sha: Some(sha3) });
}

#[tokio::test]
async fn drift_is_reverted_or_only_reported() {
    let remote = GitRemote::start();
    remote.commit(&good("a@example.com"), "first");
    for self_heal in [true, false] {
        let (store, dir) = sqlite().await;
        let mut r = Reconciler::new(store.clone(), settings(RepoSource::Remote(remote.url.clone()), dir.path(), self_heal)).await.unwrap();
        assert!(matches!(r.reconcile().await.unwrap(), Outcome::Deployed { .. }));
        let clean = store.resources().await.unwrap();
        // Out-of-band: delete a row and add one.
        sqlx::query("DELETE FROM resources WHERE name = 'alice'").execute(store.pool()).await.unwrap();
        let Outcome::Drift { summary, reverted, .. } = r.reconcile().await.unwrap() else { panic!() };
        assert_eq!((summary.add, reverted), (1, self_heal));
        if self_heal {
            assert_eq!(store.resources().await.unwrap().len(), clean.len());
            assert_eq!(store.drift().await.unwrap(), "");
        } else {
            assert_eq!(store.resources().await.unwrap().len(), clean.len() - 1);
            assert_eq!(store.drift().await.unwrap(), "User/alice");
        }
    }
}

#[tokio::test]
async fn an_unreachable_remote_keeps_the_last_good_state() {
    let mut remote = GitRemote::start();
    let sha1 = remote.commit(&good("a@example.com"), "first");
    let (store, dir) = sqlite().await;
    let mut r = Reconciler::new(store.clone(), settings(RepoSource::Remote(remote.url.clone()), dir.path(), true)).await.unwrap();
    r.reconcile().await.unwrap();
    remote.stop_daemon();
    let err = r.reconcile().await.unwrap_err();
    assert!(err.to_string().contains("reading the repository"), "{err}");
    assert_eq!(store.last_good_deploy().await.unwrap().unwrap().revision, sha1);
    remote.start_daemon();
    let sha2 = remote.commit(&good("b@example.com"), "second");
    assert!(matches!(r.reconcile().await.unwrap(), Outcome::Deployed { sha, .. } if sha == sha2));
}

#[tokio::test]
async fn a_local_commit_is_picked_up_by_the_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    let (store, db) = sqlite().await;
    let r = Reconciler::new(store.clone(), settings(RepoSource::Local(repo.clone()), db.path(), true)).await.unwrap();
    let (_handle, pokes) = mcpctl_reconciler::controller::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(r.run(pokes, async move {
        let _ = stop_rx.await;
    }));
    tokio::time::sleep(Duration::from_millis(200)).await;
    std::fs::write(repo.join("repo.yaml"), good("a@example.com")).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "local"]);
    let sha = git(&repo, &["rev-parse", "HEAD"]);
    let mut deployed = false;
    for _ in 0..100 {
        if store.last_good_deploy().await.unwrap().is_some_and(|d| d.revision == sha) {
            deployed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(());
    task.await.unwrap().unwrap();
    assert!(deployed, "the commit was not deployed within 5 s (interval is 1 h, so only the watcher can have triggered)");
}

#[tokio::test]
async fn only_commits_signed_by_an_allowed_key_deploy() {
    let remote = GitRemote::start();
    let keys = remote.dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let keygen = |name: &str| {
        let path = keys.join(name);
        let ok =
            std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"]).arg(&path).status().unwrap();
        assert!(ok.success());
        path
    };
    let (trusted, stranger) = (keygen("trusted"), keygen("stranger"));
    let pubkey = std::fs::read_to_string(trusted.with_extension("pub")).unwrap();
    let allowed = mcpctl_reconciler::signature::AllowedSigners::parse(&format!("dev@example.com {pubkey}")).unwrap();
    let work = remote.work();
    let signed_commit = |key: &std::path::Path, yaml: &str, msg: &str| {
        std::fs::write(work.join("repo.yaml"), yaml).unwrap();
        git(&work, &["add", "-A"]);
        git(&work, &["-c", "gpg.format=ssh", "-c", &format!("user.signingkey={}", key.display()), "commit", "-q", "-S", "-m", msg]);
        git(&work, &["push", "-q", "origin", "main"]);
        git(&work, &["rev-parse", "HEAD"])
    };
    let (store, dir) = sqlite().await;
    let mut s = settings(RepoSource::Remote(remote.url.clone()), dir.path(), true);
    s.allowed_signers = Some(allowed);
    let mut r = Reconciler::new(store.clone(), s).await.unwrap();

    let ok = signed_commit(&trusted, &good("a@example.com"), "signed");
    assert!(matches!(r.reconcile().await.unwrap(), Outcome::Deployed { sha, .. } if sha == ok));

    let foreign = signed_commit(&stranger, &good("evil@example.com"), "signed by a stranger");
    let Outcome::Invalid { sha, errors } = r.reconcile().await.unwrap() else { panic!() };
    assert_eq!(sha, foreign);
    assert!(errors.contains("not in the allowed signers"), "{errors}");

    let unsigned = remote.commit(&good("evil@example.com"), "unsigned");
    let Outcome::Invalid { sha, errors } = r.reconcile().await.unwrap() else { panic!() };
    assert_eq!(sha, unsigned);
    assert!(errors.contains("is not signed"), "{errors}");
    let deploys = store.deploys(10).await.unwrap();
    assert_eq!(deploys.iter().map(|d| d.outcome.as_str()).collect::<Vec<_>>(), ["failed", "failed", "applied"]);
    assert_eq!(store.last_good_deploy().await.unwrap().unwrap().revision, ok);
}

/// Keys made by the real `ssh-keygen` in `dir`.
fn keygen(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    let ok =
        std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"]).arg(&path).status().unwrap();
    assert!(ok.success());
    path
}

fn public_key(key: &std::path::Path) -> String {
    std::fs::read_to_string(key.with_extension("pub")).unwrap().trim().to_string()
}

/// Commit `yaml` as `repo.yaml` in `work`, SSH-signed with `key`, at committer time `date`
/// (git's date format, e.g. `2026-01-01T00:00:00Z`) when given; returns the sha.
fn signed_commit_at(work: &std::path::Path, key: &std::path::Path, yaml: &str, msg: &str, date: Option<&str>) -> String {
    std::fs::write(work.join("repo.yaml"), yaml).unwrap();
    git(work, &["add", "-A"]);
    let mut cmd = std::process::Command::new("git");
    cmd.arg("-C").arg(work).args(["-c", "gpg.format=ssh", "-c"]).arg(format!("user.signingkey={}", key.display()));
    cmd.args(["commit", "-q", "--allow-empty", "-S", "-m", msg]);
    cmd.env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com");
    if let Some(d) = date {
        cmd.env("GIT_COMMITTER_DATE", d).env("GIT_AUTHOR_DATE", d);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    git(work, &["rev-parse", "HEAD"])
}

#[tokio::test]
async fn a_force_pushed_older_signed_commit_is_refused_and_a_rollback_commit_deploys() {
    let remote = GitRemote::start();
    let key = keygen(&remote.dir.path().join("keys"), "trusted");
    let allowed = mcpctl_reconciler::signature::AllowedSigners::parse(&format!("dev@example.com {}", public_key(&key))).unwrap();
    let work = remote.work();
    let (store, dir) = sqlite().await;
    let mut s = settings(RepoSource::Remote(remote.url.clone()), dir.path(), true);
    s.allowed_signers = Some(allowed);
    let mut r = Reconciler::new(store.clone(), s).await.unwrap();

    // A grants a token-like user; B revokes it. Both signed by the trusted key.
    let a = signed_commit_at(&work, &key, &(good("a@example.com") + &doc("User", "mallory", None, "{}")), "grant", None);
    git(&work, &["push", "-q", "origin", "main"]);
    assert!(matches!(r.reconcile().await.unwrap(), Outcome::Deployed { sha, .. } if sha == a));
    let b = signed_commit_at(&work, &key, &good("a@example.com"), "revoke mallory", None);
    git(&work, &["push", "-q", "origin", "main"]);
    assert!(matches!(r.reconcile().await.unwrap(), Outcome::Deployed { sha, .. } if sha == b));
    let revoked = store.resources().await.unwrap();

    // Someone force-pushes the older, validly signed A back.
    git(&work, &["push", "-q", "-f", "origin", &format!("{a}:main")]);
    let Outcome::Invalid { sha, errors } = r.reconcile().await.unwrap() else { panic!("the force-pushed commit was deployed") };
    assert_eq!(sha, a);
    assert!(errors.contains(&format!("does not descend from the last deployed commit {}", &b[..12])), "{errors}");
    assert_eq!(store.resources().await.unwrap(), revoked, "the revocation was undone");
    let last = &store.deploys(1).await.unwrap()[0];
    assert_eq!((last.outcome.as_str(), last.revision.as_str()), ("failed", a.as_str()));
    assert_eq!(store.last_good_deploy().await.unwrap().unwrap().revision, b);

    // A rollback is a new commit on top of B: it deploys.
    git(&work, &["reset", "-q", "--hard", &b]);
    let c = signed_commit_at(&work, &key, &(good("a@example.com") + &doc("User", "mallory", None, "{}")), "roll back to grant", None);
    git(&work, &["push", "-q", "-f", "origin", "main"]);
    assert!(matches!(r.reconcile().await.unwrap(), Outcome::Deployed { sha, .. } if sha == c));
}

#[tokio::test]
async fn an_unsigned_commit_is_refused_before_any_blob_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("repo.yaml"), good("a@example.com")).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "unsigned"]);
    let sha = git(&repo, &["rev-parse", "HEAD"]);
    // Make the blob unreadable: any attempt to read it fails loudly.
    let blob = git(&repo, &["rev-parse", "HEAD:repo.yaml"]);
    std::fs::remove_file(repo.join(".git/objects").join(&blob[..2]).join(&blob[2..])).unwrap();
    let key = keygen(&dir.path().join("keys"), "trusted");
    let (store, db) = sqlite().await;
    let mut s = settings(RepoSource::Local(repo.clone()), db.path(), true);
    s.allowed_signers =
        Some(mcpctl_reconciler::signature::AllowedSigners::parse(&format!("dev@example.com {}", public_key(&key))).unwrap());
    let mut r = Reconciler::new(store.clone(), s).await.unwrap();
    let outcome = r.reconcile().await.expect("refused by policy, not a failure to read the tree");
    let Outcome::Invalid { sha: refused, errors } = outcome else { panic!("{outcome:?}") };
    assert_eq!(refused, sha);
    assert!(errors.contains("is not signed"), "{errors}");
    assert_eq!(store.deploys(1).await.unwrap()[0].message.as_deref(), Some("unsigned"));
}

#[tokio::test]
async fn allowed_signers_namespaces_and_validity_windows_are_honoured() {
    let remote = GitRemote::start();
    let keys = remote.dir.path().join("keys");
    let (files_only, dated, ok) = (keygen(&keys, "files-only"), keygen(&keys, "dated"), keygen(&keys, "ok"));
    let signers = format!(
        "files@example.com namespaces=\"file\" {}\ndated@example.com valid-after=\"20260101Z\",valid-before=\"20270101Z\" {}\nok@example.com namespaces=\"git,file\" {}\n",
        public_key(&files_only),
        public_key(&dated),
        public_key(&ok)
    );
    let work = remote.work();
    let (store, dir) = sqlite().await;
    let mut s = settings(RepoSource::Remote(remote.url.clone()), dir.path(), true);
    s.allowed_signers = Some(mcpctl_reconciler::signature::AllowedSigners::parse(&signers).unwrap());
    let mut r = Reconciler::new(store.clone(), s).await.unwrap();
    let push = |key: &std::path::Path, email: &str, date: Option<&str>| {
        let sha = signed_commit_at(&work, key, &good(email), email, date);
        git(&work, &["push", "-q", "origin", "main"]);
        sha
    };

    let first = push(&ok, "ok@example.com", Some("2026-06-01T00:00:00Z"));
    assert!(matches!(r.reconcile().await.unwrap(), Outcome::Deployed { sha, .. } if sha == first));

    push(&files_only, "f@example.com", Some("2026-06-02T00:00:00Z"));
    let Outcome::Invalid { errors, .. } = r.reconcile().await.unwrap() else { panic!("a key limited to `file` signed a deploy") };
    assert!(errors.contains("`files@example.com`, but allowed signers line 1 limits it to namespaces `file`"), "{errors}");

    push(&dated, "early@example.com", Some("2025-12-31T23:00:00Z"));
    let Outcome::Invalid { errors, .. } = r.reconcile().await.unwrap() else { panic!("a commit before valid-after deployed") };
    assert!(errors.contains("line 2 makes it valid only after 2026-01-01T00:00:00+00:00"), "{errors}");

    push(&dated, "late@example.com", Some("2027-01-02T00:00:00Z"));
    let Outcome::Invalid { errors, .. } = r.reconcile().await.unwrap() else { panic!("a commit after valid-before deployed") };
    assert!(errors.contains("valid only before 2027-01-01T00:00:00+00:00"), "{errors}");

    let inside = push(&dated, "in@example.com", Some("2026-07-01T00:00:00Z"));
    assert!(matches!(r.reconcile().await.unwrap(), Outcome::Deployed { sha, .. } if sha == inside));
    let outcomes: Vec<String> = store.deploys(10).await.unwrap().into_iter().map(|d| d.outcome).collect();
    assert_eq!(outcomes, ["applied", "failed", "failed", "failed", "applied"]);
}

#[tokio::test]
async fn a_commit_that_empties_the_repo_is_refused_unless_allowed() {
    let remote = GitRemote::start();
    let (store, dir) = sqlite().await;
    let mut r = Reconciler::new(store.clone(), settings(RepoSource::Remote(remote.url.clone()), dir.path(), true)).await.unwrap();
    let first = remote.commit(&good("a@example.com"), "first");
    assert!(matches!(r.reconcile().await.unwrap(), Outcome::Deployed { sha, .. } if sha == first));
    let before = store.resources().await.unwrap();

    let empty = remote.commit("", "delete everything");
    let Outcome::Invalid { sha, errors } = r.reconcile().await.unwrap() else { panic!("an empty commit deployed") };
    assert_eq!(sha, empty);
    assert!(errors.contains("has no resources while 2 are deployed") && errors.contains("--allow-empty"), "{errors}");
    assert_eq!(store.resources().await.unwrap(), before, "the store was emptied");
    assert_eq!(store.deploys(1).await.unwrap()[0].outcome, "failed");
    assert_eq!(store.last_good_deploy().await.unwrap().unwrap().revision, first);

    // Allowed explicitly: the next empty commit deploys and empties the store.
    let mut s = settings(RepoSource::Remote(remote.url.clone()), dir.path(), true);
    s.allow_empty = true;
    let mut r = Reconciler::new(store.clone(), s).await.unwrap();
    let again = remote.commit("", "really delete everything");
    assert!(matches!(r.reconcile().await.unwrap(), Outcome::Deployed { sha, .. } if sha == again));
    assert!(store.resources().await.unwrap().is_empty());
}
