//! Repo layout: a folder inside a git work tree (found upwards) or `--path` in a remote is the
//! repo; only it is read, and commits that leave it unchanged are recorded as `unchanged`.

use std::time::Duration;

use crate::common::{doc, git, sqlite, GitRemote};
use mcpctl_reconciler::{Outcome, Reconciler, RepoSource, Settings};

fn settings(source: RepoSource, cache: &std::path::Path) -> Settings {
    Settings {
        source,
        branch: "main".into(),
        cache_dir: cache.to_path_buf(),
        interval: Duration::from_secs(3600),
        self_heal: true,
        allowed_signers: None,
        allow_empty: false,
    }
}

/// A work tree with platform config in `deploy/mcp/` and an unrelated, invalid YAML file
/// elsewhere (a monorepo: it must never be read).
fn monorepo(root: &std::path::Path) {
    std::fs::create_dir_all(root.join("deploy/mcp/users")).unwrap();
    std::fs::create_dir_all(root.join("app")).unwrap();
    git(root, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join("deploy/mcp/users/alice.yaml"), doc("User", "alice", None, "{email: a@example.com}")).unwrap();
    std::fs::write(root.join("app/compose.yaml"), "services: {web: {image: nginx}}\n").unwrap();
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "first"]);
}

#[tokio::test]
async fn a_folder_inside_a_work_tree_is_the_repo_and_other_commits_are_no_ops() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mono");
    monorepo(&root);
    let (store, db) = sqlite().await;
    let mut r = Reconciler::new(store.clone(), settings(RepoSource::Local(root.join("deploy/mcp")), db.path())).await.unwrap();
    assert_eq!(r.path(), "deploy/mcp");
    let Outcome::Deployed { summary, .. } = r.reconcile().await.unwrap() else { panic!() };
    assert_eq!(summary.add, 1, "only the folder's resources, the compose file never read");
    let stored = store.resources().await.unwrap();
    assert_eq!(stored[0].source.as_deref(), Some("users/alice.yaml:1:1"), "paths are relative to the folder");

    // A commit outside the folder: recorded as unchanged, nothing read or written.
    std::fs::write(root.join("app/compose.yaml"), "not: [valid\n").unwrap();
    git(&root, &["commit", "-q", "-am", "app only"]);
    let sha = git(&root, &["rev-parse", "HEAD"]);
    let Outcome::Deployed { sha: got, summary } = r.reconcile().await.unwrap() else { panic!() };
    assert_eq!((got.as_str(), summary.is_empty()), (sha.as_str(), true));
    let d = &store.deploys(1).await.unwrap()[0];
    assert_eq!((d.outcome.as_str(), d.revision.as_str(), d.message.as_deref()), ("unchanged", sha.as_str(), Some("app only")));
    assert_eq!(store.resources().await.unwrap(), stored);

    // A commit inside it deploys; a commit removing the folder is refused, the state kept.
    std::fs::write(root.join("deploy/mcp/users/bob.yaml"), doc("User", "bob", None, "{email: b@example.com}")).unwrap();
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "bob"]);
    let Outcome::Deployed { summary, .. } = r.reconcile().await.unwrap() else { panic!() };
    assert_eq!(summary.add, 1);
    // A restarted reconciler picks the folder's state in force back up.
    let again = Reconciler::new(store.clone(), settings(RepoSource::Local(root.join("deploy/mcp")), db.path())).await.unwrap();
    assert_eq!(again.desired().map(|d| d.len()), Some(2));
    git(&root, &["rm", "-rq", "deploy"]);
    git(&root, &["commit", "-q", "-m", "moved away"]);
    let Outcome::Invalid { errors, .. } = r.reconcile().await.unwrap() else { panic!() };
    assert!(errors.contains("no directory `deploy/mcp`"), "{errors}");
    assert_eq!(store.resources().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_path_inside_a_remote_is_followed_with_path() {
    let remote = GitRemote::start();
    let work = remote.work();
    std::fs::create_dir_all(work.join("platform")).unwrap();
    std::fs::write(work.join("platform/users.yaml"), doc("User", "alice", None, "{email: a@example.com}")).unwrap();
    remote.commit("broken: [yaml\n", "the root file is not config");
    let (store, dir) = sqlite().await;
    let mut r =
        Reconciler::new_at(store.clone(), settings(RepoSource::Remote(remote.url.clone()), dir.path()), "/platform/").await.unwrap();
    assert_eq!(r.path(), "platform");
    let Outcome::Deployed { summary, .. } = r.reconcile().await.unwrap() else { panic!() };
    assert_eq!(summary.add, 1);
    remote.commit("still: [broken\n", "root only");
    let Outcome::Deployed { summary, .. } = r.reconcile().await.unwrap() else { panic!() };
    assert!(summary.is_empty());
    assert_eq!(store.deploys(1).await.unwrap()[0].outcome, "unchanged");
}

#[tokio::test]
async fn a_folder_outside_any_repository_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (store, db) = sqlite().await;
    let err = Reconciler::new(store, settings(RepoSource::Local(dir.path().to_path_buf()), db.path())).await.err().expect("no repository");
    assert!(err.to_string().contains("could not find repository"), "{err}");
}

#[test]
fn json_files_and_merge_keys_read_alike_from_a_directory_and_a_git_tree() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir_all(root.join("servers")).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    let json = r#"[{"apiVersion": "mcpctl.io/v1", "kind": "User", "metadata": {"name": "ann"}, "spec": {"email": "ann@example.com"}},
 {"apiVersion": "mcpctl.io/v1", "kind": "User", "metadata": {"name": "bo"}}]"#;
    std::fs::write(root.join("users.json"), json).unwrap();
    let yaml = "servers:\n  - metadata: {name: a}\n    spec: &base {command: uvx, args: [mcp-server-time], description: shared}\n  - metadata: {name: b}\n    spec:\n      <<: *base\n      description: own\n";
    std::fs::write(root.join("servers/all.yaml"), yaml).unwrap();
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "json and merges"]);
    let repo = git2::Repository::open(&root).unwrap();
    let (from_git, _) = mcpctl_reconciler::read_git_tree(&repo, "HEAD").unwrap();
    let from_dir = mcpctl_reconciler::read_dir(&root).unwrap();
    let paths = |f: &[schema::SourceFile]| f.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
    assert_eq!(paths(&from_git), ["servers/all.yaml", "users.json"]);
    assert_eq!(paths(&from_dir), paths(&from_git));
    let (a, b) = (schema::check(&from_git).unwrap(), schema::check(&from_dir).unwrap());
    assert_eq!(a.len(), 4);
    for r in a.resources() {
        assert_eq!(b.get(&r.key()).map(|x| x.body_and_hash()), Some(r.body_and_hash()));
    }
    let b_server = a.resolve(schema::Kind::Server, "b", None).unwrap();
    assert_eq!(b_server.to_json()["spec"]["args"], serde_json::json!(["mcp-server-time"]));
    assert_eq!(b_server.to_json()["spec"]["description"], "own");
    assert_eq!(a.resolve(schema::Kind::User, "bo", None).unwrap().source().unwrap(), "users.json:2:2");
}
