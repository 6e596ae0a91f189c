//! Redaction of URLs in text the runtimes log or store: credentials ride in a URL's userinfo
//! (`https://user:token@host`) and query (`?access_token=…`), so both are cut before a message
//! leaves a runtime.

/// `text` with every `scheme://…` URL reduced to scheme, host, port and path: userinfo, query and
/// fragment are removed (`https://u:p@h:1/x?t=1#f` → `https://h:1/x`). Pure.
///
/// # Caveats
/// Only URLs written with `://` are recognised; a bare `user:pass@host` is left as it is.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let scheme_start = rest[..at].rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))).map_or(0, |i| i + 1);
        if scheme_start == at {
            // No scheme before `://`: not a URL.
            out.push_str(&rest[..at + 3]);
            rest = &rest[at + 3..];
            continue;
        }
        out.push_str(&rest[..at + 3]);
        let url = &rest[at + 3..];
        let end = url.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')' | ']' | '}' | ',')).unwrap_or(url.len());
        let (url, after) = url.split_at(end);
        let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let (authority, path) = url.split_at(authority_end);
        out.push_str(authority.rsplit_once('@').map_or(authority, |(_, host)| host));
        out.push_str(&path[..path.find(['?', '#']).unwrap_or(path.len())]);
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_urls;

    #[test]
    fn userinfo_query_and_fragment_are_removed() {
        let cases = [
            ("https://user:s3cret@git.example.com:8443/org/repo.git?token=abc#frag", "https://git.example.com:8443/org/repo.git"),
            ("error sending request for url (https://x-access-token:ghp_1@api.example.com/v1?sig=zz): timeout", "error sending request for url (https://api.example.com/v1): timeout"),
            ("postgres://admin:hunter2@db.internal/mcpctl and http://h/p?a=1", "postgres://db.internal/mcpctl and http://h/p"),
            ("\"https://h?access_token=t\"", "\"https://h\""),
            ("http://a@b@host/x", "http://host/x"),
            ("no url here: a://", "no url here: a://"),
            ("://nothing", "://nothing"),
            ("http://plain.example/mcp", "http://plain.example/mcp"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_urls(input), want, "{input}");
        }
    }
}
