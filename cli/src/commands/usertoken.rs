//! `mcpctl create usertoken NAME --user USER`: mint a user's login token (`mcpctl_usr_…`, for
//! `mcpctl login` and the REST API): the raw token is printed once on stdout and only its
//! SHA-256 is written, as an entry of the User's `spec.tokens`.
//!
//! # Guarantees
//! Minted as McpTokens are ([`super::tokens::mint`]: 32 bytes of the OS RNG). The User's document
//! is rewritten only when the repo with the new entry validates (unique name within the user,
//! unique hash across every token); otherwise nothing is written and nothing printed. A User in a
//! grouped list (`users: [...]`) is refused: the entry would mean re-emitting the whole list.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use chrono::Utc;
use serde_json::{json, Value};

use schema::{Kind, Spec};

use super::tokens::{expiry, mint};
use super::Result;
use crate::args::*;
use crate::CliError;

/// What `create usertoken` refuses, before anything is written.
#[derive(Debug, thiserror::Error)]
pub enum UserTokenError {
    #[error("create usertoken needs --user USER (the User the login token is for)")]
    NoUser,
    #[error("a login token belongs to no project: drop -p (its user's grants say where it acts)")]
    Project,
    #[error("a login token carries no grants of its own (--bind/--rbac/--as are for mcptokens): grant its user with an RbacDefinition")]
    Grants,
    #[error("User `{0}` is not defined in the repo")]
    NoSuchUser(String),
    #[error("User `{user}` sits in a grouped list in {file}; move it into its own `kind: User` document (then rerun)")]
    Grouped { user: String, file: String },
}

impl From<UserTokenError> for CliError {
    fn from(e: UserTokenError) -> Self {
        CliError::Other(e.into())
    }
}

pub(super) fn create(g: &Global, a: CreateArgs) -> Result {
    let user = a.token_user.clone().ok_or(UserTokenError::NoUser)?;
    if a.project.is_some() {
        return Err(UserTokenError::Project.into());
    }
    if !a.token.bind.is_empty() || a.token.rbac != RbacStart::Empty || a.token.as_user.is_some() {
        return Err(UserTokenError::Grants.into());
    }
    let expires = expiry(&a.token.ttl, Utc::now())?;
    let files = reconciler::read_dir(&g.repo).with_context(|| format!("reading repo {}", g.repo.display()))?;
    let loaded = schema::load::load(&files);
    let res = loaded
        .resources
        .iter()
        .find(|r| r.kind() == Kind::User && r.name() == user && matches!(r.spec, Spec::User(_)))
        .ok_or_else(|| UserTokenError::NoSuchUser(user.clone()))?;
    let origin = res.origin.as_ref().ok_or_else(|| UserTokenError::NoSuchUser(user.clone()))?;
    let file = origin.file.to_string();
    let text = files.iter().find(|f| f.path == file).map(|f| String::from_utf8_lossy(&f.bytes).into_owned()).unwrap_or_default();
    let (raw, hash, prefix) = mint(schema::token::USER_TOKEN_PREFIX)?;
    let mut entry = json!({"name": a.name, "hash": hash, "prefix": prefix});
    if let Some(d) = &a.token.description {
        entry["description"] = json!(d);
    }
    if let Some(e) = expires {
        entry["expiresAt"] = json!(e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    }
    let add = |doc: &mut Value| {
        let spec = doc.as_object_mut().expect("a User document is a mapping").entry("spec").or_insert_with(|| json!({}));
        let tokens = spec.as_object_mut().expect("spec is a mapping").entry("tokens").or_insert_with(|| json!([]));
        if let Some(list) = tokens.as_array_mut() {
            list.push(entry.clone());
        }
    };
    let new = crate::document_edit::rewrite_document(&text, origin.node.pos.line as usize, "User", add)
        .ok_or_else(|| UserTokenError::Grouped { user: user.clone(), file: file.clone() })?;
    crate::document_edit::write_checked(&g.repo, &BTreeMap::from([(file.clone(), new)]))?;
    writeln!(std::io::stdout(), "{raw}").context("writing the token")?;
    let when = expires
        .map_or_else(|| "never expires".to_string(), |e| format!("expires {}", e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
    let _ = writeln!(
        anstream::stderr(),
        "User `{user}` token `{}` ({prefix}…, {when}) written to {file}: only its SHA-256. The token above is shown once; \
         it works once this commit deploys (mcpctl push), with `mcpctl login --url URL`.",
        a.name
    );
    Ok(())
}
