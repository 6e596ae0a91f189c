//! Unit tests of the UI's rendering: every value is escaped, the shell is accessible.

use schema::Resource;

use super::layout::{self, Nav};

fn evil_server() -> Resource {
    Resource::from_body(
        r#"{"apiVersion":"mcpctl.io/v1","kind":"Server","metadata":{"name":"evil","labels":{"x":"<i>y</i>"}},"spec":{"description":"<script>alert('x')</script>","command":"npx"}}"#,
    )
    .unwrap()
}

#[test]
fn a_description_holding_script_renders_as_text() {
    let res = evil_server();
    let html = super::resources::detail(&res, None, &[]).into_string();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("&lt;script&gt;alert('x')&lt;/script&gt;"), "shown as text in the fields and the YAML: {html}");
    assert!(!html.contains("<i>y</i>") && html.contains("&lt;i&gt;y&lt;/i&gt;"), "labels too");
}

#[test]
fn the_shell_has_a_skip_link_landmarks_and_only_external_script() {
    let html = layout::page("T <b>", Nav::None, None, maud::html! { h1 { "x" } }).into_string();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains(r##"<a class="skip" href="#main">"##) && html.contains(r#"<main id="main""#), "{html}");
    assert!(html.contains("<title>T &lt;b&gt; · mcpctl</title>"));
    // The only <script> is the embedded file, loaded from /ui/assets (the CSP allows no other).
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains(r#"<script src="/ui/assets/ui.js?v="#), "{html}");
    assert!(!html.contains(" style="), "no inline style (the CSP forbids it)");
}

#[test]
fn queries_are_encoded_and_empty_values_left_out() {
    assert_eq!(layout::query(&[("a", Some("x y&z")), ("b", None), ("c", Some(""))]), "?a=x%20y%26z");
    assert_eq!(layout::query(&[("b", None)]), "");
    assert!(super::CSP.contains("default-src 'self'") && !super::CSP.contains("unsafe-inline"));
}
