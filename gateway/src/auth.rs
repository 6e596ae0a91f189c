//! Bearer tokens: `Authorization: Bearer mcpctl_pat_…` → SHA-256 → the McpToken in the store.
//!
//! # Guarantees
//! Only hashes are compared, in constant time. Lookups are cached 30 s when found and 5 s when not;
//! [`Authenticator::invalidate`] (called on every reconcile) drops the cache, so a revoked token
//! stops working at the next reconcile at the latest.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use reconciler::Store;
use schema::{Kind, Resource, Spec};

use crate::error::ApiError;

const POSITIVE_TTL: Duration = Duration::from_secs(30);
const NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The McpToken resource.
    pub token: Resource,
    pub project: String,
}

/// Verifies tokens against the store, with a small cache.
pub struct Authenticator {
    store: Store,
    cache: Mutex<HashMap<String, (Instant, Option<Caller>)>>,
}

fn token_hash(raw: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(raw.as_bytes())))
}

impl Authenticator {
    pub fn new(store: Store) -> Self {
        Self { store, cache: Mutex::new(HashMap::new()) }
    }

    /// Forget every cached answer.
    pub fn invalidate(&self) {
        self.cache.lock().expect("cache lock").clear();
    }

    /// The caller behind an `Authorization` header value.
    ///
    /// # Errors
    /// [`ApiError::NoToken`], [`ApiError::BadToken`] (unknown, expired, revoked), store errors.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Caller, ApiError> {
        let raw = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).filter(|t| !t.is_empty()).ok_or(ApiError::NoToken)?;
        let hash = token_hash(raw);
        if let Some((at, cached)) = self.cache.lock().expect("cache lock").get(&hash).cloned() {
            let ttl = if cached.is_some() { POSITIVE_TTL } else { NEGATIVE_TTL };
            if at.elapsed() < ttl {
                return check(cached);
            }
        }
        let mut found = None;
        for row in self.store.resources_of(Kind::McpToken, None).await? {
            let Ok(res) = Resource::from_body(&row.body) else { continue };
            let Spec::McpToken(t) = &res.spec else { continue };
            if bool::from(t.hash.as_bytes().ct_eq(hash.as_bytes())) {
                found = Some(Caller { project: res.metadata.project.clone().unwrap_or_default(), token: res });
            }
        }
        self.cache.lock().expect("cache lock").insert(hash, (Instant::now(), found.clone()));
        check(found)
    }
}

/// Expiry and revocation are checked on every request, cached or not.
fn check(caller: Option<Caller>) -> Result<Caller, ApiError> {
    let caller = caller.ok_or(ApiError::BadToken)?;
    let Spec::McpToken(t) = &caller.token.spec else { return Err(ApiError::BadToken) };
    if t.revoked || t.expires_at.is_some_and(|e| e <= chrono::Utc::now()) {
        return Err(ApiError::BadToken);
    }
    Ok(caller)
}
