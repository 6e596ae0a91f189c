//! The page shell every UI page shares (skip link, header with the navigation and the signed-in
//! subject, `<main>`), and the small pieces pages are built from: times, shas, key/value tables,
//! notices.

use maud::{html, Markup, DOCTYPE};

use crate::auth::Caller;

/// The navigation entry a page belongs to (marked `aria-current`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    None,
    Dashboard,
    Deploys,
    Resources,
    Projects,
    Agents,
    Tokens,
    Audit,
    Threads,
}

const ENTRIES: [(Nav, &str, &str); 8] = [
    (Nav::Dashboard, "/ui", "Dashboard"),
    (Nav::Deploys, "/ui/deploys", "Deploys"),
    (Nav::Resources, "/ui/resources", "Resources"),
    (Nav::Projects, "/ui/projects", "Projects"),
    (Nav::Agents, "/ui/agents", "Agents"),
    (Nav::Tokens, "/ui/tokens", "Tokens"),
    (Nav::Audit, "/ui/audit", "Audit log"),
    (Nav::Threads, "/ui/threads", "Threads"),
];

/// A whole page: `title` in `<title>` (the page's `<h1>` is the body's), the navigation when a
/// subject is signed in.
pub fn page(title: &str, active: Nav, who: Option<&Caller>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · mcpctl" }
                link rel="stylesheet" href=(super::assets::url("ui.css"));
                script src=(super::assets::url("ui.js")) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui" { "mcpctl" }
                    @if let Some(c) = who {
                        nav aria-label="Main" {
                            ul {
                                @for (nav, href, label) in ENTRIES {
                                    li { a href=(href) aria-current=[(nav == active).then_some("page")] { (label) } }
                                }
                            }
                        }
                        form.signout method="post" action="/ui/logout" {
                            span.who { (c.display_name()) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// A timestamp as `<time>`: the stored RFC 3339 text as `datetime`, shown shorter (UTC).
pub fn time(ts: &str) -> Markup {
    let shown = match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) => t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => ts.to_string(),
    };
    html! { time datetime=(ts) { (shown) } }
}

/// An optional timestamp (`—` when absent).
pub fn time_opt(ts: Option<&str>) -> Markup {
    match ts {
        Some(t) => time(t),
        None => html! { "—" },
    }
}

/// A revision: a commit's first 12 hex digits (with the whole in `title`), else as it is.
pub fn sha(rev: &str) -> Markup {
    let short = if rev.len() > 12 && rev.chars().all(|c| c.is_ascii_hexdigit()) { &rev[..12] } else { rev };
    html! { code title=(rev) { (short) } }
}

/// A two-column table of fields (`<th scope="row">` names).
pub fn fields<'a>(caption: &str, rows: impl IntoIterator<Item = (&'a str, Markup)>) -> Markup {
    html! {
        table.fields {
            caption { (caption) }
            tbody {
                @for (k, v) in rows {
                    tr { th scope="row" { (k) } td { (v) } }
                }
            }
        }
    }
}

/// A notice paragraph (why something is not shown, or that a list is empty).
pub fn notice(text: &str) -> Markup {
    html! { p.notice { (text) } }
}

/// The `audit` grant a part of a page needs, said once the same way everywhere.
pub fn needs_audit(what: &str) -> Markup {
    notice(&format!("{what} needs `{{role: run, action: audit}}`, which this subject does not hold here."))
}

/// A status word with its class (`ok`, `bad`, `warn`), so color is never the only signal.
pub fn badge(word: &str) -> Markup {
    let class = match word {
        "applied" | "unchanged" | "ok" | "healthy" | "complete" | "none" => "badge ok",
        "failed" | "error" | "unhealthy" | "denied" | "revoked" | "expired" | "drift" | "disabled" => "badge bad",
        _ => "badge warn",
    };
    html! { span class=(class) { (word) } }
}

/// A query string from pairs, leaving out empty values (values percent-encoded).
pub fn query(pairs: &[(&str, Option<&str>)]) -> String {
    let parts: Vec<String> =
        pairs.iter().filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| format!("{k}={}", crate::ui::layout::encode(v)))).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Percent-encode a path segment or query value (everything but unreserved characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
