//! Bearer tokens: `Authorization: Bearer mcpctl_pat_…` (an McpToken, one project) or
//! `mcpctl_usr_…` (a User's login token, every project its grants reach) → SHA-256 → the caller
//! in the deployed snapshot, judged by schema's RBAC engine (`schema::rbac`); and the axum
//! extractors ([`Judged`], [`Authenticated`]) every authenticated route uses.
//!
//! # Guarantees
//! - Tokens are looked up in a map of SHA-256 digests built once per deploy
//!   ([`TokenIndex::build`]), McpTokens and user tokens alike; no request reads the store. An
//!   unknown token is a map miss: it leaves no state behind (there is no cache to grow).
//! - Revoked tokens, and every token of a disabled `User` (its own login tokens and the
//!   McpTokens acting for it), are not in the map (401 from the deploy that revoked or disabled
//!   them on). Expiry is checked on every request.
//! - A caller's grants are its effective bindings ([`schema::rbac::effective_bindings`]),
//!   resolved at deploy, each confined to the project it applies in: an McpToken acts in its own
//!   project only; a user acts in any project, with global definitions everywhere and a
//!   project's definitions in that project.
//! - Comparing in constant time is moot here: the map is keyed by the digest of the secret, so a
//!   timing difference of the lookup tells at most something about a digest, and finding a token
//!   from its digest is a SHA-256 preimage.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use schema::rbac::{self, EffectiveBinding, Request, SubjectRef};
use schema::spec::RoleBinding;
use schema::{DesiredState, Kind, Resource, Spec};

use crate::error::ApiError;
use crate::state::Snapshot;
use crate::AppState;

/// Who a token acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An McpToken: acts in `project` only.
    McpToken { name: String, project: String, user: Option<String> },
    /// A user's login token `token` (its name in `User.spec.tokens`): acts in every project.
    User { name: String, token: String },
}

/// Who is calling: a deployed, unrevoked, unexpired token of an enabled user (or of no user).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// `sha256:<hex>` of the raw token (McpToken.spec.hash, User.spec.tokens[].hash).
    pub hash: String,
    /// The token's stored prefix (`mcpctl_pat_ab12`, `mcpctl_usr_cd34`).
    pub prefix: String,
    /// Every grant, with the project it is confined to, resolved at deploy.
    pub grants: Arc<Vec<EffectiveBinding>>,
    /// An McpToken's grants as plain bindings (all apply in its project): the MCP hot path takes
    /// them without filtering. Empty for a user.
    token_bindings: Arc<Vec<RoleBinding>>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Caller {
    /// The McpToken's project; `None` for a user (not bound to one).
    pub fn project(&self) -> Option<&str> {
        match &self.principal {
            Principal::McpToken { project, .. } => Some(project),
            Principal::User { .. } => None,
        }
    }

    /// The subject the engine judges.
    pub fn subject(&self) -> SubjectRef<'_> {
        match &self.principal {
            Principal::McpToken { name, project, .. } => SubjectRef::McpToken { name, project },
            Principal::User { name, .. } => SubjectRef::User(name),
        }
    }

    /// How audit events and logs name the caller: the McpToken's name, or `User:<name>/<token>`.
    pub fn display_name(&self) -> String {
        match &self.principal {
            Principal::McpToken { name, .. } => name.clone(),
            Principal::User { name, token } => format!("User:{name}/{token}"),
        }
    }

    /// Whether the caller may act in `project` at all: an McpToken only in its own.
    pub fn acts_in(&self, project: &str) -> bool {
        self.project().is_none_or(|p| p == project)
    }

    /// Where a request about something in `project` (`None`: a global resource or action) is
    /// judged: an McpToken always in its own project (another project is refused by
    /// [`Caller::can`]); a user where it is asked.
    fn context<'a>(&'a self, project: Option<&'a str>) -> Option<&'a str> {
        self.project().or(project)
    }

    /// Whether the caller may make `req` in `project` (`None`: a global resource or action) —
    /// [`schema::rbac::can`] on the grants resolved at deploy.
    pub fn can(&self, project: Option<&str>, req: Request<'_>) -> bool {
        if project.is_some_and(|p| !self.acts_in(p)) {
            return false;
        }
        let at = self.context(project);
        self.grants.iter().any(|e| e.applies_in(at) && rbac::binding_allows(&e.binding, req))
    }

    /// Whether the caller may make `req` in some place it acts in: for a global resource, which
    /// every project shares (a user holding `view` on servers in one project may view a global
    /// server, as that project's tokens may).
    pub fn can_anywhere(&self, req: Request<'_>) -> bool {
        self.grants.iter().any(|e| rbac::binding_allows(&e.binding, req))
    }

    /// The bindings that apply in `project` (what the MCP handler filters lists and calls with).
    pub fn bindings_in(&self, project: &str) -> Arc<Vec<RoleBinding>> {
        match &self.principal {
            Principal::McpToken { project: own, .. } if own == project => self.token_bindings.clone(),
            Principal::McpToken { .. } => Arc::new(Vec::new()),
            Principal::User { .. } => {
                Arc::new(self.grants.iter().filter(|e| e.applies_in(Some(project))).map(|e| e.binding.clone()).collect())
            }
        }
    }

    /// `Ok` when the caller may make `req` in `project`, else 403 naming what was asked.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`].
    pub fn require(&self, project: Option<&str>, req: Request<'_>) -> Result<(), ApiError> {
        if self.can(project, req) {
            return Ok(());
        }
        let what = match req {
            Request::Action(a) => format!("run `{a}` (needs `{{role: run, action: {a}}}`)"),
            Request::Resource { role, kind, name } => {
                let role = serde_json::to_value(role).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                match name {
                    Some(n) => format!("{role} {} `{n}`", kind.plural()),
                    None => format!("{role} {}", kind.plural()),
                }
            }
        };
        let at = match self.context(project) {
            Some(p) => format!(" in project `{p}`"),
            None => String::new(),
        };
        Err(ApiError::Forbidden(format!("{what}{at}")))
    }

    fn is_expired(&self) -> bool {
        self.expires_at.is_some_and(|e| e <= chrono::Utc::now())
    }
}

/// `sha256:<hex>` of a raw token, as McpToken.spec.hash holds it.
pub fn token_hash(raw: &str) -> String {
    schema::token::hash(raw)
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

/// The deployed tokens (McpTokens and users' login tokens), by hash.
#[derive(Debug, Default)]
pub struct TokenIndex {
    by_hash: HashMap<String, Caller>,
}

fn user_disabled(state: &DesiredState, user: &str) -> bool {
    matches!(state.resolve(Kind::User, user, None), Some(Resource { spec: Spec::User(us), .. }) if us.disabled)
}

impl TokenIndex {
    /// Index the usable tokens of `state`: not revoked, and not acting for a disabled `User`.
    pub fn build(state: &DesiredState) -> Self {
        let mut by_hash = HashMap::new();
        for res in state.of_kind(Kind::McpToken) {
            let Spec::McpToken(t) = &res.spec else { continue };
            if t.revoked || t.user.as_deref().is_some_and(|u| user_disabled(state, u)) {
                continue;
            }
            let project = res.metadata.project.clone().unwrap_or_default();
            let grants = rbac::effective_bindings(state, SubjectRef::McpToken { name: res.name(), project: &project });
            let caller = Caller {
                token_bindings: Arc::new(grants.iter().map(|e| e.binding.clone()).collect()),
                grants: Arc::new(grants),
                principal: Principal::McpToken { name: res.name().to_string(), project, user: t.user.clone() },
                hash: t.hash.clone(),
                prefix: t.prefix.clone(),
                expires_at: t.expires_at,
            };
            by_hash.insert(t.hash.clone(), caller);
        }
        for res in state.of_kind(Kind::User) {
            let Spec::User(u) = &res.spec else { continue };
            if u.disabled {
                continue;
            }
            let grants = Arc::new(rbac::effective_bindings(state, SubjectRef::User(res.name())));
            for t in u.tokens.iter().filter(|t| !t.revoked) {
                let caller = Caller {
                    principal: Principal::User { name: res.name().to_string(), token: t.name.clone() },
                    hash: t.hash.clone(),
                    prefix: t.prefix.clone(),
                    grants: grants.clone(),
                    token_bindings: Arc::new(Vec::new()),
                    expires_at: t.expires_at,
                };
                by_hash.insert(t.hash.clone(), caller);
            }
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

    /// Every usable token's caller (in no particular order): who may call what, for the UI.
    pub fn callers(&self) -> impl Iterator<Item = &Caller> {
        self.by_hash.values()
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
        if caller.is_expired() {
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
        caller.iter().for_each(|c| app.usage.touch(c));
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

impl Judged {
    /// The caller, if it may make `req` in `project` (`None`: a global resource or action): the
    /// one check routes outside this module (chat, console) call, e.g.
    /// `judged.require(Some(&project), Request::Action("chat"))?`.
    ///
    /// # Errors
    /// 401 ([`ApiError::NoToken`], [`ApiError::BadToken`]) when the token is absent or not
    /// usable; 403 ([`ApiError::Forbidden`]) when its grants do not allow `req` there.
    pub fn require(&self, project: Option<&str>, req: Request<'_>) -> Result<&Caller, ApiError> {
        let caller = self.caller.as_ref().map_err(ApiError::clone_auth)?;
        caller.require(project, req)?;
        Ok(caller)
    }
}

impl Authenticated {
    /// [`Caller::require`] of this request's caller.
    ///
    /// # Errors
    /// 403 when the caller's grants do not allow `req` in `project`.
    pub fn require(&self, project: Option<&str>, req: Request<'_>) -> Result<(), ApiError> {
        self.caller.require(project, req)
    }
}
