//! Crash safety of the real binary: `mcpctl apply` killed with SIGKILL at random moments of an
//! apply, and of the store's migrations, on SQLite and on Postgres. After every kill the store
//! holds the old or the new state (compared whole, never a mix), the migration table is a clean
//! prefix (no migration half-applied), and the next run recovers and finishes.
//!
//! `MCPCTL_CRASH_RUNS` kills per case (10 by default; docs/reliability.md records a 100-run figure).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::scale_out::PgDb;
use super::{text, Env};

fn runs() -> usize {
    std::env::var("MCPCTL_CRASH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(10)
}

/// A repo of one project with `servers` servers whose descriptions carry `version`.
fn repo(env: &Env, name: &str, servers: usize, version: &str) -> PathBuf {
    let dir = env.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let names: Vec<String> = (0..servers).map(|i| format!("s{i}")).collect();
    let mut yaml =
        format!("apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: crash}}\nspec: {{servers: [{}]}}\n", names.join(", "));
    for n in &names {
        yaml += &format!(
            "---\napiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: {n}}}\nspec: {{description: \"{n} at {version}\", url: \"http://127.0.0.1:9/{n}\"}}\n"
        );
    }
    std::fs::write(dir.join("all.yaml"), yaml).unwrap();
    dir
}

/// The whole store as `get all -o json` prints it, minus what differs between two applies of
/// the same repo (timestamps and revisions are compared by the deploy history instead).
fn state(env: &Env, db: &str) -> String {
    let o = env.run_on(db, env.dir.path(), &["get", "all", "-o", "json"]);
    assert!(o.status.success(), "reading the store after a kill: {}", text(&o));
    let mut v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    strip(&mut v);
    v.to_string()
}

fn strip(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for k in ["updatedAt", "revision", "deployedAt", "createdAt"] {
                m.remove(k);
            }
            m.values_mut().for_each(strip);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
        _ => {}
    }
}

/// Start `mcpctl -C dir apply -q`, SIGKILL it after `delay`; whether it had exited by then.
fn apply_killed_after(env: &Env, db: &str, dir: &Path, delay: Duration) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpctl"))
        .arg("-C")
        .arg(dir)
        .args(["apply", "-q"])
        .env("MCPCTL_DATABASE_URL", db)
        .env("MCPCTL_CONFIG", env.dir.path().join("mcpctl-config.yaml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill();
    let _ = child.wait();
    finished
}

/// A delay in [0, max) from a small xorshift seeded by `i` (reproducible per run index).
fn delay(i: usize, max: Duration) -> Duration {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    max.mul_f64((x % 10_000) as f64 / 10_000.0)
}

/// Both backends here: a SQLite file, and a fresh Postgres database when configured.
fn databases(env: &Env, tag: &str) -> Vec<(String, Option<PgDb>)> {
    let mut v = vec![(format!("sqlite://{}", env.dir.path().join(format!("{tag}.db")).display()), None)];
    if let Some(pg) = PgDb::create() {
        v.push((pg.url.clone(), Some(pg)));
    }
    v
}

#[test]
fn apply_killed_at_random_moments_leaves_the_old_or_the_new_state() {
    let env = Env::new();
    let (a, b) = (repo(&env, "a", 300, "v1"), repo(&env, "b", 400, "v2"));
    for (db, _pg) in databases(&env, "apply") {
        // The two states, and how long a whole apply takes here (the kills spread over 1.5× that).
        let o = env.run_on(&db, &a, &["apply", "-q"]);
        assert!(o.status.success(), "{}", text(&o));
        let old = state(&env, &db);
        let started = Instant::now();
        let o = env.run_on(&db, &b, &["apply", "-q"]);
        let took = started.elapsed();
        assert!(o.status.success(), "{}", text(&o));
        let new = state(&env, &db);
        assert_ne!(old, new);
        let (mut saw_old, mut saw_new) = (0, 0);
        let mut current = new.clone();
        for i in 0..runs() {
            let (target, target_state) = if current == old { (&b, &new) } else { (&a, &old) };
            let finished = apply_killed_after(&env, &db, target, delay(i, took.mul_f64(1.5)));
            let now = state(&env, &db);
            assert!(now == old || now == new, "run {i} on {db}: the store holds neither the old nor the new state");
            if finished {
                assert_eq!(&now, target_state, "run {i}: an apply that exited left the old state");
            }
            if &now == target_state {
                saw_new += 1;
            } else {
                saw_old += 1;
            }
            current = now;
        }
        // Restart recovers: the next apply finishes and the store is exactly the repo.
        let o = env.run_on(&db, &a, &["apply", "-q"]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(state(&env, &db), old);
        let o = env.run_on(&db, &a, &["plan", "--detailed-exitcode"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        eprintln!("{db}: {} kills during apply: {saw_old} left the old state, {saw_new} the new (apply takes {took:?})", runs());
    }
}

/// Applied migration versions and whether any is recorded as failed.
fn migrations(db: &str) -> (Vec<i64>, bool) {
    let sql = "SELECT version, success FROM _sqlx_migrations ORDER BY version";
    let out = if let Some(path) = db.strip_prefix("sqlite://") {
        if !Path::new(path).exists() {
            return (Vec::new(), false);
        }
        let script = format!(
            "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\ntry:\n  rows=c.execute('{sql}').fetchall()\nexcept sqlite3.OperationalError:\n  rows=[]\nfor v,s in rows: print(f'{{v}}|{{int(s)}}')\n"
        );
        let o = Command::new("python3").args(["-c", &script, path]).output().expect("python3 runs");
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    } else {
        let o = Command::new("psql").args([db, "-Atqc", sql]).output().unwrap();
        if !o.status.success() {
            assert!(text(&o).contains("does not exist"), "{}", text(&o));
            return (Vec::new(), false);
        }
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let mut versions = Vec::new();
    let mut failed = false;
    for l in out.lines().filter(|l| !l.is_empty()) {
        let (v, s) = l.split_once('|').unwrap();
        versions.push(v.parse().unwrap());
        failed |= s == "0";
    }
    (versions, failed)
}

#[test]
fn migrations_killed_at_random_moments_finish_on_the_next_run() {
    let env = Env::new();
    let a = repo(&env, "m", 20, "v1");
    // The full list of migrations, from a database migrated to the end.
    let all = {
        let db = format!("sqlite://{}", env.dir.path().join("full.db").display());
        assert!(env.run_on(&db, &a, &["apply", "-q"]).status.success());
        migrations(&db).0
    };
    assert!(all.len() >= 8, "{all:?}");
    let (mut partial, mut kills) = (0, 0);
    for i in 0..runs() {
        for (db, pg) in databases(&env, &format!("mig{i}")) {
            let finished = apply_killed_after(&env, &db, &a, delay(i, Duration::from_millis(400)));
            kills += 1;
            let (versions, failed) = migrations(&db);
            assert!(!failed, "run {i} on {db}: a migration is recorded as failed");
            assert_eq!(versions[..], all[..versions.len()], "run {i} on {db}: applied migrations are not a prefix");
            if !versions.is_empty() && versions.len() < all.len() {
                partial += 1;
            }
            if finished {
                assert_eq!(versions, all);
            }
            // The next run recovers: the schema completes and the repo applies.
            let o = env.run_on(&db, &a, &["apply", "-q"]);
            assert!(o.status.success(), "run {i} on {db}: {}", text(&o));
            assert_eq!(migrations(&db).0, all);
            drop(pg);
        }
    }
    eprintln!("{kills} kills during migrations (SQLite and Postgres): {partial} left a partly migrated schema, all recovered");
}
