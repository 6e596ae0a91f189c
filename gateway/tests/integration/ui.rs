//! The web UI over real HTTP against examples/homelab: sign-in and its cookie, redirects without
//! a subject, RBAC on pages, security headers, keyset pagination of the audit log; and end to
//! end in a real headless Chromium (every page opened by following links, screenshots, axe-core
//! accessibility checks, sign-out).

use std::path::{Path, PathBuf};

use reconciler::audit::AuditEvent;
use reconciler::store::threads::NewMessage;

use super::webdriver::Browser;
use super::{apply_dir, Homelab, DEMO_TOKEN};

/// alice's login token (user `alice`, group `lab-admins` in `homelab`; examples/homelab README).
const ALICE: &str = "mcpctl_usr_demo_alice_0123456789abcdef";

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// `POST /ui/login` with the form field `token` (already form-encoded) and one more header.
async fn sign_in(http: &reqwest::Client, base: &str, token: &str, header: Option<(&str, &str)>) -> reqwest::Response {
    let mut rq =
        http.post(format!("{base}/ui/login")).header("content-type", "application/x-www-form-urlencoded").body(format!("token={token}"));
    if let Some((k, v)) = header {
        rq = rq.header(k, v);
    }
    rq.send().await.unwrap()
}

/// examples/homelab with `{role: run, action: audit}` added to the `lab-admins` definition, so
/// alice (and the demo token, one of its subjects) may read the audit log and the deploys.
async fn homelab_with_audit() -> Homelab {
    let lab = Homelab::serve().await;
    apply_dir(&lab.store, &lab.homelab, |files| {
        let f = files.iter_mut().find(|f| f.path == "access/people.yaml").unwrap();
        let text = String::from_utf8(f.bytes.to_vec())
            .unwrap()
            .replace("    - {role: run, action: chat}", "    - {role: run, action: chat}\n    - {role: run, action: audit}");
        f.bytes = text.into_bytes().into();
    })
    .await;
    lab.state.reload().await.unwrap();
    lab
}

/// `n` audit events of project homelab, one a second back from now, every 10th an error.
fn events(n: i64) -> Vec<AuditEvent> {
    let now = chrono::Utc::now();
    (0..n)
        .map(|i| AuditEvent {
            id: 0,
            at: (now - chrono::Duration::seconds(n - i)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            project: "homelab".into(),
            token: if i % 2 == 0 { "claude-desktop".into() } else { "ci".into() },
            token_prefix: "0123456789ab".into(),
            session: "secret-session-id".into(),
            method: "tools/call".into(),
            server: if i % 3 == 0 { "everything".into() } else { "time".into() },
            target: if i % 3 == 0 { "echo".into() } else { "get_current_time".into() },
            duration_us: 800 + i * 500,
            outcome: if i % 10 == 0 { "error".into() } else { "ok".into() },
            error: (i % 10 == 0).then(|| "upstream <b>exited</b>".to_string()),
            revision: "rev".into(),
            thread: None,
        })
        .collect()
}

/// The ids of the rows of an audit page (`<tr><td>ID</td>`).
fn row_ids(html: &str) -> Vec<i64> {
    html.split("<tr><td>").skip(1).filter_map(|s| s.split("</td>").next()?.parse().ok()).collect()
}

/// The `before` of the page's "Older" link.
fn older(html: &str) -> Option<String> {
    let i = html.find("rel=\"next\"")?;
    let href = html[..i].rsplit("href=\"").next()?;
    Some(href.split('"').next()?.replace("&amp;", "&"))
}

#[tokio::test]
async fn ui_needs_a_subject_sets_a_strict_cookie_and_shows_only_what_rbac_lets_view() {
    let Homelab { _dir, base, stop, server, .. } = Homelab::serve().await;
    let http = client();

    // No subject: data pages redirect to the login form; assets are public and cached.
    let r = http.get(format!("{base}/ui/projects")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/login");
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let css = http.get(format!("{base}/ui/assets/ui.css")).send().await.unwrap();
    assert_eq!(css.status(), 200);
    assert!(css.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    assert!(css.headers().contains_key("content-security-policy"));
    let form = http.get(format!("{base}/ui/login")).send().await.unwrap();
    assert_eq!(form.headers()["cache-control"], "no-store");
    let form = form.text().await.unwrap();
    assert!(form.contains(r#"<label for="token">"#) && form.contains(r#"name="token""#), "{form}");

    // Sign-in: a wrong token is the form again (401, not echoed); the demo token a cookie.
    let bad = sign_in(&http, &base, "mcpctl_pat_wrong%3Cx%3E", None).await;
    assert_eq!(bad.status(), 401);
    assert!(!bad.text().await.unwrap().contains("mcpctl_pat_wrong"));
    let ok = sign_in(&http, &base, DEMO_TOKEN, None).await;
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/ui");
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/ui") && !cookie.contains("Secure"),
        "{cookie}"
    );
    let tls = sign_in(&http, &base, DEMO_TOKEN, Some(("x-forwarded-proto", "https"))).await;
    assert!(tls.headers()["set-cookie"].to_str().unwrap().contains("Secure"), "behind TLS the cookie is Secure");
    let cross = sign_in(&http, &base, DEMO_TOKEN, Some(("origin", "http://evil.example"))).await;
    assert_eq!(cross.status(), 403, "a cross-site sign-in is refused");
    let jar = cookie.split(';').next().unwrap().to_string();
    let page = |path: &str, auth: (&'static str, String)| {
        let rq = http.get(format!("{base}{path}")).header(auth.0, auth.1);
        async move {
            let r = rq.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let with_cookie = || ("cookie", jar.clone());
    let bearer = |t: &str| ("authorization", format!("Bearer {t}"));

    // The demo token (an McpToken of homelab) sees homelab, never research.
    let (status, projects) = page("/ui/projects", with_cookie()).await;
    assert_eq!(status, 200);
    assert!(projects.contains(r#"href="/ui/projects/homelab""#), "{projects}");
    assert!(!projects.contains("research"), "a forbidden project is not shown: {projects}");
    assert_eq!(page("/ui/projects/research", with_cookie()).await.0, 404);
    assert_eq!(page("/ui/resources/projects/research", with_cookie()).await.0, 404);
    let (_, listed) = page("/ui/resources?kind=projects", bearer(DEMO_TOKEN)).await;
    assert!(listed.contains("homelab") && !listed.contains("research"), "{listed}");
    let (_, home) = page("/ui/projects/homelab", with_cookie()).await;
    assert!(home.contains("time") && home.contains("needs `{role: run, action: audit}`"), "plots need audit: {home}");
    // Without audit: the audit log and the deploys are refused, the dashboard says why.
    assert_eq!(page("/ui/audit", with_cookie()).await.0, 403);
    assert_eq!(page("/ui/deploys", with_cookie()).await.0, 403);
    let (status, dash) = page("/ui", with_cookie()).await;
    assert_eq!(status, 200);
    assert!(dash.contains("<code title=\"rev\">rev</code>") && dash.contains("needs `{role: run, action: audit}`"), "{dash}");
    // Tokens: no hash and no token ever shown.
    let (_, tokens) = page("/ui/tokens", with_cookie()).await;
    assert!(tokens.contains("claude-desktop") && !tokens.contains("sha256:") && !tokens.contains(DEMO_TOKEN), "{tokens}");

    // alice (a user, lab-admins in homelab) by bearer: homelab only as well.
    let (status, projects) = page("/ui/projects", bearer(ALICE)).await;
    assert_eq!(status, 200);
    assert!(projects.contains("homelab") && !projects.contains("research"), "{projects}");
    let (_, agent) = page("/ui/agents/homelab/assistant?personality=teacher", bearer(ALICE)).await;
    let order = ["agentSystemPrompt", "projectPrompt", "agentPrompt", "personalitySystemPrompt", "personalityPrompt"];
    let at: Vec<usize> =
        order.iter().map(|s| agent.find(&format!("<strong>{s}</strong>")).unwrap_or_else(|| panic!("{s}: {agent}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "blocks in chat's order: {at:?}");

    // The example's read-only viewer (lab-viewers: view everything and audit in homelab): the
    // deploys and the audit log too, still never research.
    let viewer = "mcpctl_usr_demo_viewer_0123456789abcdef";
    for path in ["/ui/deploys", "/ui/audit", "/ui/projects/homelab", "/ui/tokens"] {
        let (status, body) = page(path, bearer(viewer)).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!body.contains("needs `{role: run, action: audit}`") && !body.contains("research"), "{path}: {body}");
    }
    assert_eq!(page("/ui/projects/research", bearer(viewer)).await.0, 404);

    // An unknown token by bearer or cookie is no subject; sign-out clears the cookie.
    assert_eq!(page("/ui", bearer("mcpctl_pat_nope")).await.0, 303);
    let out = http.post(format!("{base}/ui/logout")).header("cookie", jar.clone()).send().await.unwrap();
    assert_eq!(out.status(), 303);
    assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn ui_audit_log_pages_by_id_and_filters() {
    let lab = homelab_with_audit().await;
    lab.store.insert_audit(&events(250)).await.unwrap();
    let http = client();
    let get = |path: String| {
        let rq = http.get(format!("{}{path}", lab.base)).bearer_auth(ALICE);
        async move {
            let r = rq.send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
            r.text().await.unwrap()
        }
    };
    let first = get("/ui/audit".into()).await;
    assert!(!first.contains("secret-session-id"), "session ids are never shown");
    assert!(first.contains("upstream &lt;b&gt;exited&lt;/b&gt;"), "errors are escaped");
    let mut ids = row_ids(&first);
    assert_eq!(ids.len(), 100);
    let mut next = older(&first);
    let mut pages = 1;
    while let Some(href) = next {
        let html = get(href).await;
        let page = row_ids(&html);
        assert!(page.first() < ids.last(), "each page starts below the last id of the one before");
        ids.extend(page);
        next = older(&html);
        pages += 1;
    }
    assert_eq!((pages, ids.len()), (3, 250), "100 + 100 + 50, no row twice");
    assert!(ids.windows(2).all(|w| w[0] > w[1]));

    let errors = row_ids(&get("/ui/audit?project=homelab&outcome=error".into()).await);
    assert_eq!(errors.len(), 25);
    let echo = get("/ui/audit?server=everything&tool=echo&token=claude-desktop".into()).await;
    assert_eq!(row_ids(&echo).len(), 42, "i % 3 == 0 and even: 0, 6, …, 246");
    let since = (chrono::Utc::now() - chrono::Duration::seconds(30)).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    assert!(row_ids(&get(format!("/ui/audit?since={since}")).await).len() <= 30);
    let r = http.get(format!("{}/ui/audit?since=yesterday", lab.base)).bearer_auth(ALICE).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("`since`"), "the bad field is named");

    // The project page plots the calls from the per-minute aggregates.
    let home = get("/ui/projects/homelab".into()).await;
    assert!(home.contains("<svg") && home.contains("Calls per minute") && home.contains("everything: peak"), "{home}");
    let _ = lab.stop.send(());
}

/// Where screenshots go: `$MCPCTL_UI_SCREENSHOTS`, else `target/ui-screenshots` of the
/// workspace (whatever `CARGO_TARGET_DIR` says).
fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("MCPCTL_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// axe-core's `axe.min.js`: `$MCPCTL_PEER_AXE`, else `~/.cache/mcpctl-peers/axe/…` (installed by
/// `.ci/peers.sh`). Missing: `None` outside CI (the checks are skipped), a failure under CI.
fn axe_source() -> Option<String> {
    let path = std::env::var("MCPCTL_PEER_AXE").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| {
        format!("{}/.cache/mcpctl-peers/axe/node_modules/axe-core/axe.min.js", std::env::var("HOME").unwrap_or_default())
    });
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(_) if std::env::var_os("CI").is_some() => panic!("axe-core is not installed at {path}: CI must run the accessibility checks"),
        Err(_) => {
            eprintln!("SKIPPED (accessibility checks only): axe-core is not at {path} (source .ci/peers.sh)");
            None
        }
    }
}

/// Run axe-core on the page; the serious and critical violations.
async fn violations(b: &Browser, axe: &str) -> Vec<serde_json::Value> {
    b.execute(&format!("{axe}\n;return true;"), serde_json::json!([])).await;
    let v = b
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target)})))).catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e)}]));",
            serde_json::json!([]),
        )
        .await;
    v.as_array().unwrap().iter().filter(|x| matches!(x["impact"].as_str(), Some("serious" | "critical"))).cloned().collect()
}

#[tokio::test]
async fn ui_in_headless_chromium_every_page_by_links_accessible_and_signed_out() {
    let Some(browser) = Browser::start(1280, 1000).await else { return };
    let axe = axe_source();
    let lab = homelab_with_audit().await;
    lab.store.insert_audit(&events(300)).await.unwrap();
    lab.store.create_thread("t-ui-1", "homelab", "assistant", "user:alice", "What is in the lab?").await.unwrap();
    let calls = serde_json::json!([{"id": "call_1", "name": "time__get_current_time", "arguments": "{\"timezone\":\"UTC\"}"}]);
    for m in [
        NewMessage { role: "user", content: "What time is it <now>?", ..Default::default() },
        NewMessage { role: "assistant", content: "", tool_calls: Some(&calls), model: Some("gpt-4o-mini"), ..Default::default() },
        NewMessage { role: "tool", content: "{\"datetime\":\"2026-12-04T01:00:00Z\"}", tool_call_id: Some("call_1"), ..Default::default() },
        NewMessage { role: "assistant", content: "It is 01:00 UTC.", model: Some("gpt-4o-mini"), ..Default::default() },
    ] {
        lab.store.add_message("t-ui-1", &m).await.unwrap();
    }
    let shots = screenshot_dir();
    let b = &browser;
    let check = |name: &'static str, heading: &'static str| {
        let shots = shots.clone();
        let axe = axe.clone();
        async move {
            let h1 = b.wait_text("main h1", heading).await;
            assert!(h1.contains(heading), "{name}: heading `{h1}`");
            b.screenshot(&shots.join(format!("{name}.png"))).await;
            if let Some(axe) = &axe {
                let bad = violations(b, axe).await;
                assert!(bad.is_empty(), "{name}: serious accessibility violations: {}", serde_json::to_string_pretty(&bad).unwrap());
            }
        }
    };

    // Not signed in: the dashboard sends the browser to the login form.
    b.goto(&format!("{}/ui", lab.base)).await;
    assert!(b.url().await.ends_with("/ui/login"));
    check("login", "Sign in").await;
    b.type_into(&b.find("#token").await, ALICE).await;
    b.click(&b.find("form button[type=submit]").await).await;
    let url = b.wait_url(|u| u.ends_with("/ui")).await;
    assert!(url.ends_with("/ui"), "signed in: {url}");
    check("dashboard", "Dashboard").await;

    // Every page through the navigation, and a detail page from each list.
    b.click(&b.link("Deploys").await).await;
    check("deploys", "Deploys").await;
    b.click(&b.find("main table a").await).await;
    check("deploy", "Deploy #").await;
    b.click(&b.link("Deploys").await).await;
    b.click(&b.find("form.filters button").await).await;
    check("deploy-diff", "→").await;
    b.click(&b.link("Resources").await).await;
    check("resources", "Resources").await;
    b.click(&b.link("time").await).await;
    check("resource", "Server time").await;
    assert!(b.text(&b.find("main").await).await.contains("servers/stdio.yaml"), "the source file is shown");
    b.click(&b.link("Projects").await).await;
    check("projects", "Projects").await;
    b.click(&b.link("homelab").await).await;
    check("project", "Project homelab").await;
    assert_eq!(b.find_all("figure.plot svg").await.len(), 3, "calls, latency and error rate are drawn");
    b.execute("document.querySelector('figure.plot').scrollIntoView(); return true;", serde_json::json!([])).await;
    b.screenshot(&shots.join("project-plots.png")).await;
    b.click(&b.link("Agents").await).await;
    check("agents", "Agents").await;
    b.click(&b.link("assistant").await).await;
    b.click(&b.link("teacher").await).await;
    check("agent", "Agent assistant").await;
    b.click(&b.link("Tokens").await).await;
    check("tokens", "Tokens").await;
    b.click(&b.link("Threads").await).await;
    check("threads", "Threads").await;
    b.click(&b.link("What is in the lab?").await).await;
    check("thread", "What is in the lab?").await;
    let convo = b.text(&b.find("main").await).await;
    assert!(convo.contains("What time is it <now>?") && convo.contains("time__get_current_time"), "{convo}");

    // The audit log, filtered in the form, then paged.
    b.click(&b.link("Audit log").await).await;
    check("audit", "Audit log").await;
    b.click(&b.find("#outcome option[value=error]").await).await;
    b.type_into(&b.find("#server").await, "everything").await;
    b.click(&b.find("form.filters button").await).await;
    let url = b.wait_url(|u| u.contains("outcome=error")).await;
    assert!(url.contains("outcome=error"), "{url}");
    let outcomes = b
        .execute(
            "return Array.from(document.querySelectorAll('main tbody tr td:nth-child(8)')).map(td => td.textContent);",
            serde_json::json!([]),
        )
        .await;
    let outcomes: Vec<&str> = outcomes.as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(outcomes.len(), 10, "i % 30 == 0 of 300: {outcomes:?}");
    assert!(outcomes.iter().all(|o| *o == "error"));
    check("audit-filtered", "Audit log").await;

    // Sign out: back at the login form, and the dashboard wants a subject again.
    b.click(&b.find("form.signout button").await).await;
    assert!(b.wait_url(|u| u.ends_with("/ui/login")).await.ends_with("/ui/login"));
    b.goto(&format!("{}/ui/tokens", lab.base)).await;
    assert!(b.url().await.ends_with("/ui/login"), "signed out");
    browser.quit().await;

    // A phone: the dashboard at 390×844.
    if let Some(phone) = Browser::start(390, 844).await {
        phone.goto(&format!("{}/ui/login", lab.base)).await;
        phone.type_into(&phone.find("#token").await, ALICE).await;
        phone.click(&phone.find("form button[type=submit]").await).await;
        phone.wait_url(|u| u.ends_with("/ui")).await;
        phone.goto(&format!("{}/ui/projects/homelab", lab.base)).await;
        phone.screenshot(&shots.join("phone-project.png")).await;
        let width = phone.execute("return document.documentElement.scrollWidth <= window.innerWidth + 1;", serde_json::json!([])).await;
        let wide = "return Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));";
        assert_eq!(
            width,
            serde_json::json!(true),
            "no horizontal scrolling of the page on a phone: {}",
            phone.execute(wide, serde_json::json!([])).await
        );
        phone.quit().await;
    }
    let _ = lab.stop.send(());
}
