//! The local runtime against real processes.

use std::collections::HashMap;
use std::time::Duration;

use crate::common::{doc, state};
use mcpctl_reconciler::runtime::{LocalRuntime, ProcessState};

fn server(args: &str) -> String {
    doc("Server", "worker", None, &format!("{{command: sh, args: [\"-c\", \"echo up {args} >&2; exec sleep 60\"]}}"))
        + &doc("Server", "remote", None, "{url: \"http://127.0.0.1:9/mcp\"}")
}

async fn running_pid(rt: &LocalRuntime, name: &str) -> u32 {
    for _ in 0..200 {
        if let Some(ProcessState::Running { pid }) = rt.status().iter().find(|s| s.name == name).map(|s| s.state.clone()) {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{name} never ran: {:?}", rt.status());
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z ")
}

#[tokio::test]
async fn servers_are_started_restarted_changed_and_stopped() {
    let logs = tempfile::tempdir().unwrap();
    let mut rt = LocalRuntime::new(logs.path().to_path_buf());
    rt.sync(&state(&server("v1"))).await;
    let pid = running_pid(&rt, "worker").await;
    let remote = rt.status().into_iter().find(|s| s.name == "remote").unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(logs.path().join("worker.log")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the log is readable by other users");
    assert!(matches!(remote.state, ProcessState::External { .. }), "{remote:?}");

    // Same spec: untouched.
    rt.sync(&state(&server("v1"))).await;
    assert_eq!(running_pid(&rt, "worker").await, pid);

    // Killed: restarted after the backoff, restart counted, log kept.
    std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status().unwrap();
    let mut new_pid = pid;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if let Some(ProcessState::Running { pid: p }) = rt.status().iter().find(|s| s.name == "worker").map(|s| s.state.clone()) {
            if p != pid {
                new_pid = p;
                break;
            }
        }
    }
    assert_ne!(new_pid, pid, "not restarted: {:?}", rt.status());
    assert_eq!(rt.status().iter().find(|s| s.name == "worker").unwrap().restarts, 1);
    let log = std::fs::read_to_string(logs.path().join("worker.log")).unwrap();
    assert!(log.matches("up v1").count() >= 2 && log.contains("[mcpctl] process exited"), "{log}");

    // Changed spec: restarted with the new args.
    rt.sync(&state(&server("v2"))).await;
    let v2 = running_pid(&rt, "worker").await;
    assert_ne!(v2, new_pid);
    assert!(!alive(new_pid), "old process still running");

    // Removed: stopped.
    rt.sync(&state(&doc("User", "alice", None, "{}"))).await;
    assert!(rt.status().is_empty());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!alive(v2), "process of a removed server still running");
}

#[tokio::test]
async fn env_from_secrets_is_decrypted_into_the_process_only() {
    let dir = tempfile::tempdir().unwrap();
    let identity = dir.path().join("id.txt");
    let out = std::process::Command::new("age-keygen").arg("-o").arg(&identity).output().expect("age-keygen (Debian package age)");
    assert!(out.status.success());
    let recipient = String::from_utf8_lossy(&out.stderr).split_whitespace().last().unwrap().to_string();
    let mut age = std::process::Command::new("age")
        .args(["-r", &recipient, "-a"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    age.stdin.take().unwrap().write_all(b"s3cret-value").unwrap();
    let armored = String::from_utf8(age.wait_with_output().unwrap().stdout).unwrap();
    let seen = dir.path().join("seen");
    let repo = doc("Secret", "keys", None, &format!("{{data: {{token: {:?}}}}}", armored))
        + &doc("Server", "worker", None, &format!("{{command: sh, args: [\"-c\", \"printf %s \\\"$TOKEN\\\" > {}; exec sleep 60\"], env: [{{name: TOKEN, valueFrom: {{secretRef: {{name: keys, key: token}}}}}}]}}", seen.display()));
    let desired = state(&repo);

    // Without an identity: not started, with the reason.
    let mut rt = LocalRuntime::new(dir.path().join("logs"));
    rt.sync(&desired).await;
    let mut st = rt.status().remove(0);
    for _ in 0..100 {
        if st.state != ProcessState::Starting {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        st = rt.status().remove(0);
    }
    assert!(matches!(&st.state, ProcessState::Failed { reason } if reason.contains("no age identity")), "{st:?}");
    rt.shutdown().await;

    // With the identity made by age-keygen: the process gets the plaintext.
    let resolver = mcpctl_reconciler::secrets::SecretResolver::from_file(&identity).unwrap();
    let mut rt = LocalRuntime::new(dir.path().join("logs")).with_secrets(resolver);
    rt.sync(&desired).await;
    running_pid(&rt, "worker").await;
    let mut got = String::new();
    for _ in 0..100 {
        got = std::fs::read_to_string(&seen).unwrap_or_default();
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(got, "s3cret-value");
    let shown = format!("{:?}", rt.status());
    assert!(!shown.contains("s3cret"), "status shows the secret: {shown}");
    rt.shutdown().await;
}

/// Parent environment of the probe: a sentinel and the kind of secrets `mcpctl serve` holds.
const PARENT_SECRETS: &[(&str, &str)] = &[
    ("MCPCTL_TEST_SENTINEL", "leaked-sentinel"),
    ("MCPCTL_GIT_TOKEN", "ghp_parent_token"),
    ("MCPCTL_DATABASE_URL", "postgres://admin:hunter2@db.internal/mcpctl"),
];

/// Run [`child_env_probe`] in a fresh copy of this test binary (a real parent process whose
/// environment holds [`PARENT_SECRETS`]; no `set_var` in this multi-threaded one), optionally
/// with `--run-as user`; returns the probe child's environment, uid, groups and working directory.
fn probe_child_env(run_as: Option<&str>) -> (HashMap<String, String>, u32, Vec<u32>, String) {
    let (env, uid, groups, cwd, _) = probe(run_as, false);
    (env, uid, groups, cwd)
}

/// [`probe_child_env`], optionally with the parent itself running as `nobody` (when this test
/// runs as root; else as this user), so that parent and child share a uid. The last value says
/// whether the child could read the parent's `/proc/<ppid>/environ`.
fn probe(run_as: Option<&str>, parent_as_nobody: bool) -> (HashMap<String, String>, u32, Vec<u32>, String, bool) {
    let text = probe_report(run_as, parent_as_nobody);
    let (env, ids) = text.split_once("--ids--\n").unwrap_or_else(|| panic!("probe report: {text}"));
    let env: HashMap<String, String> = env.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut ids = ids.lines();
    let uid = ids.next().unwrap().trim().parse().unwrap();
    let groups = ids.next().unwrap().split_whitespace().map(|g| g.parse().unwrap()).collect();
    let cwd = ids.next().unwrap().to_string();
    let parent_readable = ids.next().unwrap() == "parent-readable";
    (env, uid, groups, cwd, parent_readable)
}

/// The raw report of the probe: what its child wrote, or `run-as-error: …`.
fn probe_report(run_as: Option<&str>, parent_as_nobody: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    // The probe may run as another user: let it write its report here.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let out = dir.path().join("env.txt");
    let mut exe = std::env::current_exe().unwrap();
    let root = unsafe { libc::geteuid() } == 0;
    if parent_as_nobody && root {
        // A copy nobody can execute (the target dir may be under a private home).
        let copy = dir.path().join("probe-parent");
        std::fs::copy(&exe, &copy).unwrap();
        std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        exe = copy;
    }
    let mut parent = std::process::Command::new(&exe);
    if parent_as_nobody && root {
        let nobody = mcpctl_reconciler::runtime::RunAs::lookup("nobody").unwrap();
        std::os::unix::process::CommandExt::uid(&mut parent, nobody.uid);
        std::os::unix::process::CommandExt::gid(&mut parent, nobody.gid);
        parent.current_dir("/");
    }
    parent
        .args(["runtime::child_env_probe", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("MCPCTL_TEST_ENV_OUT", &out)
        .envs(PARENT_SECRETS.iter().copied());
    if let Some(u) = run_as {
        parent.env("MCPCTL_TEST_RUN_AS", u);
    }
    let done = parent.output().unwrap();
    assert!(
        done.status.success(),
        "probe parent failed: {}\n{}",
        String::from_utf8_lossy(&done.stdout),
        String::from_utf8_lossy(&done.stderr)
    );
    std::fs::read_to_string(&out).unwrap()
}

/// The parent side of [`probe_child_env`]: a `LocalRuntime` made the way `mcpctl serve` makes it,
/// whose one server writes its initial environment (`/proc/$$/environ`), `id -u`, `id -G` and `pwd`.
#[tokio::test]
#[ignore = "run by probe_child_env in a re-executed copy of this binary"]
async fn child_env_probe() {
    let Ok(out) = std::env::var("MCPCTL_TEST_ENV_OUT") else {
        eprintln!("child_env_probe: only meaningful under probe_child_env");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut rt = LocalRuntime::new(dir.path().join("logs"));
    if let Ok(user) = std::env::var("MCPCTL_TEST_RUN_AS") {
        match mcpctl_reconciler::runtime::RunAs::resolve(&user) {
            Ok(u) => rt = rt.with_run_as(u),
            Err(e) => return std::fs::write(&out, format!("run-as-error: {e}")).unwrap(),
        }
    }
    let script = format!("tr \"\\0\" \"\\n\" < /proc/$$/environ > {out}.tmp; echo --ids-- >> {out}.tmp; id -u >> {out}.tmp; id -G >> {out}.tmp; pwd >> {out}.tmp; if cat /proc/$PPID/environ > /dev/null 2>&1; then echo parent-readable; else echo parent-denied; fi >> {out}.tmp; mv {out}.tmp {out}; exec cat");
    let spec = format!(
        "{{command: sh, args: [\"-c\", '{script}'], env: [{{name: DECLARED, value: from-spec}}, {{name: TZ, value: Europe/Paris}}]}}"
    );
    rt.sync(&state(&(doc("Project", "p", None, "{servers: [probe]}") + &doc("Server", "probe", Some("p"), &spec)))).await;
    for _ in 0..200 {
        if std::path::Path::new(&out).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    rt.shutdown().await;
    assert!(std::path::Path::new(&out).exists(), "the probe never wrote {out}: {:?}", rt.status());
}

#[test]
fn children_get_the_allowlist_and_their_declared_env_only() {
    let (env, _, _, _) = probe_child_env(None);
    for (k, _) in PARENT_SECRETS {
        assert!(!env.contains_key(*k), "{k} leaked into the child: {env:?}");
    }
    let shown = format!("{env:?}");
    assert!(!shown.contains("hunter2") && !shown.contains("ghp_parent_token"), "{shown}");
    assert_eq!(env.get("DECLARED").map(String::as_str), Some("from-spec"));
    assert_eq!(env.get("TZ").map(String::as_str), Some("Europe/Paris"), "declared env wins over inherited");
    assert_eq!(env.get("PATH"), std::env::var("PATH").ok().as_ref(), "PATH is inherited");
    let allowed = |k: &str| mcpctl_reconciler::runtime::local::INHERITED_ENV.contains(&k) || k == "DECLARED";
    let extra: Vec<&String> = env.keys().filter(|k| !allowed(k)).collect();
    assert!(extra.is_empty(), "variables outside the allowlist: {extra:?}");
}

#[test]
fn a_child_of_the_same_user_cannot_read_the_parents_environment() {
    let (env, _, _, _, parent_readable) = probe(None, true);
    assert!(!env.contains_key("MCPCTL_GIT_TOKEN"));
    assert!(!parent_readable, "the child read /proc/<ppid>/environ of mcpctl");
}

#[test]
fn run_as_starts_children_as_that_user_with_its_home() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED run_as_starts_children_as_that_user_with_its_home: needs root to switch users");
        return;
    }
    let nobody = mcpctl_reconciler::runtime::RunAs::lookup("nobody").unwrap();
    let (env, uid, groups, cwd) = probe_child_env(Some("nobody"));
    assert_eq!(uid, nobody.uid);
    assert_eq!(
        groups.iter().copied().collect::<std::collections::BTreeSet<u32>>(),
        nobody.groups.iter().copied().collect(),
        "groups are nobody's, root's dropped"
    );
    assert!(!groups.contains(&0), "{groups:?}");
    assert_eq!(env.get("HOME").map(String::as_str), Some(nobody.home.to_str().unwrap()));
    assert_eq!(env.get("USER").map(String::as_str), Some("nobody"));
    let home_or_root = if nobody.home.is_dir() { nobody.home.to_str().unwrap() } else { "/" };
    assert_eq!(cwd, home_or_root, "runs in its home (or /), not in mcpctl's directory");
    assert!(!env.contains_key("MCPCTL_TEST_SENTINEL"));
}

#[test]
fn run_as_is_refused_when_not_root() {
    // As root, the parent runs as nobody and asks to run children as root.
    let report = if unsafe { libc::geteuid() } == 0 {
        probe_report(Some("root"), true)
    } else {
        format!("run-as-error: {}", mcpctl_reconciler::runtime::RunAs::resolve("root").unwrap_err())
    };
    assert!(report.starts_with("run-as-error: --run-as `root` needs mcpctl to run as root to switch users (running as uid "), "{report}");
}

#[test]
fn run_as_refuses_unknown_users() {
    let e = mcpctl_reconciler::runtime::RunAs::resolve("no-such-user-mcpctl").unwrap_err();
    assert!(matches!(e, mcpctl_reconciler::runtime::RunAsError::UnknownUser(_)), "{e}");
}
