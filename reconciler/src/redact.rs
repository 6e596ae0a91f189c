//! Redaction of URLs in text mcpctl shows: errors, health, logs and API answers.
//!
//! URLs may carry credentials (`https://user:token@host/mcp`, `postgres://admin:pw@db`) or keys
//! in the query (`?key=…`); error messages of HTTP clients repeat the URL they failed on. [`urls`]
//! is applied at the source — the gateway's upstream side and the runtimes — so nothing downstream
//! (status API, metrics, audit, logs, JSON-RPC errors) has to remember to do it.
//!
//! # Guarantees
//! In every `scheme://…` URL inside the text: the userinfo (`user:pass@`) is removed, and the
//! query and fragment are removed with their `?` / `#`. Everything else is unchanged, byte for
//! byte, including text that is not a URL.

/// Characters that end a URL embedded in prose or in a quoted / bracketed error message.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '(' | ')' | '[' | ']' | '{' | '}' | '`' | '|' | '\\' | ',')
}

/// Whether `s` is a URL scheme (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )).
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// One URL (`scheme://rest`, already cut at its end) without userinfo, query or fragment.
fn redact_one(scheme: &str, rest: &str) -> String {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let path = &tail[..tail.find(['?', '#']).unwrap_or(tail.len())];
    format!("{scheme}://{host}{path}")
}

/// `text` with every embedded URL redacted (see the module's guarantees).
pub fn urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        // The scheme is the run of scheme characters right before `://`.
        let before = &rest[..pos];
        let scheme_start = before.rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))).map_or(0, |i| i + 1);
        let scheme = &before[scheme_start..];
        let after = &rest[pos + 3..];
        // Sentence punctuation right after a URL (`… at http://h/x?k=v: refused`) is not part of it.
        let url_len = after[..after.find(ends_url).unwrap_or(after.len())].trim_end_matches([':', '.', ';', '!']).len();
        if is_scheme(scheme) {
            out.push_str(&before[..scheme_start]);
            out.push_str(&redact_one(scheme, &after[..url_len]));
            rest = &after[url_len..];
        } else {
            out.push_str(&rest[..pos + 3]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::urls;

    #[test]
    fn strips_userinfo() {
        assert_eq!(urls("https://user:s3cret@example.com/mcp"), "https://example.com/mcp");
        assert_eq!(urls("http://tok@127.0.0.1:8080"), "http://127.0.0.1:8080");
        // An `@` in the password: everything up to the last `@` of the authority goes.
        assert_eq!(urls("http://u:p@ss@h.example/x"), "http://h.example/x");
    }

    #[test]
    fn strips_query_and_fragment() {
        assert_eq!(urls("https://api.example.com/mcp?key=abc&x=1"), "https://api.example.com/mcp");
        assert_eq!(urls("https://api.example.com/mcp#frag"), "https://api.example.com/mcp");
        assert_eq!(urls("https://h.example?key=abc"), "https://h.example");
        assert_eq!(urls("https://a:b@h.example:9/p/q?key=abc#f"), "https://h.example:9/p/q");
    }

    #[test]
    fn urls_inside_text_and_several() {
        let text = "cannot connect to http://alice:pw@127.0.0.1:9/mcp?key=k1: error sending request for url (http://alice:pw@127.0.0.1:9/mcp?key=k1)";
        assert_eq!(urls(text), "cannot connect to http://127.0.0.1:9/mcp: error sending request for url (http://127.0.0.1:9/mcp)");
        assert_eq!(urls("see \"wss://x:y@h/s?t=1\", then ftp://h/f"), "see \"wss://h/s\", then ftp://h/f");
    }

    #[test]
    fn leaves_other_text_alone() {
        for text in
            ["", "no url here", "ratio 3://4 is not a url", "://nothing", "user@example.com wrote a?b=c", "http://example.com/plain/path"]
        {
            assert_eq!(urls(text), text);
        }
        assert_eq!(urls("über: https://ü:ß@höst.example/päth?q=ü — ok"), "über: https://höst.example/päth — ok");
    }

    #[test]
    fn userinfo_query_and_fragment_are_removed() {
        let cases = [
            ("https://user:s3cret@git.example.com:8443/org/repo.git?token=abc#frag", "https://git.example.com:8443/org/repo.git"),
            (
                "error sending request for url (https://x-access-token:ghp_1@api.example.com/v1?sig=zz): timeout",
                "error sending request for url (https://api.example.com/v1): timeout",
            ),
            ("postgres://admin:hunter2@db.internal/mcpctl and http://h/p?a=1", "postgres://db.internal/mcpctl and http://h/p"),
            ("\"https://h?access_token=t\"", "\"https://h\""),
            ("http://a@b@host/x", "http://host/x"),
            ("no url here: a://", "no url here: a://"),
            ("://nothing", "://nothing"),
            ("http://plain.example/mcp", "http://plain.example/mcp"),
        ];
        for (input, want) in cases {
            assert_eq!(urls(input), want, "{input}");
        }
    }
}
