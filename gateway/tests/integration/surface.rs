//! A project's tool surface and who used it (`/api/v1/projects/{p}/tools`), and token usage
//! written in batches (`token_usage`), against a real `mcp-server-time`.

use std::time::Duration;

use mcpctl_gateway::McpSettings;
use rmcp::model::CallToolRequestParams;

use crate::harness::*;

const AUDITOR: &str = "mcpctl_pat_auditor_0123456789abcdef";
const PLAIN: &str = "mcpctl_pat_plain_0123456789abcdef";
const OTHER: &str = "mcpctl_pat_other_0123456789abcdef";

fn yaml(time: &str) -> String {
    format!(
        "apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: time}}\nspec: {{command: \"{time}\"}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: lab}}\nspec: {{servers: [time]}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: other}}\nspec: {{servers: [time]}}\n---\n{}{}{}",
        token_doc("auditor", "lab", AUDITOR, "  bindings: [{role: run, resource: servers}, {role: run, action: audit}]\n"),
        token_doc("plain", "lab", PLAIN, "  bindings: [{role: run, resource: servers}]\n"),
        token_doc("other", "other", OTHER, "  bindings: [{role: run, resource: servers}, {role: run, action: audit}]\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_surface_counts_calls_per_token_and_usage_is_written_in_batches() {
    let Some(time) = peer("MCPCTL_PEER_TIME") else { return };
    let gw = Gw::start(&yaml(&time), McpSettings::default()).await;
    let url = gw.url("lab");
    let mut calls = 0;
    for _ in 0..100 {
        let c = rust_client(&url, PLAIN).await;
        let args = serde_json::json!({"timezone": "UTC"}).as_object().cloned().unwrap();
        let ok = c.call_tool(CallToolRequestParams::new("time__get_current_time").with_arguments(args)).await.is_ok();
        let _ = c.cancel().await;
        if ok {
            calls += 1;
            if calls == 2 {
                break;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    gw.state.auditor.flush().await;
    gw.state.usage.flush().await;
    let tools = |token: &'static str, project: &'static str| {
        let u = format!("{}/api/v1/projects/{project}/tools", gw.base);
        async move {
            let r = request(reqwest::Method::GET, &u, Some(token), &[]).await;
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let (status, body) = tools(AUDITOR, "lab").await;
    let (plain_status, plain) = tools(PLAIN, "lab").await;
    let (other_status, _) = tools(OTHER, "lab").await;
    let usage = gw.store.token_usage().await.unwrap();
    gw.stop().await;

    assert_eq!(calls, 2, "the time server never answered");
    assert_eq!(status, 200, "{body}");
    let item = body["tools"].as_array().unwrap().iter().find(|t| t["name"] == "time__get_current_time").cloned().unwrap_or_default();
    assert_eq!(item["server"], "time", "{body}");
    assert_eq!(item["calls"], serde_json::json!([{"token": "plain", "count": 2}]), "{body}");
    assert_eq!(plain_status, 200);
    assert!(
        plain["tools"].as_array().is_some_and(|t| !t.is_empty() && t.iter().all(|x| x.get("calls").is_none())),
        "no counts without `audit`: {plain}"
    );
    assert_eq!(other_status, 404, "another project's token");
    let plain_use = usage.get(&token_hash(PLAIN)).expect("the plain token's use is recorded");
    assert!(plain_use.uses >= 2 && plain_use.token == "plain" && plain_use.project == "lab", "{plain_use:?}");
    assert!(plain_use.last_used_at.starts_with("20"), "{plain_use:?}");
}

/// `token_usage` sums uses and keeps the later time, and `tool_calls` counts per token, on SQLite
/// and (with `MCPCTL_TEST_DATABASE_URL`) Postgres.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_usage_and_tool_calls_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let mut stores = vec![reconciler::Store::connect(&reconciler::store::sqlite_url(&dir.path().join("u.db"))).await.unwrap()];
    match std::env::var("MCPCTL_TEST_DATABASE_URL") {
        Ok(url) => stores.push(reconciler::Store::connect(&url).await.unwrap()),
        Err(_) => eprintln!("MCPCTL_TEST_DATABASE_URL not set: skipping the Postgres half of this test"),
    }
    let run = std::process::id();
    for store in stores {
        let hash = format!("sha256:usage-test-{run}");
        let project = format!("usage-{run}");
        let at = |s: &str| format!("2026-12-03T10:00:{s}.000Z");
        let u = |uses, t: &str| reconciler::store::TokenUse {
            hash: hash.clone(),
            project: project.clone(),
            token: "t".into(),
            last_used_at: at(t),
            uses,
        };
        store.record_token_use(&[u(2, "05")]).await.unwrap();
        store.record_token_use(&[u(3, "09")]).await.unwrap();
        store.record_token_use(&[u(1, "07")]).await.unwrap();
        let got = store.token_usage().await.unwrap().remove(&hash).expect("recorded");
        assert_eq!((got.uses, got.last_used_at.as_str()), (6, at("09").as_str()), "{:?}", store.backend());

        let event = |token: &str, method: &str| reconciler::audit::AuditEvent {
            id: 0,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            project: project.clone(),
            token: token.into(),
            token_prefix: "-".into(),
            session: "-".into(),
            method: method.into(),
            server: "time".into(),
            target: "get_current_time".into(),
            duration_us: 1,
            outcome: "ok".into(),
            error: None,
            revision: "r".into(),
            thread: None,
        };
        store
            .insert_audit(&[event("a", "tools/call"), event("a", "tools/call"), event("b", "tools/call"), event("a", "initialize")])
            .await
            .unwrap();
        let calls = store.tool_calls(&project, "2000-01-01T00:00:00.000Z").await.unwrap();
        let counts: Vec<(&str, i64)> = calls.iter().map(|c| (c.token.as_str(), c.count)).collect();
        assert_eq!(counts, [("a", 2), ("b", 1)], "{:?}", store.backend());
        assert!(store.tool_calls(&project, "2999-01-01T00:00:00.000Z").await.unwrap().is_empty());
    }
}
