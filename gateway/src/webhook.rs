//! `POST /api/v1/hooks/git`: a push notification from GitHub, Gitea or GitLab pokes the reconciler.
//!
//! # Guarantees
//! Without a configured secret the route answers 404. A request is accepted only with a valid
//! signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` (GitHub),
//! `X-Gitea-Signature: <hex HMAC-SHA256>` (Gitea), or `X-Gitlab-Token: <secret>` (GitLab); all
//! compared in constant time. The body is not otherwise trusted: it only triggers a fetch.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::AppState;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/hooks/git", post(hook))
}

/// Whether the headers carry a valid signature of `body` under `secret`.
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let hmac_ok = |hex_sig: &str| {
        let Ok(sig) = hex::decode(hex_sig.trim()) else { return false };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    };
    if let Some(s) = header("x-hub-signature-256") {
        return s.strip_prefix("sha256=").is_some_and(hmac_ok);
    }
    if let Some(s) = header("x-gitea-signature") {
        return hmac_ok(s);
    }
    // Compared as bytes: a secret with non-ASCII characters arrives as its UTF-8 bytes, which
    // `to_str` refuses (found by the `webhook` fuzz target).
    if let Some(t) = headers.get("x-gitlab-token") {
        return bool::from(t.as_bytes().ct_eq(secret.as_bytes()));
    }
    false
}

/// A git push happened: verify the signature, poke the reconciler.
#[utoipa::path(post, path = "/api/v1/hooks/git", tag = "webhook",
    request_body(content = Object, description = "GitHub, Gitea or GitLab push payload (verified by `X-Hub-Signature-256`, `X-Gitea-Signature` or `X-Gitlab-Token`)"),
    responses((status = 202, description = "reconcile requested", body = String), (status = 401, description = "bad signature", body = String), (status = 404, description = "no webhook secret configured", body = String)))]
pub(crate) async fn hook(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> (StatusCode, &'static str) {
    let (Some(secret), Some(poke)) = (&state.webhook_secret, &state.poke) else {
        return (StatusCode::NOT_FOUND, "webhook not configured");
    };
    if !verify(secret, &headers, &body) {
        return (StatusCode::UNAUTHORIZED, "bad signature");
    }
    poke.poke();
    (StatusCode::ACCEPTED, "reconcile triggered")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn github_gitea_and_gitlab_signatures() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let mut h = HeaderMap::new();
        assert!(!verify("s3", &h, body), "no signature");
        h.insert("x-hub-signature-256", format!("sha256={}", sign("s3", body)).parse().unwrap());
        assert!(verify("s3", &h, body));
        assert!(!verify("other", &h, body));
        assert!(!verify("s3", &h, b"tampered"));
        let mut h = HeaderMap::new();
        h.insert("x-gitea-signature", sign("s3", body).parse().unwrap());
        assert!(verify("s3", &h, body));
        let mut h = HeaderMap::new();
        h.insert("x-gitlab-token", "s3".parse().unwrap());
        assert!(verify("s3", &h, body));
        h.insert("x-gitlab-token", "s4".parse().unwrap());
        assert!(!verify("s3", &h, body));
        h.insert("x-gitlab-token", http::HeaderValue::from_bytes("clé-s3".as_bytes()).unwrap());
        assert!(verify("clé-s3", &h, body), "a non-ASCII secret");
    }
}
