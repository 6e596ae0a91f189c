//! Access as code at the gateway (tracker issue 12): users' login tokens (`mcpctl_usr_…`) next to
//! McpTokens, every REST route and MCP method judged by schema's RBAC engine with the caller's
//! effective grants: a table of route × subject → status, then what each subject sees (lists
//! filtered by name-scoped grants, project-confined definitions), `whoami`, `can-i`, and MCP
//! `tools/list` / `tools/call` through a real stdio upstream (the conformance test server).

use mcpctl_gateway::McpSettings;
use reqwest::Method;
use serde_json::{json, Value};

use super::harness::{post, request, token_doc, token_hash, Gw, INITIALIZE};

const ALICE: &str = "mcpctl_usr_alice_0123456789abcdef";
const BOB: &str = "mcpctl_usr_bob_0123456789abcdef01";
const CAROL: &str = "mcpctl_usr_carol_0123456789abcdef";
const DAVE_REVOKED: &str = "mcpctl_usr_dave_revoked_01234567";
const DAVE_EXPIRED: &str = "mcpctl_usr_dave_expired_01234567";
const CARLA: &str = "mcpctl_usr_carla_0123456789abcdef";
const BOT: &str = "mcpctl_pat_access_bot_0123456789";
const V: (&str, &str) = ("mcp-protocol-version", "2025-06-18");

fn user(name: &str, extra: &str, tokens: &[(&str, &str, &str)]) -> String {
    let mut t = String::new();
    for (tname, raw, more) in tokens {
        t.push_str(&format!("    - {{name: {tname}, hash: \"{}\", prefix: mcpctl_usr_{}{more}}}\n", token_hash(raw), &tname[..2]));
    }
    let tokens = if t.is_empty() { String::new() } else { format!("  tokens:\n{t}") };
    format!("apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {{name: {name}}}\nspec:\n  email: {name}@example.com\n{extra}{tokens}---\n")
}

/// Projects `lab` (servers `up` global, `ha` its own) and `work` (`up`, and `w` unreachable);
/// alice (group admins: everything, globally), bob (lab only: run `ha`, chat; sees project lab),
/// carla (views servers in work: work's own and the global ones),
/// carol (disabled), dave (a revoked and an expired token), and the McpToken `lab/bot`.
fn yaml() -> String {
    let upstream = env!("CARGO_BIN_EXE_conformance-upstream");
    format!(
        "apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: up}}\nspec: {{command: \"{upstream}\"}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: ha, project: lab}}\nspec: {{command: \"{upstream}\"}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: w, project: work}}\nspec: {{url: \"http://127.0.0.1:9/mcp\"}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: lab}}\nspec: {{servers: [up, ha]}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: work}}\nspec: {{servers: [up, w]}}\n---\n\
         {}{}{}{}{}\
         apiVersion: mcpctl.io/v1\nkind: Group\nmetadata: {{name: admins}}\nspec: {{members: [alice]}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: RbacDefinition\nmetadata: {{name: admins}}\nspec:\n  subjects: [{{kind: Group, name: admins}}]\n  roleBindings:\n    - {{role: run, resource: \"*\"}}\n    - {{role: run, action: audit}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: RbacDefinition\nmetadata: {{name: bob-sees-lab}}\nspec:\n  subjects: [{{kind: User, name: bob}}]\n  roleBindings:\n    - {{role: view, resource: projects, name: lab}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: RbacDefinition\nmetadata: {{name: carla-views-work, project: work}}\nspec:\n  subjects: [{{kind: User, name: carla}}]\n  roleBindings:\n    - {{role: view, resource: servers}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: RbacDefinition\nmetadata: {{name: bob-runs-ha, project: lab}}\nspec:\n  subjects: [{{kind: User, name: bob}}, {{kind: User, name: carol}}]\n  roleBindings:\n    - {{role: run, resource: servers, name: ha}}\n    - {{role: run, action: chat}}\n---\n\
         {}",
        user("alice", "", &[("laptop", ALICE, "")]),
        user("bob", "", &[("laptop", BOB, ""), ("ci", "mcpctl_usr_bob_ci_unused_0123456", ", expiresAt: \"2099-01-01T00:00:00Z\"")]),
        user("carol", "  disabled: true\n", &[("laptop", CAROL, "")]),
        user("carla", "", &[("laptop", CARLA, "")]),
        user("dave", "", &[("old", DAVE_REVOKED, ", revoked: true"), ("past", DAVE_EXPIRED, ", expiresAt: \"2020-01-01T00:00:00Z\"")]),
        token_doc("bot", "lab", BOT, "  bindings:\n    - {role: view, resource: servers}\n    - {role: run, resource: servers, name: up}\n"),
    )
}

async fn status(gw: &Gw, method: Method, path: &str, token: Option<&str>) -> u16 {
    let url = format!("{}{path}", gw.base);
    if method == Method::POST {
        return post(&url, token, &[], INITIALIZE).await.status().as_u16();
    }
    request(method, &url, token, &[]).await.status().as_u16()
}

async fn get_json(gw: &Gw, path: &str, token: &str) -> Value {
    let r = request(Method::GET, &format!("{}{path}", gw.base), Some(token), &[]).await;
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().to_string()).collect();
    n.sort();
    n
}

/// The JSON-RPC message of an answer, sent as JSON or as the last `data:` event of an SSE stream.
async fn answer(r: reqwest::Response) -> Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| {
        let data = text.lines().filter_map(|l| l.strip_prefix("data: ")).rfind(|d| d.starts_with('{'));
        serde_json::from_str(data.unwrap_or_else(|| panic!("no JSON-RPC message in {text}"))).unwrap()
    })
}

async fn mcp(url: &str, token: &str, sid: &str, body: Value) -> Value {
    let r = post(url, Some(token), &[("mcp-session-id", sid), V], body.to_string()).await;
    assert_eq!(r.status(), 200);
    answer(r).await
}

async fn session(url: &str, token: &str) -> String {
    let r = post(url, Some(token), &[], INITIALIZE).await;
    assert_eq!(r.status(), 200, "initialize at {url}");
    let sid = r.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let _ = r.text().await;
    let r = post(url, Some(token), &[("mcp-session-id", &sid), V], r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).await;
    assert!(r.status().is_success());
    sid
}

async fn tools(url: &str, token: &str) -> Vec<String> {
    let sid = session(url, token).await;
    let v = mcp(url, token, &sid, json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).await;
    let mut t: Vec<String> = v["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect();
    t.sort();
    t
}

async fn call_ok(url: &str, token: &str, tool: &str) -> bool {
    let sid = session(url, token).await;
    let v =
        mcp(url, token, &sid, json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": tool, "arguments": {}}})).await;
    v.get("error").is_none() && v["result"]["isError"] != true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_judges_users_and_tokens_with_the_rbac_engine() {
    let gw = Gw::start(&yaml(), McpSettings::default()).await;
    let snapshot = gw.state.snapshot();
    assert_eq!(
        snapshot.tokens.len(),
        6,
        "alice, bob ×2, carla, dave's expired one (checked per request), bot: carol is disabled, dave's other is revoked"
    );

    let (get, mcp_post) = (Method::GET, Method::POST);
    let none: Option<&str> = None;
    #[rustfmt::skip]
    let table: Vec<(Method, &str, Option<&str>, u16)> = vec![
        // Authentication: absent, unknown, disabled, revoked, expired → 401.
        (get.clone(), "/api/v1/whoami", none, 401),
        (get.clone(), "/api/v1/whoami", Some("mcpctl_usr_nobody"), 401),
        (get.clone(), "/api/v1/whoami", Some(CAROL), 401),
        (get.clone(), "/api/v1/whoami", Some(DAVE_REVOKED), 401),
        (get.clone(), "/api/v1/whoami", Some(DAVE_EXPIRED), 401),
        (get.clone(), "/api/v1/servers", Some(CAROL), 401),
        (mcp_post.clone(), "/projects/lab/mcp", Some(CAROL), 401),
        (get.clone(), "/api/v1/whoami", Some(ALICE), 200),
        (get.clone(), "/api/v1/whoami", Some(BOB), 200),
        (get.clone(), "/api/v1/whoami", Some(BOT), 200),
        // Resources: a project's resource judged in its project, a global one where the caller acts.
        (get.clone(), "/api/v1/servers/ha?project=lab", Some(ALICE), 200),
        (get.clone(), "/api/v1/servers/ha?project=lab", Some(BOB), 200),
        (get.clone(), "/api/v1/servers/ha?project=lab", Some(BOT), 200),
        (get.clone(), "/api/v1/servers/w?project=work", Some(ALICE), 200),
        (get.clone(), "/api/v1/servers/w?project=work", Some(BOB), 404),
        (get.clone(), "/api/v1/servers/w?project=work", Some(BOT), 404),
        (get.clone(), "/api/v1/servers/up", Some(ALICE), 200),
        (get.clone(), "/api/v1/servers/up", Some(BOB), 404),
        (get.clone(), "/api/v1/servers/up", Some(CARLA), 200),
        (get.clone(), "/api/v1/servers/up", Some(BOT), 200),
        (get.clone(), "/api/v1/projects/lab", Some(BOB), 200),
        (get.clone(), "/api/v1/projects/work", Some(BOB), 404),
        (get.clone(), "/api/v1/users/alice", Some(ALICE), 200),
        (get.clone(), "/api/v1/users/alice", Some(BOB), 404),
        // Audit: `{role: run, action: audit}` where it is asked.
        (get.clone(), "/api/v1/deploys", Some(ALICE), 200),
        (get.clone(), "/api/v1/deploys", Some(BOB), 403),
        (get.clone(), "/api/v1/deploys", Some(BOT), 403),
        (get.clone(), "/api/v1/auditevents", Some(ALICE), 200),
        (get.clone(), "/api/v1/auditevents?project=lab", Some(ALICE), 200),
        (get.clone(), "/api/v1/auditevents?project=lab", Some(BOB), 403),
        (get.clone(), "/api/v1/auditevents", Some(BOT), 403),
        (get.clone(), "/api/v1/status", Some(BOB), 200),
        (get.clone(), "/api/v1/can-i?action=chat&project=lab", Some(BOB), 200),
        (get.clone(), "/api/v1/can-i?verb=run", Some(BOB), 400),
        (get.clone(), "/api/v1/can-i?verb=run&resource=nonsense", Some(BOB), 404),
        // MCP: a user acts in any project (with what applies there), a token in its own only.
        (mcp_post.clone(), "/projects/lab/mcp", none, 401),
        (mcp_post.clone(), "/projects/lab/mcp", Some(ALICE), 200),
        (mcp_post.clone(), "/projects/lab/mcp", Some(BOB), 200),
        (mcp_post.clone(), "/projects/work/mcp", Some(BOB), 200),
        (mcp_post.clone(), "/projects/lab/mcp", Some(BOT), 200),
        (mcp_post.clone(), "/projects/work/mcp", Some(BOT), 403),
    ];
    let mut wrong = Vec::new();
    for (method, path, token, want) in &table {
        let got = status(&gw, method.clone(), path, *token).await;
        if got != *want {
            wrong.push(format!("{method} {path} as {}: {got}, expected {want}", token.map_or("-", |t| &t[..15])));
        }
    }
    assert!(wrong.is_empty(), "{} of {} cases wrong:\n{}", wrong.len(), table.len(), wrong.join("\n"));

    // What each sees: name-scoped grants, project-confined definitions.
    assert_eq!(names(&get_json(&gw, "/api/v1/servers", ALICE).await), ["ha", "up", "w"]);
    assert_eq!(names(&get_json(&gw, "/api/v1/servers", BOB).await), ["ha"]);
    assert_eq!(names(&get_json(&gw, "/api/v1/servers", BOT).await), ["ha", "up"]);
    assert_eq!(names(&get_json(&gw, "/api/v1/servers", CARLA).await), ["up", "w"], "work's own and the global servers, not lab's");
    assert_eq!(names(&get_json(&gw, "/api/v1/servers?project=work", ALICE).await), ["w"]);
    assert_eq!(names(&get_json(&gw, "/api/v1/projects", BOB).await), ["lab"], "bob sees only the project his grants allow");
    assert_eq!(names(&get_json(&gw, "/api/v1/projects", ALICE).await), ["lab", "work"]);
    for who in [BOT, CARLA] {
        assert!(names(&get_json(&gw, "/api/v1/projects", who).await).is_empty(), "views servers, not projects");
    }

    // Status shows a user the servers it may view: bob lab's `ha`, carla work's servers.
    let upstreams = |v: Value| -> Vec<String> {
        let mut s: Vec<String> = v["upstreams"].as_array().unwrap().iter().map(|u| u["server"].as_str().unwrap().to_string()).collect();
        s.sort();
        s
    };
    let bob_ups = upstreams(get_json(&gw, "/api/v1/status", BOB).await);
    assert_eq!(bob_ups, ["lab/ha"]);
    let carla_ups = upstreams(get_json(&gw, "/api/v1/status", CARLA).await);
    assert_eq!(carla_ups, ["up", "work/w"]);

    let who = get_json(&gw, "/api/v1/whoami", BOB).await;
    assert_eq!((who["kind"].as_str(), who["name"].as_str(), who["token"].as_str()), (Some("User"), Some("bob"), Some("laptop")));
    assert_eq!(who["project"], Value::Null);
    let grants: Vec<(String, Value)> =
        who["grants"].as_array().unwrap().iter().map(|g| (g["binding"].as_str().unwrap().to_string(), g["project"].clone())).collect();
    assert!(grants.contains(&("role:run,resource:servers,name:ha".into(), json!("lab"))), "{grants:?}");
    assert!(grants.contains(&("role:view,resource:projects,name:lab".into(), Value::Null)), "{grants:?}");
    let bot = get_json(&gw, "/api/v1/whoami", BOT).await;
    assert_eq!((bot["kind"].as_str(), bot["project"].as_str()), (Some("McpToken"), Some("lab")));

    for (path, token, want) in [
        ("/api/v1/can-i?action=chat&project=lab", BOB, true),
        ("/api/v1/can-i?action=chat&project=work", BOB, false),
        ("/api/v1/can-i?action=chat", BOB, false),
        ("/api/v1/can-i?action=reveal-secrets", ALICE, false),
        ("/api/v1/can-i?action=audit", ALICE, true),
        ("/api/v1/can-i?verb=run&resource=servers&name=ha&project=lab", BOB, true),
        ("/api/v1/can-i?verb=run&resource=servers&name=up&project=lab", BOB, false),
        ("/api/v1/can-i?verb=run&resource=servers&name=up", BOT, true),
        ("/api/v1/can-i?verb=run&resource=servers&name=up&project=work", BOT, false),
    ] {
        assert_eq!(get_json(&gw, path, token).await["allowed"], want, "{path}");
    }

    // Deploy errors are shown to a global auditor.
    let deploys = get_json(&gw, "/api/v1/deploys", ALICE).await;
    assert!(!deploys["items"].as_array().unwrap().is_empty());

    // MCP lists and calls, per subject and project, through the real upstream.
    let (lab, work) = (gw.url("lab"), gw.url("work"));
    let t = tools(&lab, BOB).await;
    assert!(!t.is_empty() && t.iter().all(|n| n.starts_with("ha__")), "bob in lab sees only ha's tools: {t:?}");
    assert!(tools(&work, BOB).await.is_empty(), "bob's lab grants do not apply in work");
    let t = tools(&lab, ALICE).await;
    assert!(t.iter().any(|n| n.starts_with("ha__")) && t.iter().any(|n| n.starts_with("up__")), "{t:?}");
    assert!(call_ok(&lab, BOB, "ha__test_simple_text").await);
    assert!(!call_ok(&lab, BOB, "up__test_simple_text").await, "bob may not run up");
    assert!(call_ok(&lab, BOT, "up__test_simple_text").await);
    assert!(!call_ok(&lab, BOT, "ha__test_simple_text").await, "bot may view ha, not run it");

    // The audit log names a user's calls by user and token.
    gw.state.auditor.flush().await;
    let events = get_json(&gw, "/api/v1/auditevents?project=lab&limit=1000", ALICE).await;
    let tokens: Vec<&str> = events["items"].as_array().unwrap().iter().filter_map(|e| e["token"].as_str()).collect();
    assert!(tokens.contains(&"User:bob/laptop"), "{tokens:?}");

    // Disabling a user in git refuses its tokens from the next deploy on.
    let mut gw = gw;
    let disabled = yaml().replace("metadata: {name: bob}\nspec:\n", "metadata: {name: bob}\nspec:\n  disabled: true\n");
    gw.deploy(&disabled, "rev-2").await;
    assert_eq!(status(&gw, Method::GET, "/api/v1/whoami", Some(BOB)).await, 401);
    assert_eq!(status(&gw, Method::POST, "/projects/lab/mcp", Some(BOB)).await, 401);
    gw.stop().await;
}
