//! `mcpctl backup` / `mcpctl restore`: the runtime data of a real installation (an applied repo,
//! audit events, chat threads and messages, gate openings, token use, sealed secret values) moved
//! from SQLite to the local Postgres, restored twice, and refused when the archive is newer, cut
//! short or corrupt — with nothing half-written.

use std::path::Path;

use reconciler::backup::{NOT_BACKED_UP, TABLES};
use reconciler::Store;
use sqlx::Row;

use super::{homelab, text, Env};

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// Runtime data a working installation accumulates, written as the gateway writes it.
async fn add_runtime_data(store: &Store) {
    let pool = store.pool();
    for i in 0..150 {
        sqlx::query(
            "INSERT INTO audit_events (at, project, token, token_prefix, session, method, server, target, duration_us, outcome, error, revision, thread_id) \
             VALUES ($1, 'homelab', 'ci', 'mcpctl_pat_ab', 's1', 'tools/call', 'time', 'get_current_time', $2, $3, $4, 'abc123', $5)",
        )
        .bind(format!("2026-12-01T00:00:{:02}.000Z", i % 60))
        .bind(1000 + i64::from(i))
        .bind(if i % 7 == 0 { "error" } else { "ok" })
        .bind((i % 7 == 0).then(|| "upstream said \"no\"\nline two ✓".to_string()))
        .bind((i % 10 == 0).then(|| "t-1".to_string()))
        .execute(pool)
        .await
        .unwrap();
    }
    for (id, title) in [("t-1", "first"), ("t-2", "second")] {
        sqlx::query("INSERT INTO chat_threads (id, project, agent, owner, personality, title, created_at, updated_at) VALUES ($1, 'homelab', 'helper', 'user:alice', NULL, $2, '2026-12-01T00:00:00Z', '2026-12-01T00:00:01Z')")
            .bind(id)
            .bind(title)
            .execute(pool)
            .await
            .unwrap();
    }
    for (thread, role, content, tokens) in
        [("t-1", "user", "hi", None), ("t-1", "assistant", "hello", Some(12_i64)), ("t-2", "user", "{\"json\": true}", None)]
    {
        sqlx::query("INSERT INTO chat_messages (thread_id, role, content, is_error, status, model, prompt_tokens, completion_tokens, latency_ms, created_at, updated_at) VALUES ($1, $2, $3, 0, 'done', 'gpt', $4, $4, 250, '2026-12-01T00:00:00Z', '2026-12-01T00:00:00Z')")
            .bind(thread)
            .bind(role)
            .bind(content)
            .bind(tokens)
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO gate_openings (project, subject, opened_at) VALUES ('homelab', 'token:ci', '2026-12-01T00:00:00Z')")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO token_usage (hash, project, token, last_used_at, uses) VALUES ('ab12', 'homelab', 'ci', '2026-12-01T00:00:00Z', 42)",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO secret_values (secret, key, ciphertext) VALUES ('homelab/db', 'password', '-----BEGIN AGE ENCRYPTED FILE-----')",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// Every backed-up table's rows, as text, in key order.
async fn dump(store: &Store) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for t in TABLES {
        let cols: Vec<String> = t
            .columns
            .iter()
            .map(|(c, ty)| match ty {
                reconciler::backup::Column::Int => format!("COALESCE(CAST({c} AS TEXT), 'NULL')"),
                reconciler::backup::Column::Text => format!("COALESCE({c}, 'NULL')"),
            })
            .collect();
        let sql = format!("SELECT {} AS r FROM {} ORDER BY {}", cols.join(" || '|' || "), t.name, t.key.join(", "));
        let rows = sqlx::query(&sql).fetch_all(store.pool()).await.unwrap();
        out.push((t.name.to_string(), rows.iter().map(|r| r.get::<String, _>("r")).collect()));
    }
    out
}

fn counts(dump: &[(String, Vec<String>)]) -> Vec<(String, usize)> {
    dump.iter().map(|(t, rows)| (t.clone(), rows.len())).collect()
}

/// A fresh Postgres database, or `None` without `MCPCTL_TEST_DATABASE_URL` (the test skips).
fn postgres_url() -> Option<String> {
    let Ok(base) = std::env::var("MCPCTL_TEST_DATABASE_URL") else {
        eprintln!("SKIPPED: MCPCTL_TEST_DATABASE_URL is not set (the Postgres half of this test)");
        return None;
    };
    let name = format!("mcpctl_test_backup_{}_{}", std::process::id(), std::time::UNIX_EPOCH.elapsed().unwrap().subsec_nanos());
    block_on(async {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect to MCPCTL_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
    });
    Some(format!("{}/{name}", base.rsplit_once('/').expect("URL has a database").0))
}

/// An applied homelab with runtime data in the Env's SQLite, and its backup at `archive`.
fn installation(env: &Env, archive: &Path) -> Vec<(String, Vec<String>)> {
    let o = env.run(&homelab(), &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", text(&o));
    let rows = block_on(async {
        let store = Store::connect(&env.db_url()).await.unwrap();
        add_runtime_data(&store).await;
        dump(&store).await
    });
    let o = env.run(&homelab(), &["backup", "-o", archive.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["tables"].as_array().unwrap().len(), TABLES.len());
    rows
}

#[test]
fn every_table_is_backed_up_or_deliberately_left_out() {
    let env = Env::new();
    assert!(env.run(&homelab(), &["apply", "--auto-approve"]).status.success());
    let tables: Vec<String> = block_on(async {
        let store = Store::connect(&env.db_url()).await.unwrap();
        let rows = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .fetch_all(store.pool())
            .await
            .unwrap();
        rows.iter().map(|r| r.get::<String, _>("name")).collect()
    });
    for t in &tables {
        let known = TABLES.iter().any(|b| b.name == t) || NOT_BACKED_UP.iter().any(|(n, _)| n == t);
        assert!(known, "table {t} (a new migration?) is neither in backup::TABLES nor in backup::NOT_BACKED_UP: decide");
    }
    // And every listed column exists: a backup of the applied store reads each of them.
    let archive = env.dir.path().join("b.jsonl");
    let o = env.run(&homelab(), &["backup", "-o", archive.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!archive.with_extension("jsonl.partial").exists());
    // To stdout (no -o, or `-o -`): the archive alone there, the summary on stderr.
    for args in [&["backup"][..], &["backup", "-o", "-"]] {
        let o = env.run(&homelab(), args);
        assert!(o.status.success(), "{}", text(&o));
        let (piped, filed) = (String::from_utf8(o.stdout.clone()).unwrap(), std::fs::read_to_string(&archive).unwrap());
        assert!(piped.starts_with("{\"format\":\"mcpctl-backup\""), "{piped}");
        assert!(piped.lines().skip(1).eq(filed.lines().skip(1)), "stdout holds the same rows as the file");
        assert!(String::from_utf8_lossy(&o.stderr).contains("backed up"), "{}", text(&o));
    }
}

#[test]
fn sqlite_to_postgres_is_a_backup_and_a_restore_and_serves_at_once() {
    let env = Env::new();
    let archive = env.dir.path().join("backup.jsonl");
    let before = installation(&env, &archive);
    let text_of_archive = std::fs::read_to_string(&archive).unwrap();
    let header: serde_json::Value = serde_json::from_str(text_of_archive.lines().next().unwrap()).unwrap();
    assert_eq!(
        (header["format"].as_str(), header["version"].as_u64(), header["source"].as_str()),
        (Some("mcpctl-backup"), Some(1), Some("sqlite"))
    );
    assert!(text_of_archive.lines().last().unwrap().starts_with("{\"end\":"), "a closing line with the counts");

    let Some(pg) = postgres_url() else { return };
    let o = env.run(&homelab(), &["--database-url", &pg, "restore", archive.to_str().unwrap(), "-o", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let after = block_on(async { dump(&Store::connect(&pg).await.unwrap()).await });
    assert_eq!(after, before, "Postgres holds exactly the SQLite rows");
    // A backup of the Postgres installation (its REPEATABLE READ snapshot) carries the same rows.
    let again = env.dir.path().join("from-postgres.jsonl");
    let o = env.run(&homelab(), &["--database-url", &pg, "backup", "-o", again.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let again = std::fs::read_to_string(&again).unwrap();
    assert!(again.lines().next().unwrap().contains("\"source\":\"postgres\""));
    assert!(again.lines().skip(1).eq(text_of_archive.lines().skip(1)), "the rows differ between the SQLite and the Postgres archive");

    // The restored installation serves what was deployed, with its history, at once...
    let o = env.run(&homelab(), &["--database-url", &pg, "plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "the deployed snapshot came along:\n{}", text(&o));
    let o = env.run(&homelab(), &["--database-url", &pg, "history", "-o", "json"]);
    let history: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let restored_ids: Vec<i64> = history.as_array().unwrap().iter().map(|d| d["id"].as_i64().unwrap()).collect();
    // ...and new rows follow the restored ids (the sequences moved past them).
    let o = env.run(&homelab(), &["--database-url", &pg, "apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = env.run(&homelab(), &["--database-url", &pg, "history", "-o", "json"]);
    let history: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let newest = history[0]["id"].as_i64().unwrap();
    assert_eq!(newest, restored_ids.iter().max().unwrap() + 1, "{history}");
}

#[test]
fn restoring_twice_changes_nothing_the_second_time() {
    let env = Env::new();
    let archive = env.dir.path().join("backup.jsonl");
    let before = installation(&env, &archive);
    let target = format!("sqlite://{}", env.dir.path().join("restored.db").display());
    let restore = || {
        let o = env.run(&homelab(), &["--database-url", &target, "restore", archive.to_str().unwrap(), "-o", "json"]);
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let first = restore();
    let second = restore();
    let inserted = |s: &serde_json::Value| s["tables"].as_array().unwrap().iter().map(|t| t["inserted"].as_u64().unwrap()).sum::<u64>();
    let total: usize = counts(&before).iter().map(|(_, n)| n).sum();
    assert_eq!(inserted(&first), total as u64);
    assert_eq!(inserted(&second), 0, "{second}");
    let after = block_on(async { dump(&Store::connect(&target).await.unwrap()).await });
    assert_eq!(after, before);
    // Restoring into the installation it came from is harmless too.
    let o = env.run(&homelab(), &["restore", archive.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("0 new"), "{}", text(&o));
}

#[test]
fn newer_cut_or_corrupt_archives_are_refused_and_restore_nothing() {
    let env = Env::new();
    let archive = env.dir.path().join("backup.jsonl");
    installation(&env, &archive);
    let good = std::fs::read_to_string(&archive).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let corrupt_at = lines.len() / 2;
    let cases: Vec<(&str, String, String)> = vec![
        (
            "newer",
            good.replacen("\"version\":1", "\"version\":2", 1),
            "archive format version 2 is newer than this mcpctl reads (up to 1)".into(),
        ),
        (
            "cut",
            lines[..lines.len() - 1].join("\n"),
            format!("the archive ends at line {} without its closing `end` line", lines.len() - 1),
        ),
        (
            "corrupt",
            lines.iter().enumerate().map(|(i, l)| if i == corrupt_at { &l[..l.len() / 2] } else { l }).collect::<Vec<_>>().join("\n"),
            format!("line {}: not JSON", corrupt_at + 1),
        ),
        (
            "mistyped",
            good.replacen("\"duration_us\":1000", "\"duration_us\":\"slow\"", 1),
            "audit_events.duration_us must be an integer or null".into(),
        ),
        ("not a backup", "{\"hello\": 1}\n".into(), "line 1: not an mcpctl backup".into()),
    ];
    for (what, content, expected) in cases {
        let file = env.dir.path().join(format!("{}.jsonl", what.replace(' ', "-")));
        std::fs::write(&file, content).unwrap();
        let target = format!("sqlite://{}", env.dir.path().join(format!("{}.db", what.replace(' ', "-"))).display());
        let o = env.run(&homelab(), &["--database-url", &target, "restore", file.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{what}: {}", text(&o));
        assert!(text(&o).contains(&expected), "{what}: expected `{expected}` in:\n{}", text(&o));
        assert!(text(&o).contains("nothing was restored"), "{what}: {}", text(&o));
        let rows = block_on(async { dump(&Store::connect(&target).await.unwrap()).await });
        assert!(rows.iter().all(|(_, r)| r.is_empty()), "{what}: half-written: {:?}", counts(&rows));
    }
}
