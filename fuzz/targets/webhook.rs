//! Fuzz target: the git webhook's signature check (`gateway/src/webhook.rs`). The input is split
//! into a header choice, a secret, a header value and a body. Oracles: no panic; a signature
//! computed over the body with the secret is accepted in each of the three forms; the fuzzed
//! value is accepted only when it is such a signature (or, for GitLab, the secret itself).

use hmac::{Hmac, Mac};

/// One (header, secret, value, body) split of `data`.
pub fn run(data: &[u8]) {
    let [choice, secret_len, value_len, rest @ ..] = data else { return };
    let (secret, rest) = rest.split_at((*secret_len as usize).min(rest.len()));
    let (value, body) = rest.split_at((*value_len as usize).min(rest.len()));
    let secret = String::from_utf8_lossy(secret).into_owned();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    let good = hex::encode(mac.finalize().into_bytes());
    let with = |name: &'static str, v: &[u8]| {
        let mut h = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_bytes(v) {
            h.insert(name, v);
        }
        h
    };
    let verify = |h: &http::HeaderMap| mcpctl_gateway::webhook::verify(&secret, h, body);
    assert!(verify(&with("x-hub-signature-256", format!("sha256={good}").as_bytes())));
    assert!(verify(&with("x-gitea-signature", good.as_bytes())));
    if http::HeaderValue::from_str(&secret).is_ok() {
        assert!(verify(&with("x-gitlab-token", secret.as_bytes())));
    }
    let name = ["x-hub-signature-256", "x-gitea-signature", "x-gitlab-token", "x-other"][*choice as usize % 4];
    let headers = with(name, value);
    let text = headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let decodes_to_good = |s: &str| hex::decode(s.trim()).is_ok_and(|b| hex::encode(b) == good);
    let expected = match name {
        "x-hub-signature-256" => text.strip_prefix("sha256=").is_some_and(decodes_to_good),
        "x-gitea-signature" => decodes_to_good(text),
        "x-gitlab-token" => headers.get(name).is_some_and(|v| v.as_bytes() == secret.as_bytes()),
        _ => false,
    };
    assert_eq!(verify(&headers), expected, "header {name}: {text:?}");
}
