//! `mcpctl console` in a real terminal (tmux, 160×48) against a real `mcpctl serve` of a git copy
//! of examples/homelab with its real upstreams (mcp-server-time through uvx): connect, open the
//! gate, call `time__get_current_time` through its form, see the exchange in the inspector, watch
//! another client's call arrive in the Audit tab and in `mcpctl get auditevents --watch` (through
//! the API and from the database), and
//! save a transcript whose lines are checked.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{homelab, listening, remote_and_work, text, Env};

const DEMO: &str = "mcpctl_pat_demo_homelab_0123456789abcdef";

/// The homelab token may also read the audit log (the stream needs it).
const AUDIT_GRANT: &str = "apiVersion: mcpctl.io/v1\nkind: RbacDefinition\nmetadata: {name: console-audit, project: homelab}\nspec:\n  subjects:\n    - {kind: McpToken, name: claude-desktop}\n  roleBindings:\n    - {role: run, action: audit}\n";

/// A tmux server of its own (`-L`), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let o = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().unwrap();
        assert!(o.status.success(), "tmux {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "console"])
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.run(&["send-keys", "-t", "console", k]);
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    fn type_text(&self, s: &str) {
        self.run(&["send-keys", "-t", "console", "-l", s]);
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Wait until the screen shows `what`; the screen then.
    fn wait_for(&self, what: &str, within: Duration) -> String {
        let started = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(started.elapsed() < within, "`{what}` never appeared; the screen:\n{s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output();
    }
}

fn tmux_present() -> bool {
    match Command::new("tmux").arg("-V").output() {
        Ok(o) if o.status.success() => true,
        _ if std::env::var_os("CI").is_some() => panic!("tmux is not installed: CI must run the console test (apt-get install tmux)"),
        _ => {
            eprintln!("SKIPPED: tmux is not installed");
            false
        }
    }
}

fn stop(mut child: Child) {
    Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    let _ = child.wait();
}

#[test]
fn console_calls_a_tool_through_a_form_inspects_it_follows_the_audit_stream_and_saves_a_transcript() {
    if std::env::var("MCPCTL_PEER_PYTHON").is_err() {
        if std::env::var_os("CI").is_some() {
            panic!("MCPCTL_PEER_PYTHON is not set: CI must run the real peers (source .ci/peers.sh)");
        }
        return eprintln!("SKIPPED: MCPCTL_PEER_PYTHON is not set (source .ci/peers.sh)");
    }
    if !tmux_present() {
        return;
    }
    let env = Env::new();
    let (bare, work) = remote_and_work(&env, Some(&homelab()));
    std::fs::write(work.join("access/audit.yaml"), AUDIT_GRANT).unwrap();
    assert!(env.run(&work, &["push", "-m", "homelab"]).status.success());
    let url = format!("file://{}", bare.display());
    let mut serve = Command::new(env!("CARGO_BIN_EXE_mcpctl"))
        .args(["-C", &url, "serve", "--listen", "127.0.0.1:0", "--interval", "1h", "--cache-dir"])
        .arg(env.dir.path().join("cache"))
        .env("MCPCTL_DATABASE_URL", env.db_url())
        .env("MCPCTL_LOG_DIR", env.dir.path().join("logs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (addr, _) = listening(&mut serve);
    let gateway = format!("http://{addr}");
    let endpoint = format!("{gateway}/projects/homelab/mcp");
    let call = |tool: &str, args: &str| {
        Command::new(env!("CARGO_BIN_EXE_mcpctl"))
            .args(["test", "mcp", &endpoint, "-o", "json", "--token", DEMO, "--tool", tool, "--args", args, "--timeout", "20s"])
            .output()
            .unwrap()
    };
    // The first start downloads mcp-server-time (uvx): wait for it to answer.
    let ready = (0..60).any(|_| {
        let ok = call("time__get_current_time", r#"{"timezone":"UTC"}"#).status.success();
        if !ok {
            std::thread::sleep(Duration::from_secs(3));
        }
        ok
    });
    assert!(ready, "the homelab time server never answered");

    // `get auditevents --watch` through the API, and from the database, as other terminals would.
    let watcher = |args: &[&str], db: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mcpctl"))
            .args(["get", "auditevents", "--watch", "--limit", "1", "-o", "json"])
            .args(args)
            .env("MCPCTL_TOKEN", DEMO)
            .env("MCPCTL_DATABASE_URL", db)
            .env_remove("MCPCTL_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        (child, lines, reader)
    };
    let (watch, watched, reader) = watcher(&["--url", &gateway], "sqlite:///nonexistent/never-read.db");
    let (poll, polled, poll_reader) = watcher(&["-p", "homelab"], &env.db_url());

    let dir = env.dir.path().join("term");
    std::fs::create_dir_all(&dir).unwrap();
    let tmux = Tmux { socket: format!("mcpctl-console-{}", std::process::id()) };
    let console = format!(
        "cd {} && MCPCTL_URL={gateway} exec {} console homelab --token {DEMO} 2>console.err",
        dir.display(),
        env!("CARGO_BIN_EXE_mcpctl")
    );
    tmux.run(&["new-session", "-d", "-s", "console", "-x", "160", "-y", "48", &console]);
    let s = tmux.wait_for("GATED (press g)", Duration::from_secs(30));
    assert!(s.contains("protocol 2026-07-28"), "auto picks the stateless generation on mcpctl's gateway:\n{s}");

    // Open the gate through its form.
    tmux.keys(&["g"]);
    tmux.wait_for("Call tool begin_session", Duration::from_secs(5));
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("> time__get_current_time", Duration::from_secs(20));
    assert!(!s.contains("GATED"), "{s}");

    // Call the tool through its form: Enter on an empty required field is refused.
    tmux.keys(&["Enter"]);
    tmux.wait_for("Call tool time__get_current_time", Duration::from_secs(5));
    tmux.keys(&["Enter"]);
    tmux.wait_for("invalid: timezone: required", Duration::from_secs(5));
    tmux.type_text("UTC");
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("── tools/call time__get_current_time ──", Duration::from_secs(20));
    assert!(s.contains("\"timezone\": \"UTC\",") && s.contains("tools/call time__get_current_time: ok"), "{s}");

    // Another client's call arrives in the Audit tab and in the watcher.
    let other = call("time__convert_time", r#"{"source_timezone":"UTC","time":"12:00","target_timezone":"Asia/Tokyo"}"#);
    assert!(other.status.success(), "{}", text(&other));
    tmux.keys(&["5"]);
    let s = tmux.wait_for("convert_time", Duration::from_secs(10));
    assert!(s.contains("Audit · following"), "{s}");
    let audit_line = s.lines().find(|l| l.contains("convert_time")).unwrap();
    assert!(
        audit_line.contains("claude-desktop") && audit_line.contains("time") && audit_line.contains(" ok ") && audit_line.contains(" ms"),
        "{audit_line}"
    );

    // The exchange in the inspector, expanded.
    tmux.keys(&["4"]);
    let s = tmux.wait_for("tools/call (result)", Duration::from_secs(5));
    assert!(s.contains("→ out tools/call") && s.contains("Messages "), "{s}");
    tmux.keys(&["/"]);
    tmux.type_text("tools/call");
    tmux.keys(&["Enter"]);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("(full)", Duration::from_secs(5));
    assert!(s.contains("filter `tools/call`") && s.contains("\"isError\": false"), "{s}");

    // Save the transcript.
    tmux.keys(&["s", "C-u"]);
    tmux.type_text("session.jsonl");
    tmux.keys(&["Enter"]);
    tmux.wait_for("transcript saved to session.jsonl", Duration::from_secs(5));
    tmux.keys(&["q"]);

    // The session-based generation on request (once the first console has quit).
    for _ in 0..50 {
        let alive = Command::new("tmux").args(["-L", &tmux.socket, "has-session", "-t", "console"]).output().unwrap().status.success();
        if !alive {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let legacy = console.replace(" console homelab ", " console homelab --protocol 2025-11-25 --no-audit ");
    tmux.run(&["new-session", "-d", "-s", "console", "-x", "160", "-y", "48", &legacy]);
    tmux.wait_for("protocol 2025-11-25", Duration::from_secs(30));
    tmux.keys(&["q"]);

    let started = Instant::now();
    let seen = |lines: &std::sync::Mutex<Vec<String>>| lines.lock().unwrap().iter().any(|l| l.contains("convert_time"));
    while !(seen(&watched) && seen(&polled)) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(watch);
    stop(poll);
    let _ = (reader.join(), poll_reader.join());
    stop(serve);

    let transcript = std::fs::read_to_string(dir.join("session.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = transcript.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["method"], "server/discover", "{transcript}");
    assert!(lines.iter().all(|l| l["seq"].is_u64() && l["at"].is_string() && l["size"].as_u64() > Some(0)), "{transcript}");
    let sent = lines
        .iter()
        .find(|l| l["direction"] == "out" && l["message"]["params"]["name"] == "time__get_current_time")
        .expect("the call is in the transcript");
    assert_eq!(sent["message"]["params"]["arguments"], serde_json::json!({"timezone": "UTC"}));
    let answer = lines.iter().find(|l| l["direction"] == "in" && l["id"] == sent["id"]).expect("its answer");
    assert_eq!(answer["method"], "tools/call (result)");
    assert!(answer["latencyMs"].as_f64().unwrap() > 0.0, "{answer}");
    assert!(answer["message"]["result"]["content"][0]["text"].as_str().unwrap().contains("\"timezone\": \"UTC\""), "{answer}");

    for (how, lines) in [("the API", &watched), ("the database", &polled)] {
        let lines = lines.lock().unwrap();
        let followed: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(
            followed.iter().any(|e| e["target"] == "convert_time" && e["token"] == "claude-desktop" && e["outcome"] == "ok"),
            "--watch through {how} missed the call: {lines:?}"
        );
        assert!(followed.iter().all(|e| e.get("session").is_none()), "session ids never leave: {lines:?}");
    }
}
