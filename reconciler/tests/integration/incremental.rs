//! The incremental path gives the full path's answer: over random sequences of file edits
//! (add, change, break, delete, move), `check_cached` with a cache carried across steps equals
//! `check` from scratch, valid and invalid states alike (also when the cache is saved and restored
//! between steps, as `mcpctl plan` does across runs); and a reconciler following commits
//! parses only the files a commit changed.

use proptest::prelude::*;
use schema::{FileCache, SourceFile};
use sha2::{Digest, Sha256};

use crate::common::{doc, git, sqlite};

/// File contents to pick from: valid resources, references (dangling unless their target
/// exists in another file), a syntax error, a type error, a duplicate of another file's user.
fn content(pick: u8, n: u8) -> String {
    match pick % 7 {
        0 => doc("User", &format!("u{n}"), None, "{email: a@example.com}"),
        1 => doc("Project", "home", None, "{}") + &doc("Server", &format!("s{n}"), Some("home"), "{command: uvx}"),
        2 => doc("Agent", &format!("a{n}"), Some("home"), "{llm: gpt}"),
        3 => doc("Llm", "gpt", None, "{provider: openai, model: gpt-4o}"),
        4 => "apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {name: [broken\n".into(),
        5 => doc("User", &format!("t{n}"), None, "{email: 3}"),
        _ => doc("User", "u1", None, "{}"),
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Write { file: u8, pick: u8 },
    Delete { file: u8 },
    Move { from: u8, to: u8 },
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (0u8..6, any::<u8>()).prop_map(|(file, pick)| Edit::Write { file, pick }),
        1 => (0u8..6).prop_map(|file| Edit::Delete { file }),
        1 => (0u8..6, 0u8..6).prop_map(|(from, to)| Edit::Move { from, to }),
    ]
}

fn files_of(repo: &std::collections::BTreeMap<String, String>) -> Vec<SourceFile> {
    repo.iter().map(|(p, c)| SourceFile::new(p.clone(), c.clone()).with_id(hex::encode(Sha256::digest(c.as_bytes())))).collect()
}

/// What a check returned, comparably: every resource's key, source, body hash recomputed and the
/// hash the state carries (kept with a cached file: a stale one differs), or the errors.
type Outcome = Result<Vec<(String, Option<String>, String, String)>, String>;

fn outcome(r: Result<schema::DesiredState, schema::Diagnostics>) -> Outcome {
    r.map(|s| {
        s.resources().iter().zip(s.hashes()).map(|(r, h)| (r.key().to_string(), r.source(), r.body_and_hash().1, h.clone())).collect()
    })
    .map_err(|d| d.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn incremental_check_equals_a_full_check_over_random_edits(edits in proptest::collection::vec(arb_edit(), 1..25)) {
        let mut repo = std::collections::BTreeMap::new();
        let mut cache = FileCache::default();
        let mut restarted = FileCache::default();
        for (step, e) in edits.iter().enumerate() {
            let name = |f: u8| format!("d{}/f{f}.yaml", f % 2);
            match e {
                Edit::Write { file, pick } => {
                    repo.insert(name(*file), content(*pick, *file));
                }
                Edit::Delete { file } => {
                    repo.remove(&name(*file));
                }
                Edit::Move { from, to } => {
                    if let Some(c) = repo.remove(&name(*from)) {
                        repo.insert(name(*to), c);
                    }
                }
            }
            let files = files_of(&repo);
            let full = outcome(schema::check(&files));
            let incremental = outcome(schema::check_cached(&files, &mut cache));
            prop_assert_eq!(&incremental, &full, "step {} ({:?})", step, e);
            prop_assert_eq!(cache.len(), repo.len());
            // As a new process would: the cache saved by the last run, written and read back in
            // its on-disk layout; every other step the way `mcpctl plan` loads (handing the
            // resources over instead of keeping them).
            let mut bytes = b"header\n".to_vec();
            schema::load::SavedFile::write_all(&restarted.save(), &mut bytes).unwrap();
            restarted = if step % 2 == 0 { FileCache::default() } else { FileCache::moving() };
            restarted.restore(schema::load::SavedFile::read_all(bytes, 7).unwrap());
            let from_saved = outcome(schema::check_cached(&files, &mut restarted));
            prop_assert_eq!(&from_saved, &full, "step {} ({:?}), restored cache", step, e);
        }
    }
}

#[tokio::test]
async fn a_commit_that_changes_one_file_parses_one_file() {
    use mcpctl_reconciler::{Outcome, Reconciler, RepoSource, Settings};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir_all(root.join("users")).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    for i in 0..20 {
        std::fs::write(root.join(format!("users/u{i}.yaml")), doc("User", &format!("u{i}"), None, "{}")).unwrap();
    }
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "twenty"]);
    let (store, db) = sqlite().await;
    let settings = Settings {
        source: RepoSource::Local(root.clone()),
        branch: "main".into(),
        cache_dir: db.path().to_path_buf(),
        interval: std::time::Duration::from_secs(3600),
        self_heal: true,
        allowed_signers: None,
        allow_empty: false,
    };
    let mut r = Reconciler::new(store.clone(), settings).await.unwrap();
    let Outcome::Deployed { summary, .. } = r.reconcile().await.unwrap() else { panic!() };
    assert_eq!((summary.add, r.files_parsed_last()), (20, 20));
    std::fs::write(root.join("users/u7.yaml"), doc("User", "u7", None, "{email: seven@example.com}")).unwrap();
    git(&root, &["commit", "-q", "-am", "one"]);
    let Outcome::Deployed { summary, .. } = r.reconcile().await.unwrap() else { panic!() };
    assert_eq!((summary.change, r.files_parsed_last()), (1, 1));
    let body = &store.resources().await.unwrap().into_iter().find(|s| s.key.to_string() == "User/u7").unwrap().body;
    assert!(body.contains("seven@example.com"), "{body}");
}

#[tokio::test]
async fn a_store_changed_by_another_writer_between_deploys_is_planned_from_the_table() {
    use mcpctl_reconciler::{plan, DeployMeta, Outcome, Reconciler, RepoSource, Settings};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    std::fs::create_dir_all(&root).unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    std::fs::write(root.join("a.yaml"), doc("User", "alice", None, "{}")).unwrap();
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "alice"]);
    let (store, db) = sqlite().await;
    let settings = Settings {
        source: RepoSource::Local(root.clone()),
        branch: "main".into(),
        cache_dir: db.path().to_path_buf(),
        interval: std::time::Duration::from_secs(3600),
        self_heal: true,
        allowed_signers: None,
        allow_empty: false,
    };
    let mut r = Reconciler::new(store.clone(), settings).await.unwrap();
    assert!(matches!(r.reconcile().await.unwrap(), Outcome::Deployed { .. }));
    // Another writer (`mcpctl apply` of another repo) replaces alice with carol.
    let other = crate::common::state(&doc("User", "carol", None, "{}"));
    let p = plan(&other, &store.resources().await.unwrap(), "other");
    store
        .apply(&p, &DeployMeta { revision: "other".into(), actor: "someone".into(), message: None, commit: None }, &|_, _| {})
        .await
        .unwrap();
    // The next commit is planned against the table, not the reconciler's memory of it.
    std::fs::write(root.join("b.yaml"), doc("User", "bob", None, "{}")).unwrap();
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "bob"]);
    let Outcome::Deployed { summary, .. } = r.reconcile().await.unwrap() else { panic!() };
    assert_eq!((summary.add, summary.destroy), (2, 1), "alice and bob created, carol deleted");
    let keys: Vec<String> = store.resources().await.unwrap().iter().map(|s| s.key.to_string()).collect();
    assert_eq!(keys, ["User/alice", "User/bob"]);
}
