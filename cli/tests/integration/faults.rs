//! Faults under a running `mcpctl`: the git remote gone (the reconciler retries with backoff
//! while the gateway keeps serving its snapshot, and deploys once it is back), and Postgres
//! restarted under load (a private cluster on its own port, so the shared one is untouched:
//! requests served from the snapshot never fail, and the gateway follows deploys afterwards).
//! The upstream killed mid-call is `gateway/tests/integration/mcp.rs`'
//! `upstream_killed_mid_call_errors_then_restarts`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{git, http, listening, remote_and_work, text, Env};

const TOKEN: &str = "Bearer mcpctl_pat_demo_homelab_0123456789abcdef";

fn wait_until(bound: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < bound {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn project_doc(name: &str) -> String {
    format!("apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: {name}}}\nspec: {{servers: [time], public: true}}\n")
}

/// Whether project `p` answers an MCP `initialize` (it is deployed and served).
fn serves(addr: &str, p: &str) -> bool {
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let headers = [("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];
    http(addr, "POST", &format!("/projects/{p}/mcp"), &headers, init).0 == 200
}

#[test]
fn an_unreachable_git_remote_is_retried_with_backoff_while_the_snapshot_is_served() {
    let env = Env::new();
    let (bare, work) = remote_and_work(&env, Some(&super::homelab()));
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "homelab"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let url = format!("file://{}", bare.display());
    let log = env.dir.path().join("serve.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpctl"))
        .args(["-C", &url, "serve", "--listen", "127.0.0.1:0", "--interval", "4s", "--runtime", "none", "--cache-dir"])
        .arg(env.dir.path().join("cache"))
        .env("MCPCTL_DATABASE_URL", env.db_url())
        .env("MCPCTL_CONFIG", env.dir.path().join("mcpctl-config.yaml"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let (addr, _) = listening(&mut child);
    // The remote disappears (moved away: every fetch fails).
    let gone = env.dir.path().join("remote-away.git");
    std::fs::rename(&bare, &gone).unwrap();
    let retried =
        wait_until(Duration::from_secs(30), || std::fs::read_to_string(&log).unwrap_or_default().matches("reconcile failed").count() >= 3);
    // Meanwhile the snapshot is served: the REST API and the project's MCP endpoint.
    let listed = http(&addr, "GET", "/api/v1/servers", &[("Authorization", TOKEN)], "").0;
    let mcp = http(&addr, "POST", "/projects/homelab/mcp", &[("Authorization", TOKEN), ("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")], r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#).0;
    // Back, with a new commit: deployed at the next retry.
    std::fs::rename(&gone, &bare).unwrap();
    std::fs::write(work.join("projects/after.yaml"), project_doc("after")).unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "after"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let recovered = wait_until(Duration::from_secs(40), || serves(&addr, "after"));
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = child.wait();
    let log = plain(&std::fs::read_to_string(&log).unwrap_or_default());
    assert!(retried, "the reconciler did not retry: {log}");
    assert_eq!((listed, mcp), (200, 200), "the snapshot was not served while the remote was gone");
    assert!(recovered, "the commit pushed after the remote came back was not deployed: {log}");
    // Backoff: the waits double (2 s, 4 s), capped at the 4 s interval.
    assert!(log.contains("retry_in=2s") && log.contains("retry_in=4s"), "{log}");
}

/// `text` without ANSI colour sequences (the log's fields are coloured).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

/// A private Postgres cluster in a temp dir on a free port (the shared one stays untouched),
/// run as the `postgres` user when this process is root.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// `None` (the test is skipped) when no PostgreSQL server binaries are installed.
    fn start() -> Option<PrivatePostgres> {
        let bin =
            std::fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path().join("bin")).find(|b| b.join("initdb").exists())?;
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = PrivatePostgres { dir, bin, port };
        if is_root() {
            assert!(Command::new("chown").args(["-R", "postgres"]).arg(pg.dir.path()).status().unwrap().success());
        }
        let o = pg.run("initdb", &["--no-sync", "-A", "trust", "-U", "postgres", "-D"], &[pg.data().as_os_str()]);
        assert!(o.status.success(), "initdb: {}", text(&o));
        pg.ctl("start");
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, tool: &str, args: &[&str], paths: &[&std::ffi::OsStr]) -> std::process::Output {
        let exe = self.bin.join(tool);
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.args(args).args(paths).current_dir(self.dir.path()).output().unwrap()
    }

    fn ctl(&self, action: &str) {
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        let log = self.dir.path().join("pg.log");
        let mut args = vec!["-w", "-t", "30", "-D"];
        let data = self.data();
        let data = data.to_str().unwrap();
        args.push(data);
        let log = log.to_str().unwrap();
        if action == "start" {
            args.extend(["-o", &opts, "-l", log]);
        } else {
            args.extend(["-m", "fast"]);
        }
        args.push(action);
        let o = self.run("pg_ctl", &args, &[]);
        assert!(o.status.success(), "pg_ctl {action}: {}\n{}", text(&o), std::fs::read_to_string(log).unwrap_or_default());
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run("pg_ctl", &["-w", "-D", data.to_str().unwrap(), "-m", "immediate", "stop"], &[]);
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

#[test]
fn postgres_restarted_under_load_the_gateway_serves_its_snapshot_and_follows_after() {
    let Some(pg) = PrivatePostgres::start() else {
        eprintln!("no PostgreSQL server binaries under /usr/lib/postgresql: skipping");
        return;
    };
    let env = Env::new();
    let repo = env.copy(&super::homelab(), "repo");
    let o = env.run_on(&pg.url(), &repo, &["apply", "-q"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut gw: Child = Command::new(env!("CARGO_BIN_EXE_mcpctl"))
        .args(["gateway", "--listen", "127.0.0.1:0", "--poll", "1s", "--rate-limit", "off"])
        .env("MCPCTL_DATABASE_URL", pg.url())
        .env("MCPCTL_CONFIG", env.dir.path().join("mcpctl-config.yaml"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(env.dir.path().join("gw.log")).unwrap())
        .spawn()
        .unwrap();
    let (addr, _) = listening(&mut gw);
    // Load: 4 clients reading the snapshot (REST list and MCP initialize) until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (stop, ok, failed, addr) = (stop.clone(), ok.clone(), failed.clone(), addr.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let good = if i % 2 == 0 {
                        http(&addr, "GET", "/api/v1/servers", &[("Authorization", TOKEN)], "").0 == 200
                    } else {
                        http(&addr, "POST", "/projects/homelab/mcp", &[("Authorization", TOKEN), ("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")], r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#).0 == 200
                    };
                    if good { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    pg.ctl("stop");
    let during_before = ok.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_secs(2));
    let served_while_down = ok.load(Ordering::Relaxed) - during_before;
    let ready_while_down = http(&addr, "GET", "/readyz", &[], "").0;
    pg.ctl("start");
    std::thread::sleep(Duration::from_secs(1));
    // After the restart, a deploy reaches the gateway (pool and listener reconnected).
    std::fs::write(repo.join("projects/after.yaml"), project_doc("after")).unwrap();
    let o = env.run_on(&pg.url(), &repo, &["apply", "-q"]);
    let followed = o.status.success() && wait_until(Duration::from_secs(20), || serves(&addr, "after"));
    stop.store(true, Ordering::Relaxed);
    clients.into_iter().for_each(|c| c.join().unwrap());
    let ready_after = http(&addr, "GET", "/readyz", &[], "").0;
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    // Nothing lost: every use of the token is counted once the database is back (the uses
    // gathered while it was down are written with a later batch).
    let uses = || {
        let o = Command::new("psql").args([&pg.url(), "-Atqc", "SELECT coalesce(sum(uses), 0) FROM token_usage"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().parse::<u64>().unwrap_or(0)
    };
    let counted = wait_until(Duration::from_secs(15), || uses() == ok + failed);
    let _ = gw.kill();
    let _ = gw.wait();
    let log = std::fs::read_to_string(env.dir.path().join("gw.log")).unwrap_or_default();
    eprintln!("postgres restart under load: {ok} requests answered, {failed} failed, {served_while_down} while the database was down");
    assert_eq!(failed, 0, "requests failed while Postgres restarted ({ok} ok): {log}");
    assert!(served_while_down > 0, "nothing was served while the database was down");
    assert_eq!((ready_while_down, ready_after), (503, 200), "/readyz tells whether the store is reachable");
    assert!(followed, "the deploy after the restart did not reach the gateway: {}\n{log}", text(&o));
    assert!(counted, "token uses counted {} of {}: {log}", uses(), ok + failed);
}
