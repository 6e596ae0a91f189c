//! Repo sources under hostile input: symlinks, FIFOs and oversized files are refused the same
//! way from a directory and from a git tree, and a deep YAML file committed to a followed branch
//! is a failed deploy while the running reconciler keeps the last good state.

use std::path::Path;
use std::time::Duration;

use crate::common::{doc, git, sqlite};
use mcpctl_reconciler::{read_dir, read_git_tree, Reconciler, RepoSource, Settings};
use schema::load::MAX_FILE_BYTES;
use schema::Refusal;

/// A git repository (with a work tree) in a temp dir, `main` checked out.
fn work_repo() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir_all(&root).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    (dir, root)
}

fn commit_all(root: &Path, message: &str) -> String {
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", message]);
    git(root, &["rev-parse", "HEAD"])
}

fn refusals(files: &[schema::SourceFile]) -> Vec<(&str, Option<Refusal>, usize)> {
    files.iter().map(|f| (f.path.as_str(), f.refused, f.bytes.len())).collect()
}

#[test]
fn symlinked_resource_files_are_errors_in_both_sources() {
    let (_dir, root) = work_repo();
    std::fs::create_dir_all(root.join("servers")).unwrap();
    std::fs::write(root.join("users.yaml"), doc("User", "alice", None, "{}")).unwrap();
    std::fs::write(root.join("servers/time.yaml"), doc("Server", "time", None, "{command: uvx}")).unwrap();
    // Links named like resource files (to a file of the repo, and leaving it): refused.
    std::os::unix::fs::symlink("../users.yaml", root.join("servers/linked.yaml")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("outside.yml")).unwrap();
    // Links of other names: refused when they leave the repo (a directory of resources next to
    // the checkout would be silently missing), fine when they stay inside.
    let shared = root.parent().unwrap().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("more.yaml"), doc("User", "bob", None, "{}")).unwrap();
    std::os::unix::fs::symlink("../../shared", root.join("servers/shared")).unwrap();
    std::os::unix::fs::symlink("/tmp", root.join("tmp")).unwrap();
    std::os::unix::fs::symlink("users.yaml", root.join("NOTES")).unwrap();
    std::os::unix::fs::symlink("../servers", root.join("servers/again")).unwrap();
    commit_all(&root, "links");
    let repo = git2::Repository::open(&root).unwrap();
    let (from_git, _) = read_git_tree(&repo, "HEAD").unwrap();
    let from_dir = read_dir(&root).unwrap();
    let expected = vec![
        ("outside.yml", Some(Refusal::Symlink), 0),
        ("servers/linked.yaml", Some(Refusal::Symlink), 0),
        ("servers/shared", Some(Refusal::SymlinkOutside), 0),
        ("servers/time.yaml", None, doc("Server", "time", None, "{command: uvx}").len()),
        ("tmp", Some(Refusal::SymlinkOutside), 0),
        ("users.yaml", None, doc("User", "alice", None, "{}").len()),
    ];
    assert_eq!(refusals(&from_git), expected);
    assert_eq!(refusals(&from_dir), expected);
    let (git_err, dir_err) = (schema::check(&from_git).unwrap_err().to_string(), schema::check(&from_dir).unwrap_err().to_string());
    assert_eq!(git_err, dir_err);
    let lines: Vec<&str> = git_err.lines().collect();
    assert_eq!(lines.len(), 4, "{git_err}");
    assert!(lines[0].starts_with("outside.yml:1:1: file is a symbolic link"), "{git_err}");
    assert!(lines[1].starts_with("servers/linked.yaml:1:1: file is a symbolic link"), "{git_err}");
    assert!(lines[2].starts_with("servers/shared:1:1: symbolic link leaving the repo"), "{git_err}");
    assert!(lines[3].starts_with("tmp:1:1: symbolic link leaving the repo"), "{git_err}");
}

#[test]
fn oversized_files_are_refused_by_size_before_reading() {
    let (_dir, root) = work_repo();
    std::fs::write(root.join("users.yaml"), doc("User", "alice", None, "{}")).unwrap();
    let big = MAX_FILE_BYTES + 1;
    std::fs::write(root.join("big.yaml"), vec![b'#'; big]).unwrap();
    commit_all(&root, "big");
    let repo = git2::Repository::open(&root).unwrap();
    let (from_git, _) = read_git_tree(&repo, "HEAD").unwrap();
    let users = doc("User", "alice", None, "{}").len();
    let expected = vec![("big.yaml", Some(Refusal::TooLarge { bytes: big as u64 }), 0), ("users.yaml", None, users)];
    assert_eq!(refusals(&from_git), expected);
    assert_eq!(refusals(&read_dir(&root).unwrap()), expected);
    // A sparse file of 1 TiB in the directory: refused by its metadata at once (reading it
    // first would need 1 TiB of memory).
    let huge = std::fs::File::create(root.join("huge.yaml")).unwrap();
    huge.set_len(1 << 40).unwrap();
    let from_dir = read_dir(&root).unwrap();
    assert_eq!(refusals(&from_dir)[1], ("huge.yaml", Some(Refusal::TooLarge { bytes: 1 << 40 }), 0));
    let err = schema::check(&from_dir).unwrap_err().to_string();
    assert!(err.contains("huge.yaml:1:1: file is 1099511627776 bytes; the limit is 8388608 bytes"), "{err}");
}

#[test]
fn a_repo_past_its_byte_budget_is_refused_file_by_file_in_both_sources() {
    let (_dir, root) = work_repo();
    // Nine (nearly) full-size files in path order: the ninth does not fit in the repo's budget,
    // the small file after it does. Git stores the zeros compressed to almost nothing.
    for i in 0..9 {
        let len = if i == 0 { MAX_FILE_BYTES - 100 } else { MAX_FILE_BYTES };
        std::fs::write(root.join(format!("f{i}.yaml")), vec![b'#'; len]).unwrap();
    }
    let small = doc("User", "alice", None, "{}");
    std::fs::write(root.join("users.yaml"), &small).unwrap();
    commit_all(&root, "many big files");
    let repo = git2::Repository::open(&root).unwrap();
    let (from_git, _) = read_git_tree(&repo, "HEAD").unwrap();
    let from_dir = read_dir(&root).unwrap();
    let mut expected: Vec<(String, Option<Refusal>, usize)> =
        (0..8).map(|i| (format!("f{i}.yaml"), None, if i == 0 { MAX_FILE_BYTES - 100 } else { MAX_FILE_BYTES })).collect();
    expected.push(("f8.yaml".into(), Some(Refusal::RepoTooLarge { bytes: MAX_FILE_BYTES as u64 }), 0));
    expected.push(("users.yaml".into(), None, small.len()));
    let owned = |files: &[schema::SourceFile]| -> Vec<(String, Option<Refusal>, usize)> {
        refusals(files).into_iter().map(|(p, r, n)| (p.to_string(), r, n)).collect()
    };
    assert_eq!(owned(&from_git), expected);
    assert_eq!(owned(&from_dir), expected);
}

#[test]
fn directories_too_deep_are_refused_not_entered_in_both_sources() {
    let (_dir, root) = work_repo();
    let depth = schema::load::MAX_PATH_DEPTH;
    // A file at the deepest allowed level, and one a level further.
    let ok_dir: std::path::PathBuf = (0..depth).map(|_| "d").collect();
    std::fs::create_dir_all(root.join(&ok_dir).join("d")).unwrap();
    std::fs::write(root.join(&ok_dir).join("u.yaml"), doc("User", "alice", None, "{}")).unwrap();
    std::fs::write(root.join(&ok_dir).join("d/v.yaml"), doc("User", "bob", None, "{}")).unwrap();
    commit_all(&root, "deep dirs");
    let repo = git2::Repository::open(&root).unwrap();
    let (from_git, _) = read_git_tree(&repo, "HEAD").unwrap();
    let from_dir = read_dir(&root).unwrap();
    let ok = format!("{}/", vec!["d"; depth].join("/"));
    let expected =
        vec![(format!("{ok}d/"), Some(Refusal::TooDeep), 0), (format!("{ok}u.yaml"), None, doc("User", "alice", None, "{}").len())];
    let owned = |files: &[schema::SourceFile]| -> Vec<(String, Option<Refusal>, usize)> {
        refusals(files).into_iter().map(|(p, r, n)| (p.to_string(), r, n)).collect()
    };
    assert_eq!(owned(&from_git), expected);
    assert_eq!(owned(&from_dir), expected);
    let err = schema::check(&from_git).unwrap_err().to_string();
    assert_eq!(err, format!("{ok}d/:1:1: directory nested deeper than {depth} levels below the repo root; not read"));
}

#[test]
fn a_repo_of_too_many_entries_is_refused_whole_in_both_sources() {
    let n = schema::load::MAX_REPO_ENTRIES + 1;
    // Git: one tree of n entries sharing one empty blob, written without a work tree.
    let dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init_bare(dir.path().join("r.git")).unwrap();
    let blob = repo.blob(b"").unwrap();
    let mut tb = repo.treebuilder(None).unwrap();
    for i in 0..n {
        tb.insert(format!("f{i}.yaml"), blob, 0o100644).unwrap();
    }
    let tree = repo.find_tree(tb.write().unwrap()).unwrap();
    let sig = git2::Signature::now("Dev", "dev@example.com").unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "many", &tree, &[]).unwrap();
    let (from_git, _) = read_git_tree(&repo, "HEAD").unwrap();
    assert_eq!(refusals(&from_git), [(".", Some(Refusal::TooManyEntries), 0)]);
    let err = schema::check(&from_git).unwrap_err().to_string();
    assert!(err.starts_with(".:1:1: the repo has more than 100000 files and directories"), "{err}");
    // A directory of n empty files (not resource files: they count all the same).
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    for i in 0..n {
        std::fs::File::create(files.join(format!("f{i}"))).unwrap();
    }
    assert_eq!(refusals(&read_dir(&files).unwrap()), [(".", Some(Refusal::TooManyEntries), 0)]);
    std::fs::remove_file(files.join("f0")).unwrap();
    assert!(read_dir(&files).unwrap().is_empty());
}

#[test]
fn a_fifo_named_like_a_resource_file_is_refused_not_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yaml"), doc("User", "alice", None, "{}")).unwrap();
    let status = std::process::Command::new("mkfifo").arg(dir.path().join("pipe.yaml")).status().unwrap();
    assert!(status.success());
    // Opening the FIFO for reading would block until a writer comes: it must not be opened.
    let files = read_dir(dir.path()).unwrap();
    assert_eq!(refusals(&files)[0], ("pipe.yaml", Some(Refusal::NotRegular), 0));
    let err = schema::check(&files).unwrap_err().to_string();
    assert!(err.starts_with("pipe.yaml:1:1: not a regular file"), "{err}");
}

/// Poll `f` every 50 ms for up to 10 s.
async fn eventually<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) -> bool {
    for _ in 0..200 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_deep_file_is_a_failed_deploy_and_the_running_reconciler_keeps_the_last_good_state() {
    let (_dir, root) = work_repo();
    let (store, db) = sqlite().await;
    let settings = Settings {
        source: RepoSource::Local(root.clone()),
        branch: "main".into(),
        cache_dir: db.path().to_path_buf(),
        interval: Duration::from_secs(3600),
        self_heal: true,
        allowed_signers: None,
        allow_empty: false,
    };
    let good = |email: &str| doc("User", "alice", None, &format!("{{email: {email}}}")) + &doc("Project", "home", None, "{}");
    std::fs::write(root.join("repo.yaml"), good("a@example.com")).unwrap();
    let sha1 = commit_all(&root, "good");
    let r = Reconciler::new(store.clone(), settings).await.unwrap();
    let (_handle, pokes) = mcpctl_reconciler::controller::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The loop runs on this test's thread (2 MiB stack): a recursion over the deep file would
    // abort the whole test binary.
    let task = tokio::spawn(r.run(pokes, async move {
        let _ = stop_rx.await;
    }));
    let last_good = |sha: String| {
        let store = store.clone();
        move || {
            let (store, sha) = (store.clone(), sha.clone());
            async move { store.last_good_deploy().await.unwrap().is_some_and(|d| d.revision == sha) }
        }
    };
    assert!(eventually(last_good(sha1.clone())).await, "the first commit was not deployed");
    let before = store.resources().await.unwrap();

    // 100 KB of nested block sequences under a resource's spec.
    let deep = format!("apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {{name: deep}}\nspec:\n  x:\n{}y\n", "  - ".repeat(25_000));
    std::fs::write(root.join("deep.yaml"), deep).unwrap();
    let sha2 = commit_all(&root, "deep");
    let failed = {
        let (store, sha2) = (store.clone(), sha2.clone());
        move || {
            let (store, sha2) = (store.clone(), sha2.clone());
            async move { store.deploys(1).await.unwrap().first().is_some_and(|d| d.revision == sha2 && d.outcome == "failed") }
        }
    };
    assert!(eventually(failed).await, "the deep commit was not recorded as failed");
    let d = &store.deploys(1).await.unwrap()[0];
    let error = d.error.as_deref().unwrap_or("");
    assert!(error.starts_with("deep.yaml:6:") && error.contains("nest deeper than 64 levels"), "{error}");
    assert_eq!(store.resources().await.unwrap(), before, "the deep commit changed the store");
    assert_eq!(store.last_good_deploy().await.unwrap().unwrap().revision, sha1);

    // Still alive: the next good commit deploys.
    std::fs::remove_file(root.join("deep.yaml")).unwrap();
    std::fs::write(root.join("repo.yaml"), good("b@example.com")).unwrap();
    let sha3 = commit_all(&root, "fix");
    let deployed = eventually(last_good(sha3)).await;
    let _ = stop_tx.send(());
    task.await.unwrap().unwrap();
    assert!(deployed, "the fix after the deep commit was not deployed");
}
