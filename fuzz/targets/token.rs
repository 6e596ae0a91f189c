//! Fuzz target: bearer token parsing (`Authorization` header → `auth::bearer`) and the token
//! formats of `schema::token`. Oracles: no panic; a bearer is the trimmed rest of the header; its
//! stored prefix is a prefix of it and at most marker + 8 characters; its hash has the stored
//! form; an unknown token never authenticates.

/// One `Authorization` header value.
pub fn run(data: &[u8]) {
    let Ok(value) = http::HeaderValue::from_bytes(data) else { return };
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, value);
    let Some(raw) = mcpctl_gateway::auth::bearer(&headers) else { return };
    assert!(!raw.is_empty() && raw.trim() == raw, "bearer {raw:?} is not trimmed");
    let prefix = schema::token::prefix_of(raw);
    assert!(raw.starts_with(&prefix), "prefix {prefix:?} of {raw:?}");
    assert!(prefix.chars().count() <= schema::token::USER_TOKEN_PREFIX.len() + schema::token::PREFIX_RANDOM_CHARS);
    assert!(schema::token::is_hash(&schema::token::hash(raw)));
    assert!(!schema::token::is_hash(raw) || raw.starts_with("sha256:"));
    assert!(mcpctl_gateway::auth::TokenIndex::default().authenticate(Some(raw)).is_err());
}
