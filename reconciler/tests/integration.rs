//! Reconciler integration tests against real SQLite and (when configured) real Postgres, and a
//! real git repository.

mod common;
#[path = "integration/controller.rs"]
mod controller;
#[path = "integration/incremental.rs"]
mod incremental;
#[path = "integration/kubernetes.rs"]
mod kubernetes;
#[path = "integration/layout.rs"]
mod layout;
#[path = "integration/leader.rs"]
mod leader;
#[path = "integration/runtime.rs"]
mod runtime;
#[path = "integration/secrets.rs"]
mod secrets;
#[path = "integration/sources.rs"]
mod sources;
#[path = "integration/threads.rs"]
mod threads;

use common::{doc, state, stores};
use mcpctl_reconciler::{plan, Action, DeployMeta, Store, StoreError};
use proptest::prelude::*;
use schema::DesiredState;

fn meta(rev: &str) -> DeployMeta {
    DeployMeta { revision: rev.into(), actor: "test".into(), message: None, commit: None }
}

async fn apply(store: &Store, desired: &DesiredState) -> Result<mcpctl_reconciler::Plan, StoreError> {
    let stored = store.resources().await?;
    let p = plan(desired, &stored, "rev");
    store.apply(&p, &meta("rev"), &|_, _| {}).await?;
    Ok(p)
}

fn base_repo() -> String {
    [
        doc("Project", "home", None, "{servers: [time]}"),
        doc("Server", "time", None, "{packageName: mcp-server-time, runner: uvx}"),
        doc("Llm", "gpt", None, "{provider: openai, model: gpt-4o-mini}"),
        doc("Agent", "helper", Some("home"), "{llm: gpt}"),
        doc("User", "alice", None, "{email: alice@example.com}"),
    ]
    .concat()
}

#[tokio::test]
async fn apply_is_idempotent_and_prunes_on_every_backend() {
    for (store, _guard) in stores().await {
        let backend = store.backend();
        let first = apply(&store, &state(&base_repo())).await.unwrap();
        assert_eq!((first.summary.add, first.summary.change, first.summary.destroy), (5, 0, 0), "{backend:?}");
        let second = apply(&store, &state(&base_repo())).await.unwrap();
        assert!(second.is_empty(), "{backend:?}: second apply planned {:?}", second.summary);
        // Change one, remove one.
        let edited = base_repo()
            .replace("alice@example.com", "alice@example.org")
            .replace(&doc("Llm", "gpt", None, "{provider: openai, model: gpt-4o-mini}"), "")
            .replace("{llm: gpt}", "{llm: claude}")
            + &doc("Llm", "claude", None, "{provider: anthropic, model: claude-sonnet}");
        let third = apply(&store, &state(&edited)).await.unwrap();
        let actions: Vec<(Action, String)> = third.changes.iter().map(|c| (c.action, c.key().to_string())).collect();
        assert_eq!(
            actions,
            vec![
                (Action::Update, "User/alice".into()),
                (Action::Create, "Llm/claude".into()),
                (Action::Update, "Agent/home/helper".into()),
                (Action::Delete, "Llm/gpt".into()),
            ],
            "{backend:?}"
        );
        let email = third.changes[0].fields.iter().find(|f| f.path == "spec.email").unwrap();
        assert_eq!(email.after, Some(serde_json::json!("alice@example.org")));
        let stored = store.resources().await.unwrap();
        assert!(plan(&state(&edited), &stored, "x").is_empty(), "{backend:?}");
        let deploys = store.deploys(10).await.unwrap();
        let outcomes: Vec<&str> = deploys.iter().map(|d| d.outcome.as_str()).collect();
        assert_eq!(outcomes, ["applied", "unchanged", "applied"], "{backend:?}");
    }
}

#[tokio::test]
async fn a_failure_mid_apply_changes_nothing() {
    for (store, _guard) in stores().await {
        apply(&store, &state(&base_repo())).await.unwrap();
        let before = store.resources().await.unwrap();
        // A real database failure on the 3rd write of the plan.
        match store.backend() {
            mcpctl_reconciler::Backend::Sqlite => {
                sqlx::query("CREATE TRIGGER boom BEFORE INSERT ON resources WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
                    .execute(store.pool()).await.unwrap();
            }
            mcpctl_reconciler::Backend::Postgres => {
                sqlx::query("CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN IF NEW.name = 'boom' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
                    .execute(store.pool()).await.unwrap();
                sqlx::query("CREATE TRIGGER boom BEFORE INSERT ON resources FOR EACH ROW EXECUTE FUNCTION boom()")
                    .execute(store.pool())
                    .await
                    .unwrap();
            }
        }
        let next = base_repo().replace("alice@example.com", "alice@example.net")
            + &doc("User", "boom", None, "{}")
            + &doc("User", "zed", None, "{}");
        let p = plan(&state(&next), &before, "bad");
        assert_eq!(p.summary.add, 2);
        let err = store.apply(&p, &meta("bad"), &|_, _| {}).await.unwrap_err();
        assert!(err.to_string().contains("injected failure"), "{err}");
        assert_eq!(store.resources().await.unwrap(), before, "{:?}: store changed", store.backend());
        let last = &store.deploys(1).await.unwrap()[0];
        assert_eq!((last.outcome.as_str(), last.revision.as_str()), ("failed", "bad"));
        assert!(last.error.as_deref().unwrap().contains("injected failure"));
    }
}

#[tokio::test]
async fn a_plan_is_refused_when_the_store_moved() {
    for (store, _guard) in stores().await {
        let old = plan(&state(&base_repo()), &store.resources().await.unwrap(), "r1");
        apply(&store, &state(&doc("User", "bob", None, "{}"))).await.unwrap();
        let err = store.apply(&old, &meta("r1"), &|_, _| {}).await.unwrap_err();
        assert!(matches!(err, StoreError::StoreMoved { .. }), "{err}");
        let names: Vec<String> = store.resources().await.unwrap().into_iter().map(|r| r.key.name).collect();
        assert_eq!(names, ["bob"]);
    }
}

/// The fingerprint the store keeps (so an apply checks its base without hashing every body) is
/// exact or absent: kept by an apply that knew it (or an empty one), cleared by any change to the
/// rows however it is made. A stale one would let a plan made before an out-of-band edit through.
#[tokio::test]
async fn the_kept_fingerprint_is_exact_or_cleared_by_any_change_to_the_rows() {
    use mcpctl_reconciler::plan::{body_hash, fingerprint};
    use mcpctl_reconciler::StoredResource;
    for (store, _guard) in stores().await {
        let backend = store.backend();
        // An apply that does not know the result leaves it unknown; an empty one knows it.
        apply(&store, &state(&base_repo())).await.unwrap();
        assert_eq!(store.kept_fingerprint().await.unwrap(), None, "{backend:?}");
        apply(&store, &state(&base_repo())).await.unwrap();
        let table = fingerprint(&store.resources().await.unwrap());
        assert_eq!(store.kept_fingerprint().await.unwrap().as_deref(), Some(table.as_str()), "{backend:?}");
        // A knowing apply keeps what the rows hash to.
        let next = state(&base_repo().replace("alice@example.com", "alice@example.org"));
        let rows: Vec<StoredResource> = next
            .resources()
            .iter()
            .map(|r| {
                let body = r.body();
                StoredResource {
                    key: r.key(),
                    hash: body_hash(&body),
                    body,
                    source: None,
                    revision: "r2".into(),
                    updated_at: String::new(),
                }
            })
            .collect();
        let p = plan(&next, &store.resources().await.unwrap(), "r2");
        store.apply_knowing(&p, &meta("r2"), &|_, _| {}, Some(&fingerprint(&rows))).await.unwrap();
        let table = fingerprint(&store.resources().await.unwrap());
        assert_eq!(store.kept_fingerprint().await.unwrap().as_deref(), Some(table.as_str()), "{backend:?}");
        // Out of band: a body edited behind its hash column. The kept value goes, and a plan made
        // against the rows as they were (the reconciler's copy) is refused.
        let stale = plan(&state(&base_repo()), &rows, "r3");
        sqlx::query("UPDATE resources SET body = replace(body, 'example.org', 'example.net') WHERE name = 'alice'")
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(store.kept_fingerprint().await.unwrap(), None, "{backend:?}: kept across an edit");
        let err = store.apply(&stale, &meta("r3"), &|_, _| {}).await.unwrap_err();
        assert!(matches!(err, StoreError::StoreMoved { .. }), "{backend:?}: {err}");
        // Deletes clear it too (the drift test's way of editing).
        apply(&store, &state(&base_repo())).await.unwrap();
        apply(&store, &state(&base_repo())).await.unwrap();
        assert!(store.kept_fingerprint().await.unwrap().is_some(), "{backend:?}");
        sqlx::query("DELETE FROM resources WHERE name = 'alice'").execute(store.pool()).await.unwrap();
        assert_eq!(store.kept_fingerprint().await.unwrap(), None, "{backend:?}: kept across a delete");
    }
}

#[tokio::test]
async fn sensitive_values_never_enter_the_plan_diff() {
    let secret = |v: &str| {
        doc(
            "Secret",
            "keys",
            None,
            &format!("{{data: {{token: \"-----BEGIN AGE ENCRYPTED FILE-----\\n{v}\\n-----END AGE ENCRYPTED FILE-----\"}}}}"),
        )
    };
    let (store, _g) = common::sqlite().await;
    apply(&store, &state(&secret("QUFBQQ"))).await.unwrap();
    let p = plan(&state(&secret("QkJCQg")), &store.resources().await.unwrap(), "r");
    let f = &p.changes[0].fields[0];
    assert_eq!((f.path.as_str(), f.sensitive, &f.before, &f.after), ("spec.data.token", true, &None, &None));
}

#[test]
fn git_tree_and_directory_read_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("servers")).unwrap();
    std::fs::create_dir_all(root.join(".hidden")).unwrap();
    std::fs::write(root.join("servers/time.yaml"), doc("Server", "time", None, "{command: uvx}")).unwrap();
    std::fs::write(root.join("users.yml"), doc("User", "alice", None, "{}")).unwrap();
    std::fs::write(root.join(".hidden/x.yaml"), "not: loaded").unwrap();
    std::fs::write(root.join("README.md"), "ignored").unwrap();
    let repo = git2::Repository::init(root).unwrap();
    let mut index = repo.index().unwrap();
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("Dev", "dev@example.com").unwrap();
    let sha = repo.commit(Some("HEAD"), &sig, &sig, "add servers", &tree, &[]).unwrap();
    // The worktree changes after the commit; the git source must not see it.
    std::fs::write(root.join("users.yml"), "broken: [").unwrap();
    let (files, info) = mcpctl_reconciler::read_git_tree(&repo, "HEAD").unwrap();
    assert_eq!(info.sha, sha.to_string());
    assert_eq!(info.message, "add servers");
    assert_eq!(info.author, "Dev <dev@example.com>");
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["servers/time.yaml", "users.yml"]);
    assert_eq!(schema::check(&files).unwrap().len(), 2);
    let from_dir = mcpctl_reconciler::read_dir(root).unwrap();
    assert_eq!(from_dir.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), paths);
    assert!(schema::check(&from_dir).is_err(), "the worktree copy is broken");
}

/// A small random desired state: users, groups over them, and servers.
fn arb_state() -> impl Strategy<Value = String> {
    let users = proptest::collection::btree_map("[a-e]", "[a-z]{1,6}@example\\.com", 0..5);
    let servers = proptest::collection::btree_map("[a-e]", (prop_oneof!["npx", "uvx"], 1u32..4), 0..5);
    (users, servers, any::<bool>()).prop_map(|(users, servers, group)| {
        let mut yaml = String::new();
        for (n, email) in &users {
            yaml += &doc("User", &format!("u-{n}"), None, &format!("{{email: \"{email}\"}}"));
        }
        if group && !users.is_empty() {
            let members: Vec<String> = users.keys().map(|n| format!("u-{n}")).collect();
            yaml += &doc("Group", "all", None, &format!("{{members: [{}]}}", members.join(", ")));
        }
        for (n, (cmd, replicas)) in &servers {
            yaml += &doc("Server", &format!("s-{n}"), None, &format!("{{command: {cmd}, replicas: {replicas}}}"));
        }
        yaml
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Apply A then B leaves the store equal to B, and planning B again is empty.
    #[test]
    fn apply_a_then_b_converges_to_b(a in arb_state(), b in arb_state()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let store = Store::connect("sqlite::memory:").await.unwrap();
            apply(&store, &state(&a)).await.unwrap();
            apply(&store, &state(&b)).await.unwrap();
            let stored = store.resources().await.unwrap();
            let desired = state(&b);
            let want: Vec<(String, String)> = desired.resources().iter().map(|r| (r.key().to_string(), r.body_and_hash().0)).collect();
            let mut got: Vec<(String, String)> = stored.iter().map(|s| (s.key.to_string(), s.body.clone())).collect();
            got.sort();
            let mut want_sorted = want.clone();
            want_sorted.sort();
            prop_assert_eq!(got, want_sorted);
            prop_assert!(plan(&desired, &stored, "b").is_empty());
            Ok(())
        })?;
    }

    /// The pure plan: planning a state against its own stored form is empty; against nothing it
    /// creates everything in dependency order.
    #[test]
    fn plan_against_itself_is_empty(a in arb_state()) {
        let desired = state(&a);
        let p = plan(&desired, &[], "a");
        prop_assert_eq!(p.summary.add, desired.len());
        let kinds: Vec<_> = p.changes.iter().map(|c| c.kind).collect();
        let mut sorted = kinds.clone();
        sorted.sort();
        prop_assert_eq!(kinds, sorted);
        let stored: Vec<_> = p.changes.iter().map(|c| {
            let body = c.desired.as_ref().unwrap().to_string();
            mcpctl_reconciler::StoredResource { key: c.key(), hash: mcpctl_reconciler::plan::body_hash(&body), body, source: None, revision: "a".into(), updated_at: String::new() }
        }).collect();
        prop_assert!(plan(&desired, &stored, "a").is_empty());
    }
}

/// A change made to the `resources` table behind mcpctl's back.
#[derive(Debug, Clone)]
enum OutOfBand {
    None,
    /// A body edited (its hash column left as it was).
    EditBody,
    /// A row deleted.
    Delete,
    /// A row no repo declares, with a name and body that look like the packed layout (lengths,
    /// `:`), in a project, and a body that is not JSON.
    Insert(String),
}

fn arb_out_of_band() -> impl Strategy<Value = OutOfBand> {
    prop_oneof![Just(OutOfBand::None), Just(OutOfBand::EditBody), Just(OutOfBand::Delete), "[0-9:a-z]{1,8}".prop_map(OutOfBand::Insert),]
}

impl OutOfBand {
    async fn make(&self, store: &Store, step: usize) {
        let sql = match self {
            OutOfBand::None => return,
            OutOfBand::EditBody => "UPDATE resources SET body = replace(body, '@example', '@elsewhere') WHERE name IN (SELECT min(name) FROM resources WHERE kind = 'User')".to_string(),
            OutOfBand::Delete => "DELETE FROM resources WHERE name IN (SELECT max(name) FROM resources)".to_string(),
            OutOfBand::Insert(name) => format!(
                "INSERT INTO resources (kind, project, name, body, hash, source, revision, updated_at) VALUES ('Prompt', 'p:{step}', '{name}{step}', '12:{name}:3:', 'x', 'by:hand', 'r', 'now')"
            ),
        };
        sqlx::query(&sql).execute(store.pool()).await.unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// `mcpctl plan`'s read (every row's key and body hash, then the whole rows of what the plan
    /// changes, in one transaction) gives the plan that planning against every whole row gives,
    /// fingerprint included, over random repos and out-of-band edits, on every backend; and
    /// fetches the bodies of only the rows the plan updates or deletes.
    #[test]
    fn the_streamed_plan_equals_the_full_plan_over_random_edits(
        steps in proptest::collection::vec((arb_state(), arb_out_of_band()), 1..8)
    ) {
        use mcpctl_reconciler::plan::{changed_keys, plan_hashed};
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            for (store, _guard) in stores().await {
                let backend = store.backend();
                for (step, (yaml, edit)) in steps.iter().enumerate() {
                    edit.make(&store, step).await;
                    let desired = state(yaml);
                    let full = plan(&desired, &store.resources().await.unwrap(), "r");
                    let (rows, changed) = store.resources_for_plan(|rows| changed_keys(&desired, rows)).await.unwrap();
                    let streamed = plan_hashed(&desired, &rows, &changed, "r");
                    prop_assert_eq!(&streamed, &full, "{:?} step {} ({:?})", backend, step, edit);
                    let fetched: Vec<String> = changed.iter().map(|r| r.key.to_string()).collect();
                    let mut rewritten: Vec<String> =
                        full.changes.iter().filter(|c| c.action != Action::Create).map(|c| c.key().to_string()).collect();
                    rewritten.sort();
                    let mut fetched_sorted = fetched.clone();
                    fetched_sorted.sort();
                    prop_assert_eq!(fetched_sorted, rewritten, "{:?} step {}: bodies fetched", backend, step);
                    store.apply(&full, &meta("r"), &|_, _| {}).await.unwrap();
                }
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn audit_events_are_stored_in_batches_and_filtered_on_every_backend() {
    use mcpctl_reconciler::audit::{AuditEvent, AuditFilter};
    for (store, _guard) in stores().await {
        let backend = store.backend();
        let event = |i: i64| AuditEvent {
            id: 0,
            at: format!("2026-11-25T10:{:02}:{:02}.000Z", i / 60, i % 60),
            project: if i % 2 == 0 { "a".into() } else { "b".into() },
            token: if i % 3 == 0 { "ci".into() } else { "alice".into() },
            token_prefix: "0123456789ab".into(),
            session: "-".into(),
            method: "tools/call".into(),
            server: "time".into(),
            target: "get_current_time".into(),
            duration_us: 1000 + i,
            outcome: if i == 7 { "error".into() } else { "ok".into() },
            error: (i == 7).then(|| "upstream exited".to_string()),
            revision: "abc123".into(),
            thread: None,
        };
        // 120 events: three multi-row INSERTs in one transaction.
        let events: Vec<AuditEvent> = (0..120).map(event).collect();
        store.insert_audit(&events).await.unwrap();
        let all = store.audit_events(&AuditFilter { limit: 1000, ..Default::default() }).await.unwrap();
        assert_eq!(all.len(), 120, "{backend:?}");
        assert_eq!(all[0].duration_us, 1119, "{backend:?}: newest first");
        let failed = all.iter().find(|e| e.outcome == "error").unwrap();
        assert_eq!(failed.error.as_deref(), Some("upstream exited"));
        let a_ci = store
            .audit_events(&AuditFilter { project: Some("a".into()), token: Some("ci".into()), limit: 1000, ..Default::default() })
            .await
            .unwrap();
        assert_eq!(a_ci.len(), 20, "{backend:?}: i even and divisible by 3");
        let recent = store
            .audit_events(&AuditFilter { since: Some("2026-11-25T10:01:50.000Z".into()), limit: 5, ..Default::default() })
            .await
            .unwrap();
        assert_eq!(recent.iter().map(|e| e.duration_us).collect::<Vec<_>>(), [1119, 1118, 1117, 1116, 1115], "{backend:?}");

        // Keyset pagination (the web UI's audit log): the next page starts below the last id.
        let first = store.audit_events(&AuditFilter { limit: 50, ..Default::default() }).await.unwrap();
        let next = store.audit_events(&AuditFilter { limit: 50, before: Some(first[49].id), ..Default::default() }).await.unwrap();
        assert_eq!(next.len(), 50, "{backend:?}");
        assert_eq!(next[0].duration_us, first[49].duration_us - 1, "{backend:?}: no gap, no overlap");
        let last = store.audit_events(&AuditFilter { limit: 50, before: Some(next[49].id), ..Default::default() }).await.unwrap();
        assert_eq!(last.len(), 20, "{backend:?}");
        let only = |f: AuditFilter| {
            let store = store.clone();
            async move { store.audit_events(&AuditFilter { limit: 1000, ..f }).await.unwrap() }
        };
        assert_eq!(only(AuditFilter { outcome: Some("error".into()), ..Default::default() }).await.len(), 1, "{backend:?}");
        assert_eq!(only(AuditFilter { server: Some("time".into()), target: Some("nope".into()), ..Default::default() }).await.len(), 0);
        let until = only(AuditFilter { until: Some("2026-11-25T10:00:10.000Z".into()), ..Default::default() }).await;
        assert_eq!(until.len(), 10, "{backend:?}: seconds 0..9 of minute 0");

        // Per-minute aggregates, written with the events: project `a` holds the even events.
        let minutes = store.audit_minutes("a", "2026-11-25T10:00", 16, 10, 100).await.unwrap();
        let calls: Vec<(&str, i64)> = minutes.iter().map(|m| (m.minute.as_str(), m.calls)).collect();
        assert_eq!(calls, [("2026-11-25T10:00", 30), ("2026-11-25T10:01", 30)], "{backend:?}");
        assert_eq!(minutes[0].histogram[mcpctl_reconciler::audit_minutes::bucket(1000)], 30, "{backend:?}: 1.0–1.1 ms");
        let b: i64 = store.audit_minutes("b", "2026-11-25T10:00", 16, 10, 100).await.unwrap().iter().map(|m| m.errors).sum();
        assert_eq!(b, 1, "{backend:?}: event 7 failed");
        // A later batch of the same minute adds to its row.
        store.insert_audit(&[event(0), event(2)]).await.unwrap();
        let minutes = store.audit_minutes("a", "2026-11-25T10:00", 16, 10, 100).await.unwrap();
        assert_eq!(minutes[0].calls, 32, "{backend:?}");
        assert_eq!(store.audit_minutes("a", "2026-11-25T10:01", 16, 10, 100).await.unwrap().len(), 1, "{backend:?}: since is inclusive");
        // Summed per hour: one row of 62 calls, its histogram summed too.
        let hour = store.audit_minutes("a", "2026-11-25T10:00", 13, 10, 100).await.unwrap();
        assert_eq!(hour.iter().map(|m| (m.minute.as_str(), m.calls)).collect::<Vec<_>>(), [("2026-11-25T10", 62)], "{backend:?}");
        assert_eq!(hour[0].histogram.iter().sum::<i64>(), 62, "{backend:?}");
        // Only the busiest server: `time` has every call of `a`, so top 1 is all of it.
        assert_eq!(store.audit_minutes("a", "2026-11-25T10:00", 13, 1, 100).await.unwrap().len(), 1, "{backend:?}");

        // Gate openings: recorded once per (project, subject), updated on reopening.
        assert_eq!(store.gate_opened_at("a", "sha256:x").await.unwrap(), None);
        store.open_gate("a", "sha256:x").await.unwrap();
        store.open_gate("a", "sha256:x").await.unwrap();
        assert!(store.gate_opened_at("a", "sha256:x").await.unwrap().is_some(), "{backend:?}");
        assert_eq!(store.gate_opened_at("b", "sha256:x").await.unwrap(), None);
    }
}

/// `serve` creating the database while a CLI read opens it: every opener of a new SQLite file
/// succeeds (migrations are serialised across connections and processes by a file lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_openers_of_a_new_sqlite_database_all_succeed() {
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = mcpctl_reconciler::store::sqlite_url(&dir.path().join("race.db"));
        let opens: Vec<_> = (0..12)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { Store::connect(&url).await.map(|_| ()) })
            })
            .collect();
        for o in opens {
            o.await.unwrap().unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
}

/// A SQLite store commits with `synchronous = NORMAL` under WAL unless the URL asks for `full`;
/// the parameter is taken off the URL (the driver does not know it, and other parameters still
/// work) and a bad value is refused by name.
#[tokio::test]
async fn sqlite_synchronous_is_normal_by_default_and_full_on_request() {
    use sqlx::Row;
    let dir = tempfile::tempdir().unwrap();
    let url = mcpctl_reconciler::store::sqlite_url(&dir.path().join("sync.db"));
    let level = |store: Store| async move {
        let journal: String = sqlx::query("PRAGMA journal_mode").fetch_one(store.pool()).await.unwrap().try_get(0).unwrap();
        assert_eq!(journal, "wal");
        let n: i64 = sqlx::query("PRAGMA synchronous").fetch_one(store.pool()).await.unwrap().try_get(0).unwrap();
        n
    };
    assert_eq!(level(Store::connect(&url).await.unwrap()).await, 1, "NORMAL");
    assert_eq!(level(Store::connect(&format!("{url}?synchronous=full")).await.unwrap()).await, 2, "FULL");
    assert_eq!(level(Store::connect(&format!("{url}?mode=rw&synchronous=FULL")).await.unwrap()).await, 2, "FULL");
    assert_eq!(level(Store::connect(&format!("{url}?synchronous=normal&mode=rw")).await.unwrap()).await, 1, "NORMAL");
    let err = Store::connect(&format!("{url}?synchronous=off")).await.unwrap_err();
    assert!(matches!(&err, StoreError::Synchronous(v) if v == "off"), "{err}");
    assert!(err.to_string().contains("`synchronous=off`"), "{err}");
}
