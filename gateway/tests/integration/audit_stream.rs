//! `GET /api/v1/auditevents/stream` over real HTTP on examples/homelab: RBAC (`action: audit`),
//! the caller's project only, no session ids, an MCP call arriving live, a subscriber that does
//! not read is told what it lost while auditing goes on undisturbed, losing the grant ends a
//! stream, and shutdown ends streams.

use std::time::Duration;

use reconciler::audit::AuditEvent;

use super::{apply_dir, Homelab, DEMO_TOKEN};

const GRANT: &str = "apiVersion: mcpctl.io/v1\nkind: RbacDefinition\nmetadata: {name: stream-audit, project: homelab}\nspec:\n  subjects:\n    - {kind: McpToken, name: claude-desktop}\n  roleBindings:\n    - {role: run, action: audit}\n";

fn event(project: &str, target: &str) -> AuditEvent {
    serde_json::from_value(serde_json::json!({
        "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "project": project,
        "token": "claude-desktop",
        "tokenPrefix": "cf17bc7a0aac",
        "session": "secret-session-id",
        "method": "tools/call",
        "server": "time",
        "target": target,
        "durationUs": 1200,
        "outcome": "ok",
        "revision": "rev",
    }))
    .expect("an audit event")
}

/// SSE frames (`event`, parsed `data`) read from `resp` until `stop` says so or `within` passes.
async fn frames_until(
    resp: &mut reqwest::Response,
    within: Duration,
    mut stop: impl FnMut(&str, &serde_json::Value) -> bool,
) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let event = frame.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("").to_string();
            let data = frame.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null");
            let v: serde_json::Value = serde_json::from_str(data).unwrap_or(serde_json::Value::Null);
            let done = stop(&event, &v);
            out.push((event, v));
            if done {
                return out;
            }
        }
    }
    out
}

#[tokio::test]
async fn the_audit_stream_is_live_scoped_bounded_and_ends_on_shutdown() {
    let Homelab { _dir, store, homelab, state, base, stop, server } = Homelab::serve().await;
    let http = reqwest::Client::new();
    let open = || http.get(format!("{base}/api/v1/auditevents/stream")).bearer_auth(DEMO_TOKEN).send();

    assert_eq!(open().await.unwrap().status(), 403, "the demo token has no audit grant");
    assert_eq!(http.get(format!("{base}/api/v1/auditevents/stream")).send().await.unwrap().status(), 401);

    apply_dir(&store, &homelab, |files| files.push(schema::SourceFile::new("access/audit.yaml", GRANT))).await;
    state.reload().await.unwrap();
    let mut live = open().await.unwrap();
    assert_eq!(live.status(), 200);
    assert_eq!(live.headers()["content-type"], "text/event-stream");

    // Another project's event is not shown; an MCP call of this project arrives live.
    state.auditor.record(event("research", "other-project-call"));
    let client = super::harness::rust_client(&format!("{base}/projects/homelab/mcp"), DEMO_TOKEN).await;
    client.call_tool(rmcp::model::CallToolRequestParams::new("begin_session")).await.unwrap();
    let got = frames_until(&mut live, Duration::from_secs(5), |e, v| e == "audit" && v["target"] == "begin_session").await;
    let audits: Vec<&serde_json::Value> = got.iter().filter(|(e, _)| e == "audit").map(|(_, v)| v).collect();
    assert!(audits.iter().any(|v| v["target"] == "begin_session" && v["token"] == "claude-desktop" && v["outcome"] == "ok"), "{got:?}");
    assert!(audits.iter().all(|v| v["project"] == "homelab" && v.get("session").is_none()), "{got:?}");
    let _ = client.cancel().await;

    // A subscriber that stops reading loses the oldest events and is told; auditing goes on.
    // ~1 KiB events, 20 MiB in all: more than loopback socket buffers hold.
    let mut slow = open().await.unwrap();
    let pad = "x".repeat(900);
    for round in 0..4 {
        for i in 0..5000 {
            state.auditor.record(event("homelab", &format!("flood-{round}-{i}-{pad}")));
        }
        state.auditor.flush().await;
    }
    assert_eq!(state.auditor.dropped(), 0, "a slow stream held up auditing");
    let stored = store
        .audit_events(&reconciler::audit::AuditFilter { project: Some("homelab".into()), limit: 100_000, ..Default::default() })
        .await
        .unwrap();
    assert!(stored.iter().filter(|e| e.target.starts_with("flood-")).count() == 20_000, "every event is stored");
    let got = frames_until(&mut slow, Duration::from_secs(10), |e, _| e == "dropped").await;
    let dropped = got.iter().find(|(e, _)| e == "dropped").map(|(_, v)| v["dropped"].as_u64().unwrap_or(0));
    assert!(dropped.is_some_and(|n| n > 0), "no `dropped` notice after 20 000 unread events: {} frames", got.len());

    // Losing the grant ends a stream at its next event.
    let mut revoked = open().await.unwrap();
    apply_dir(&store, &homelab, |_| {}).await;
    state.reload().await.unwrap();
    state.auditor.record(event("homelab", "after-revocation"));
    let got = frames_until(&mut revoked, Duration::from_secs(5), |e, _| e == "end").await;
    let summary: Vec<&String> = got.iter().map(|(e, _)| e).collect();
    assert!(got.iter().any(|(e, v)| e == "end" && v["reason"] == "the token is no longer valid for this stream"), "{summary:?}");
    assert!(!got.iter().any(|(_, v)| v["target"] == "after-revocation"), "an event reached a token without the grant");

    // Shutdown ends the streams (they never end on their own) well within the drain time.
    apply_dir(&store, &homelab, |files| files.push(schema::SourceFile::new("access/audit.yaml", GRANT))).await;
    state.reload().await.unwrap();
    let mut last = open().await.unwrap();
    let _ = stop.send(());
    let ended = frames_until(&mut last, Duration::from_secs(5), |e, _| e == "end").await;
    assert!(ended.iter().any(|(e, v)| e == "end" && v["reason"] == "the gateway is stopping"), "{:?}", ended.last());
    drop((live, slow, revoked, last));
    assert!(tokio::time::timeout(Duration::from_secs(5), server).await.is_ok(), "serve did not return");
}
