//! Signing in to the UI: `GET /ui/login` (the form), `POST /ui/login` (field `token`, judged as
//! a bearer token is) and `POST /ui/logout`.
//!
//! # Guarantees
//! - The cookie [`COOKIE`] is `HttpOnly; SameSite=Strict; Path=/ui`, `Secure` when the request
//!   came over TLS (`X-Forwarded-Proto: https` or `Forwarded: proto=https` from the proxy in
//!   front), and lives at most [`COOKIE_MAX_AGE`].
//! - It holds the token itself, the same credential the bearer path accepts: no session table,
//!   so it works across restarts and replicas of the gateway, and revoking or expiring the token
//!   in git ends the UI session with the next deploy (each request is judged anew). A browser
//!   script cannot read it (HttpOnly) and no other site can send it (SameSite=Strict).
//! - A cross-site POST is refused (403) before anything is read (see [`same_site`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;

use super::layout::{self, Nav};
use crate::AppState;

/// The login cookie's name.
pub const COOKIE: &str = "mcpctl_ui";
/// How long the login cookie lives, in seconds (12 hours).
pub const COOKIE_MAX_AGE: u32 = 12 * 3600;
/// Longest token accepted by the form (deployed tokens are far shorter).
pub const MAX_TOKEN_LEN: usize = 256;

/// The token in the login cookie, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct LoginForm {
    token: String,
}

/// `GET /ui/login`.
pub(crate) async fn form() -> Response {
    login_page(StatusCode::OK, None)
}

fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let body = html! {
        div.login {
            h1 { "Sign in to mcpctl" }
            p { "Paste an McpToken (" code { "mcpctl_pat_…" } ") or a user's login token (" code { "mcpctl_usr_…" } "). The UI is read-only: what you see is what its grants let it view." }
            @if let Some(e) = error {
                p.error role="alert" id="login-error" { (e) }
            }
            form method="post" action="/ui/login" {
                label for="token" { "Token" }
                input #token type="password" name="token" required autocomplete="off" spellcheck="false"
                    aria-describedby=[error.map(|_| "login-error")];
                button type="submit" { "Sign in" }
            }
        }
    };
    (status, layout::page("Sign in", Nav::None, None, body)).into_response()
}

/// Whether a POST comes from a page of this site: the browser's `Sec-Fetch-Site` when it sends
/// one (`same-origin`, or `none` for a typed request), else an `Origin` (if any) whose host is
/// the `Host` asked.
fn same_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match (headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()), headers.get(header::HOST).and_then(|v| v.to_str().ok())) {
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, h)| h) == Some(host),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// Whether the request reached the proxy in front over TLS.
fn over_tls(headers: &HeaderMap) -> bool {
    let proto = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).map(|p| p.trim().eq_ignore_ascii_case("https"));
    let fwd = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|f| f.split([';', ',']).any(|p| p.trim().eq_ignore_ascii_case("proto=https")));
    proto.unwrap_or(false) || fwd
}

fn cookie(value: &str, max_age: u32, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"))
        .expect("cookie of checked characters")
}

/// `POST /ui/login`: a usable token → the cookie and a redirect to the dashboard; else the form
/// again (401) saying why, never echoing the token.
pub(crate) async fn login(State(app): State<Arc<AppState>>, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    if !same_site(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site sign-in refused").into_response();
    }
    let token = f.token.trim();
    let well_formed =
        !token.is_empty() && token.len() <= MAX_TOKEN_LEN && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !well_formed || app.snapshot().tokens.authenticate(Some(token)).is_err() {
        return login_page(StatusCode::UNAUTHORIZED, Some("That token is unknown, expired or revoked."));
    }
    let mut resp = Redirect::to("/ui").into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie(token, COOKIE_MAX_AGE, over_tls(&headers)));
    resp
}

/// `POST /ui/logout`: the cookie cleared, back to the login form.
pub(crate) async fn logout(headers: HeaderMap) -> Response {
    if !same_site(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site sign-out refused").into_response();
    }
    let mut resp = Redirect::to("/ui/login").into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie("", 0, over_tls(&headers)));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cookie_is_read_among_others_and_flags_are_set() {
        let h = headers(&[("cookie", "a=1; mcpctl_ui=mcpctl_pat_x; b=2")]);
        assert_eq!(cookie_token(&h), Some("mcpctl_pat_x"));
        assert_eq!(cookie_token(&headers(&[("cookie", "mcpctl_ui=")])), None);
        let c = cookie("t", COOKIE_MAX_AGE, true);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure") && c.contains("Path=/ui"), "{c}");
        assert!(!cookie("t", 1, false).to_str().unwrap().contains("Secure"));
        assert!(over_tls(&headers(&[("x-forwarded-proto", "https")])));
        assert!(over_tls(&headers(&[("forwarded", "for=1.2.3.4;proto=https")])));
        assert!(!over_tls(&headers(&[("x-forwarded-proto", "http")])));
    }

    #[test]
    fn cross_site_posts_are_refused() {
        assert!(same_site(&headers(&[("host", "gw:8080"), ("origin", "http://gw:8080")])));
        assert!(same_site(&headers(&[("host", "gw:8080")])));
        assert!(!same_site(&headers(&[("host", "gw:8080"), ("origin", "http://evil.example")])));
        assert!(!same_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_site(&headers(&[("sec-fetch-site", "same-site"), ("host", "gw"), ("origin", "http://gw")])));
        assert!(same_site(&headers(&[("sec-fetch-site", "same-origin"), ("origin", "null")])));
        assert!(!same_site(&headers(&[("host", "gw"), ("origin", "null")])));
    }
}
