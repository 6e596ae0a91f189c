//! `create project --from` and `create server --from-template` on a copy of examples/homelab:
//! the clone validates, plans only creates, is deployed by one `push`, and serves the same tools
//! as the project it was cloned from (real `mcpctl serve`, real mcp-server-time).

use std::process::{Command, Stdio};
use std::time::Duration;

use super::{homelab, listening, remote_and_work, text, Env};

const DEMO: &str = "mcpctl_pat_demo_homelab_0123456789abcdef";
const LAB2: &str = "mcpctl_pat_lab2_clone_0123456789abcdef";

fn sha256(raw: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(format!("printf %s '{raw}' | sha256sum")).output().unwrap();
    String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap().to_string()
}

#[test]
fn a_template_instance_checks_its_parameters() {
    let env = Env::new();
    let repo = env.copy(&homelab(), "tpl");
    let o = env.run(&repo, &["create", "server", "s2", "--from-template", "http-upstream", "--set", "colour=red", "--set", "host=h"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("template `http-upstream` has no parameter `colour` (it declares: host, port)"), "{}", text(&o));
    let o = env.run(&repo, &["create", "server", "s2", "--from-template", "http-upstream"]);
    assert!(text(&o).contains("needs --set host=… (required, no default)"), "{}", text(&o));
    let o = env.run(&repo, &["create", "server", "s2", "--from-template", "no-such"]);
    assert!(text(&o).contains("template `no-such` is not defined"), "{}", text(&o));
    assert!(!repo.join("servers/s2.yaml").exists(), "a refused create wrote a file");
    let o = env.run(&repo, &["create", "server", "s2", "--from-template", "http-upstream", "--set", "host=127.0.0.2"]);
    assert!(o.status.success(), "{}", text(&o));
    let written = std::fs::read_to_string(repo.join("servers/s2.yaml")).unwrap();
    assert!(written.contains("fromTemplate:") && written.contains("host: 127.0.0.2"), "{written}");
    assert!(env.run(&repo, &["validate"]).status.success());
}

#[test]
fn a_cloned_project_validates_plans_only_creates_and_serves_the_same_tools() {
    if std::env::var("MCPCTL_PEER_PYTHON").is_err() {
        if std::env::var_os("CI").is_some() {
            panic!("MCPCTL_PEER_PYTHON is not set: CI must run the real peers (source .ci/peers.sh)");
        }
        return eprintln!("SKIPPED: MCPCTL_PEER_PYTHON is not set (source .ci/peers.sh)");
    }
    let env = Env::new();
    let (bare, work) = remote_and_work(&env, Some(&homelab()));
    assert!(env.run(&work, &["apply", "--auto-approve"]).status.success());

    let o = env.run(&work, &["create", "project", "homelab", "--from", "research"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("project `homelab` already exists"), "{}", text(&o));
    let o = env.run(&work, &["create", "project", "lab2", "--from", "homelab", "--with-prompts", "--with-agents"]);
    assert!(o.status.success(), "{}", text(&o));
    for f in [
        "projects/lab2.yaml",
        "projects/lab2/prompts/rules.yaml",
        "projects/lab2/agents/assistant.yaml",
        "projects/lab2/personalities/teacher.yaml",
    ] {
        let body = std::fs::read_to_string(work.join(f)).unwrap_or_else(|_| panic!("{f} was not written"));
        assert!(f == "projects/lab2.yaml" || body.contains("project: lab2"), "{f}: {body}");
    }
    let all: String = walk(&work.join("projects/lab2")).iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    assert!(!all.contains("McpToken") && !all.contains("homelab"), "tokens or the old project leaked into the clone:\n{all}");
    assert!(env.run(&work, &["validate"]).status.success());
    let o = env.run(&work, &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains(" to add, 0 to change, 0 to destroy."), "the clone plans only creates:\n{}", text(&o));

    // A token for the clone (tokens are never copied), then one push deploys it.
    std::fs::write(
        work.join("projects/lab2/mcptokens.yaml"),
        format!(
            "apiVersion: mcpctl.io/v1\nkind: McpToken\nmetadata: {{name: ci, project: lab2}}\nspec:\n  hash: \"sha256:{}\"\n  prefix: mcpctl_pat_lab2\n  bindings:\n    - {{role: run, resource: servers}}\n",
            sha256(LAB2)
        ),
    )
    .unwrap();
    let o = env.run(&work, &["push", "-m", "homelab and its clone"]);
    assert!(o.status.success(), "{}", text(&o));
    let url = format!("file://{}", bare.display());
    let serve_db = format!("sqlite://{}", env.dir.path().join("serve.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpctl"))
        .args(["-C", &url, "serve", "--listen", "127.0.0.1:0", "--interval", "1h", "--cache-dir"])
        .arg(env.dir.path().join("cache"))
        .env("MCPCTL_DATABASE_URL", &serve_db)
        .env("MCPCTL_LOG_DIR", env.dir.path().join("logs"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (addr, _) = listening(&mut child);
    let tools = |project: &str, token: &str| -> Option<Vec<String>> {
        let o = Command::new(env!("CARGO_BIN_EXE_mcpctl"))
            .args(["test", "mcp", &format!("http://{addr}/projects/{project}/mcp"), "-o", "json", "--token", token])
            .args(["--expect-tools", "time__get_current_time", "--timeout", "20s"])
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        let mut t: Vec<String> =
            report["tools"].as_array()?.iter().filter_map(|t| t.as_str()).filter(|t| t.starts_with("time__")).map(str::to_owned).collect();
        t.sort();
        o.status.success().then_some(t)
    };
    let mut both = None;
    for _ in 0..60 {
        if let (Some(a), Some(b)) = (tools("homelab", DEMO), tools("lab2", LAB2)) {
            both = Some((a, b));
            break;
        }
        std::thread::sleep(Duration::from_secs(3));
    }
    Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    let _ = child.wait();
    let (original, clone) = both.expect("homelab and its clone never both served the time tools");
    assert_eq!(original, clone);
    assert!(clone.contains(&"time__get_current_time".to_string()), "{clone:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
