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
