//! Scale-out on one Postgres with real processes on 127.0.0.1: two `mcpctl reconcile` on one git
//! remote (exactly one leads; kill -9 the leader and the standby takes over, every commit
//! recorded exactly once) and two `mcpctl gateway` that see a deploy by `LISTEN/NOTIFY`, long
//! before their 60 s poll. Skipped without `MCPCTL_TEST_DATABASE_URL` (CI sets it).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{git, http, listening, remote_and_work, text, Env};

/// A fresh database `mcpctl_test_<pid>_<n>` on the test server, dropped at the end.
pub(crate) struct PgDb {
    base: String,
    name: String,
    pub url: String,
}

impl PgDb {
    /// `None` (the test is skipped, with a note) without `MCPCTL_TEST_DATABASE_URL`.
    pub(crate) fn create() -> Option<PgDb> {
        let Ok(base) = std::env::var("MCPCTL_TEST_DATABASE_URL") else {
            eprintln!("MCPCTL_TEST_DATABASE_URL not set: skipping this Postgres test");
            return None;
        };
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() % 9973;
        let name = format!("mcpctl_test_{}_{n}_{nanos}", std::process::id());
        let (prefix, _) = base.rsplit_once('/').expect("URL has a database");
        let db = PgDb { url: format!("{prefix}/{name}"), base, name };
        db.psql_on(&db.base, &format!("CREATE DATABASE {}", db.name));
        Some(db)
    }

    fn psql_on(&self, url: &str, sql: &str) -> String {
        let o = Command::new("psql").args([url, "-v", "ON_ERROR_STOP=1", "-Atqc", sql]).output().expect("psql runs");
        assert!(o.status.success(), "psql {sql}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// Run `sql` on this database; its rows as `a|b` lines.
    pub(crate) fn psql(&self, sql: &str) -> String {
        self.psql_on(&self.url, sql)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql").args([&self.base, "-qc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)]).output();
    }
}

/// A `mcpctl reconcile` loop on `repo` into `db`, its stderr in `<name>.log`.
fn reconciler(env: &Env, db: &str, repo: &str, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mcpctl"))
        .args(["-C", repo, "reconcile", "--interval", "300ms", "--runtime", "none", "--cache-dir"])
        .arg(env.dir.path().join(format!("cache-{name}")))
        .env("MCPCTL_DATABASE_URL", db)
        .env("MCPCTL_CONFIG", env.dir.path().join("mcpctl-config.yaml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.dir.path().join(format!("{name}.log"))).unwrap())
        .spawn()
        .unwrap()
}

fn log(env: &Env, name: &str) -> String {
    std::fs::read_to_string(env.dir.path().join(format!("{name}.log"))).unwrap_or_default()
}

/// `status -o json`'s reconcilers as (pid, role).
fn roles(env: &Env, db: &str) -> Vec<(u32, String)> {
    let o = env.run_on(db, env.dir.path(), &["status", "-o", "json"]);
    let Ok(s) = serde_json::from_slice::<serde_json::Value>(&o.stdout) else { return Vec::new() };
    s["reconcilers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|r| {
            let pid = r["name"].as_str()?.rsplit(' ').next()?.parse().ok()?;
            Some((pid, r["role"].as_str()?.to_string()))
        })
        .collect()
}

/// Poll `f` every 100 ms until it is `Some`, for at most `bound` (a bound on waiting on a loaded
/// machine, not a speed check): the value and how long it took.
fn wait_for<T>(bound: Duration, mut f: impl FnMut() -> Option<T>) -> Option<(T, Duration)> {
    let start = Instant::now();
    while start.elapsed() < bound {
        if let Some(v) = f() {
            return Some((v, start.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// How many deploy rows record each revision.
fn deploys_per_revision(db: &PgDb) -> Vec<(String, i64)> {
    db.psql("SELECT revision, count(*) FROM deploys GROUP BY revision ORDER BY min(id)")
        .lines()
        .filter_map(|l| l.split_once('|').map(|(r, n)| (r.to_string(), n.parse().unwrap())))
        .collect()
}

fn commit_project(work: &Path, name: &str) -> String {
    std::fs::write(work.join(format!("{name}.yaml")), format!("apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: {name}}}\n"))
        .unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", name]);
    git(work, &["push", "-q", "origin", "main"]);
    git(work, &["rev-parse", "HEAD"])
}

fn kill_all(children: &mut [Child]) {
    for c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// The issue's "done when": two reconcilers on one Postgres, one leads; killing it (SIGKILL)
/// hands over to the standby within 10 s; a commit pushed right at the kill and one after it are
/// each recorded exactly once.
#[test]
fn two_reconcilers_one_leader_and_the_standby_takes_over_without_losing_a_deploy() {
    let Some(db) = PgDb::create() else { return };
    let env = Env::new();
    let (bare, work) = remote_and_work(&env, None);
    let first = commit_project(&work, "one");
    let repo = format!("file://{}", bare.display());
    let mut procs = vec![reconciler(&env, &db.url, &repo, "a"), reconciler(&env, &db.url, &repo, "b")];
    let pids: Vec<u32> = procs.iter().map(Child::id).collect();

    let settled = wait_for(Duration::from_secs(60), || {
        let r = roles(&env, &db.url);
        let deployed = db.psql("SELECT count(*) FROM deploys WHERE outcome = 'applied'") == "1";
        (r.len() == 2 && r.iter().filter(|(_, role)| role == "leader").count() == 1 && deployed).then_some(r)
    });
    let Some((r, _)) = settled else {
        let r = roles(&env, &db.url);
        kill_all(&mut procs);
        panic!("no single leader with the first commit deployed: {r:?}\na: {}\nb: {}", log(&env, "a"), log(&env, "b"));
    };
    let leader_pid = r.iter().find(|(_, role)| role == "leader").unwrap().0;
    let leader = pids.iter().position(|p| *p == leader_pid).expect("the leader is one of ours");
    let standby = 1 - leader;
    let standby_name = ["a", "b"][standby];
    let standby_log = log(&env, standby_name);
    assert_eq!(standby_log.matches("standby: waiting for the leader lock").count(), 1, "{standby_log}");

    // A commit pushed at the moment of the kill: the old leader may or may not have deployed it.
    let second = commit_project(&work, "two");
    procs[leader].kill().unwrap();
    let _ = procs[leader].wait();
    let standby_pid = pids[standby];
    let took = wait_for(Duration::from_secs(30), || {
        roles(&env, &db.url).iter().any(|(p, role)| *p == standby_pid && role == "leader").then_some(())
    });
    let db = &db;
    let deployed = |sha: &str| {
        let sha = sha.to_string();
        move || (db.psql("SELECT revision FROM deploys WHERE outcome <> 'failed' ORDER BY id DESC LIMIT 1") == sha).then_some(())
    };
    let second_deployed = wait_for(Duration::from_secs(30), deployed(&second));
    let third = commit_project(&work, "three");
    let third_deployed = wait_for(Duration::from_secs(30), deployed(&third));
    let counts = deploys_per_revision(db);
    let logs = format!("a: {}\nb: {}", log(&env, "a"), log(&env, "b"));
    kill_all(&mut procs);

    let (_, takeover) = took.unwrap_or_else(|| panic!("the standby never took the lock\n{logs}"));
    eprintln!("standby took the leader lock {takeover:?} after the leader was killed");
    assert!(takeover < Duration::from_secs(10), "takeover took {takeover:?}\n{logs}");
    assert!(second_deployed.is_some() && third_deployed.is_some(), "{counts:?}\n{logs}");
    assert_eq!(counts, vec![(first, 1), (second, 1), (third, 1)], "{logs}");
    assert!(log(&env, standby_name).contains("leader: took the leader lock"), "{logs}");
}

/// Two `mcpctl gateway` polling every 60 s serve a project deployed by another process within
/// seconds: only the `mcpctl_deploy` notification can have told them.
#[test]
fn gateways_reload_on_the_deploy_notification_long_before_their_poll() {
    let Some(db) = PgDb::create() else { return };
    let env = Env::new();
    let repo = env.copy(&super::homelab(), "repo");
    let o = env.run_on(&db.url, &repo, &["apply", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut gateways: Vec<Child> = (0..2)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_mcpctl"))
                .args(["gateway", "--listen", "127.0.0.1:0", "--poll", "60s"])
                .env("MCPCTL_DATABASE_URL", &db.url)
                .env("MCPCTL_CONFIG", env.dir.path().join("mcpctl-config.yaml"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let addrs: Vec<String> = gateways.iter_mut().map(|g| listening(g).0).collect();
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let headers = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];
    let before: Vec<u16> = addrs.iter().map(|a| http(a, "POST", "/projects/lab2/mcp", &headers, init).0).collect();
    // Let each listener connect (its first wake-up reloads what is already there).
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(
        repo.join("projects/lab2.yaml"),
        "apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {name: lab2}\nspec: {servers: [time], public: true}\n",
    )
    .unwrap();
    let o = env.run_on(&db.url, &repo, &["apply", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    let seen: Vec<Option<((), Duration)>> = addrs
        .iter()
        .map(|a| wait_for(Duration::from_secs(20), || (http(a, "POST", "/projects/lab2/mcp", &headers, init).0 == 200).then_some(())))
        .collect();
    kill_all(&mut gateways);
    assert_eq!(before, vec![404, 404]);
    for (i, s) in seen.iter().enumerate() {
        let (_, after) = s.unwrap_or_else(|| panic!("gateway {i} never served the new project"));
        eprintln!("gateway {i} served the new deploy {after:?} after `apply` returned");
        // Far below the 60 s poll: only the notification explains it.
        assert!(after < Duration::from_secs(20), "gateway {i} took {after:?}");
    }
}
