//! Bearer tokens: `Authorization: Bearer mcpctl_pat_…` → SHA-256 → the token in the deployed
//! snapshot, and the one axum extractor ([`Caller`]) every authenticated route uses.
//!
//! # Guarantees
//! - Tokens are looked up in a map of SHA-256 digests built once per deploy
//!   ([`TokenIndex::build`]); no request reads the store. An unknown token is a map miss: it
//!   leaves no state behind (there is no cache to grow).
//! - Revoked tokens and tokens whose `User` is disabled are not in the map (401 from the deploy
//!   that revoked or disabled them on). Expiry is checked on every request.
//! - Comparing in constant time is moot here: the map is keyed by the digest of the secret, so a
//!   timing difference of the lookup tells at most something about a digest, and finding a token
//!   from its digest is a SHA-256 preimage.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

use schema::spec::RoleBinding;
use schema::{DesiredState, Kind, Resource, Spec};

use crate::error::ApiError;
use crate::state::Snapshot;
use crate::AppState;

/// Who is calling: a deployed, unrevoked token of an enabled user.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The McpToken resource (shared: a caller is copied for every request).
    pub token: Arc<Resource>,
    pub project: String,
    /// `sha256:<hex>` of the raw token (McpToken.spec.hash).
    pub hash: String,
    /// The token's effective role bindings (its own, its user's, its groups'), resolved at deploy.
    pub bindings: Arc<Vec<RoleBinding>>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `sha256:<hex>` of a raw token, as McpToken.spec.hash holds it.
pub fn token_hash(raw: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(raw.as_bytes())))
}

/// The raw bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The deployed tokens, by hash.
#[derive(Debug, Default)]
pub struct TokenIndex {
    by_hash: HashMap<String, Caller>,
}

impl TokenIndex {
    /// Index the usable tokens of `state`: not revoked, and not acting for a disabled `User`.
    pub fn build(state: &DesiredState) -> Self {
        let mut by_hash = HashMap::new();
        for res in state.of_kind(Kind::McpToken) {
            let Spec::McpToken(t) = &res.spec else { continue };
            if t.revoked {
                continue;
            }
            if let Some(u) = t.user.as_deref() {
                if matches!(state.resolve(Kind::User, u, None), Some(Resource { spec: Spec::User(us), .. }) if us.disabled) {
                    continue;
                }
            }
            let bindings = Arc::new(schema::rbac::token_bindings(state, res));
            let caller = Caller {
                token: Arc::new(res.clone()),
                project: res.metadata.project.clone().unwrap_or_default(),
                hash: t.hash.clone(),
                bindings,
                expires_at: t.expires_at,
            };
            by_hash.insert(t.hash.clone(), caller);
        }
        Self { by_hash }
    }

    /// How many tokens are usable.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Whether `hash` is a usable token's.
    pub fn contains(&self, hash: &str) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// The caller behind a raw bearer token.
    ///
    /// # Errors
    /// [`ApiError::NoToken`] when there is none; [`ApiError::BadToken`] when it is unknown,
    /// expired, revoked or its user is disabled.
    pub fn authenticate(&self, raw: Option<&str>) -> Result<Caller, ApiError> {
        let raw = raw.ok_or(ApiError::NoToken)?;
        let caller = self.by_hash.get(&token_hash(raw)).ok_or(ApiError::BadToken)?;
        if caller.expires_at.is_some_and(|e| e <= chrono::Utc::now()) {
            return Err(ApiError::BadToken);
        }
        Ok(caller.clone())
    }
}

/// What a request's bearer token amounts to, judged against the snapshot in force: the one
/// extractor behind every authenticated route (REST through [`Authenticated`], MCP directly,
/// where a public project lets the absence of a token through). The handler answers from the
/// same snapshot, so a deploy landing mid-request cannot mix two states.
pub struct Judged {
    pub snapshot: Arc<Snapshot>,
    /// [`ApiError::NoToken`] without a bearer token; [`ApiError::BadToken`] for one that is
    /// unknown, expired, revoked, or whose user is disabled.
    pub caller: Result<Caller, ApiError>,
}

impl FromRequestParts<Arc<AppState>> for Judged {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let snapshot = app.snapshot();
        let caller = snapshot.tokens.authenticate(bearer(&parts.headers));
        Ok(Self { snapshot, caller })
    }
}

/// An authenticated REST caller with the snapshot it was judged against.
pub struct Authenticated {
    pub caller: Caller,
    pub snapshot: Arc<Snapshot>,
}

/// 401 (with `WWW-Authenticate`) when the token is absent, unknown, expired, revoked or its user
/// is disabled.
impl FromRequestParts<Arc<AppState>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let Ok(Judged { snapshot, caller }) = Judged::from_request_parts(parts, app).await;
        Ok(Self { caller: caller?, snapshot })
    }
}
