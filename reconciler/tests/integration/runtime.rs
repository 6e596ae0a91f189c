//! The local runtime against real processes.

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
