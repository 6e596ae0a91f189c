//! The reconcile loop against real git: a bare repository behind `git daemon` on 127.0.0.1, and
//! a local repository watched with notify.

use std::time::Duration;

use crate::common::{doc, git, sqlite, GitRemote};
use mcpctl_reconciler::{Outcome, Reconciler, RepoSource, Settings};

fn settings(source: RepoSource, cache: &std::path::Path, self_heal: bool) -> Settings {
    Settings { source, branch: "main".into(), cache_dir: cache.to_path_buf(), interval: Duration::from_secs(3600), self_heal, allowed_signers: None }
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
    let task = tokio::spawn(r.run(pokes, async move { let _ = stop_rx.await; }));
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
        let ok = std::process::Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"]).arg(&path).status().unwrap();
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
