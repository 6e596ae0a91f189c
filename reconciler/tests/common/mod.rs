//! Builders and real databases for the reconciler's integration tests.

pub mod fake_openbao;

use mcpctl_reconciler::Store;
use schema::{DesiredState, SourceFile};

/// YAML of a resource, built from parts (kind, name, optional project, spec as flow YAML).
pub fn doc(kind: &str, name: &str, project: Option<&str>, spec: &str) -> String {
    let project = project.map(|p| format!(", project: {p}")).unwrap_or_default();
    format!("apiVersion: mcpctl.io/v1\nkind: {kind}\nmetadata: {{name: {name}{project}}}\nspec: {spec}\n---\n")
}

/// Validate YAML text as a one-file repo.
pub fn state(yaml: &str) -> DesiredState {
    schema::check(&[SourceFile::new("repo.yaml", yaml)]).unwrap_or_else(|d| panic!("{d}\n{yaml}"))
}

/// A fresh SQLite database in a temp dir (kept alive by the returned guard).
pub async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = mcpctl_reconciler::store::sqlite_url(&dir.path().join("test.db"));
    (Store::connect(&url).await.unwrap(), dir)
}

/// A fresh Postgres database when `MCPCTL_TEST_DATABASE_URL` is set (else `None`: the test is
/// skipped with a note on stderr).
pub async fn postgres() -> Option<Store> {
    let Ok(base) = std::env::var("MCPCTL_TEST_DATABASE_URL") else {
        eprintln!("MCPCTL_TEST_DATABASE_URL not set: skipping the Postgres half of this test");
        return None;
    };
    use sqlx::Connection;
    // Unique per process and call (tests create databases concurrently).
    let name = format!("mcpctl_test_{}_{}", std::process::id(), rand_suffix());
    let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect to MCPCTL_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
    let (prefix, _) = base.rsplit_once('/').expect("URL has a database");
    Some(Store::connect(&format!("{prefix}/{name}")).await.unwrap())
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst) * 1000
        + std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64 % 997
}

/// Every store available here: SQLite always, Postgres when configured.
pub async fn stores() -> Vec<(Store, Option<tempfile::TempDir>)> {
    let (s, d) = sqlite().await;
    let mut v = vec![(s, Some(d))];
    if let Some(pg) = postgres().await {
        v.push((pg, None));
    }
    v
}

/// A bare repository served by a real `git daemon` on 127.0.0.1, and a work clone to commit from.
pub struct GitRemote {
    pub dir: tempfile::TempDir,
    pub url: String,
    port: u16,
    daemon: Option<std::process::Child>,
}

pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "Dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl GitRemote {
    pub fn start() -> GitRemote {
        let dir = tempfile::tempdir().unwrap();
        let bare = dir.path().join("srv/repo.git");
        std::fs::create_dir_all(&bare).unwrap();
        git(&bare, &["init", "-q", "--bare", "-b", "main"]);
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut r = GitRemote { url: format!("git://127.0.0.1:{port}/repo.git"), dir, port, daemon: None };
        r.start_daemon();
        r
    }

    pub fn start_daemon(&mut self) {
        let base = self.dir.path().join("srv");
        // Run git-daemon itself (not `git daemon`, whose wrapper process would survive a kill).
        let exec_path = std::process::Command::new("git").arg("--exec-path").output().unwrap();
        let exec_path = String::from_utf8_lossy(&exec_path.stdout).trim().to_string();
        let child = std::process::Command::new(format!("{exec_path}/git-daemon"))
            .args(["--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1"])
            .arg(format!("--port={}", self.port))
            .arg(format!("--base-path={}", base.display()))
            .arg(&base)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git daemon starts");
        self.daemon = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("git daemon did not listen");
    }

    pub fn stop_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
            // Wait until the port is closed, so "unreachable" really is.
            for _ in 0..100 {
                if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }

    pub fn work(&self) -> std::path::PathBuf {
        self.dir.path().join("work")
    }

    /// Replace the work tree's `repo.yaml` with `yaml`, commit and push; returns the sha.
    pub fn commit(&self, yaml: &str, message: &str) -> String {
        let work = self.work();
        std::fs::write(work.join("repo.yaml"), yaml).unwrap();
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "--allow-empty", "-m", message]);
        git(&work, &["push", "-q", "origin", "main"]);
        git(&work, &["rev-parse", "HEAD"])
    }
}

impl Drop for GitRemote {
    fn drop(&mut self) {
        self.stop_daemon();
    }
}
