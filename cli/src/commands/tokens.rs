//! McpTokens from the CLI: `create mcptoken` mints one (the raw token printed once, only its
//! SHA-256 written), `revoke mcptoken` marks it revoked, and the `get mcptokens` table with the
//! gateway's last-used times.
//!
//! # Guarantees
//! The raw token is `mcpctl_pat_` + 32 bytes of the OS RNG (hex); it goes to stdout and nowhere
//! else (no file, no log, no error). The file is written only when the repo with it validates and
//! its bindings lie within the creator's permissions (schema::ceiling).

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use reconciler::plan::StoredResource;
use schema::spec::RoleBinding;
use schema::{Kind, Resource, ResourceKey, Spec};

use super::Result;
use crate::args::*;
use crate::{authoring, render, CliError};

/// `mcpctl_pat_`: what every raw token starts with.
pub const TOKEN_PREFIX: &str = "mcpctl_pat_";
/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;
/// Hex digits of the random part kept in `spec.prefix` (32 of the 256 bits).
pub const PREFIX_HEX: usize = 8;

/// What went wrong in a token command, before anything was written.
#[derive(Debug, thiserror::Error)]
pub enum TokenCmdError {
    #[error("--ttl `{0}`: expected a duration (30d, 12h), `never`, or an RFC 3339 time or date in the future")]
    Ttl(String),
    #[error("--rbac clone needs --as USER (the permissions to copy)")]
    CloneWithoutCreator,
    #[error("the OS random number generator failed: {0}")]
    Random(String),
    #[error("only mcptokens can be revoked (got `{0}`)")]
    NotToken(String),
    #[error("McpToken `{name}` is not defined in project `{project}`")]
    NotFound { name: String, project: String },
    #[error("McpToken `{0}` is already revoked")]
    AlreadyRevoked(String),
}

impl From<TokenCmdError> for CliError {
    fn from(e: TokenCmdError) -> Self {
        CliError::Other(e.into())
    }
}

/// A new raw token starting with `marker` (`mcpctl_pat_`, or `mcpctl_usr_` for a user's login
/// token), its `sha256:` hash and its prefix.
pub(crate) fn mint(marker: &str) -> std::result::Result<(String, String, String), TokenCmdError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| TokenCmdError::Random(e.to_string()))?;
    let raw = format!("{marker}{}", hex::encode(bytes));
    let prefix = raw[..marker.len() + PREFIX_HEX].to_string();
    Ok((raw.clone(), gateway::auth::token_hash(&raw), prefix))
}

/// The expiry a `--ttl` means at `now` (`None`: never).
pub(crate) fn expiry(ttl: &str, now: DateTime<Utc>) -> std::result::Result<Option<DateTime<Utc>>, TokenCmdError> {
    let bad = || TokenCmdError::Ttl(ttl.into());
    let at = if ttl == "never" {
        return Ok(None);
    } else if let Ok(d) = humantime::parse_duration(ttl) {
        now + chrono::Duration::from_std(d).map_err(|_| bad())?
    } else if let Ok(t) = DateTime::parse_from_rfc3339(ttl) {
        t.with_timezone(&Utc)
    } else if let Ok(d) = NaiveDate::parse_from_str(ttl, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc()
    } else {
        return Err(bad());
    };
    if at <= now {
        return Err(bad());
    }
    Ok(Some(at))
}

/// `mcpctl create mcptoken NAME -p PROJECT …`.
pub(crate) fn create(g: &Global, a: CreateArgs) -> Result {
    let t = &a.token;
    let project = a.project.clone().unwrap_or_default();
    let now = Utc::now();
    let expires = expiry(&t.ttl, now)?;
    let mut bindings: Vec<RoleBinding> = match (t.rbac, &t.as_user) {
        (RbacStart::Empty, _) => Vec::new(),
        (RbacStart::Clone, None) => return Err(TokenCmdError::CloneWithoutCreator.into()),
        (RbacStart::Clone, Some(u)) => schema::ceiling::ceiling_of(&super::load_repo(&g.repo)?, u, &project),
    };
    for b in &t.bind {
        if !bindings.contains(b) {
            bindings.push(b.clone());
        }
    }
    if t.as_user.is_none() {
        render::warn_line("no --as USER (or $MCPCTL_USER): nothing bounds this token's bindings; reviews flag it");
    }
    let (raw, hash, prefix) = mint(TOKEN_PREFIX)?;
    let mut spec =
        json!({"hash": hash, "prefix": prefix, "bindings": bindings, "createdAt": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)});
    let obj = spec.as_object_mut().expect("a mapping");
    let optional = [
        ("description", t.description.clone()),
        ("createdBy", t.as_user.clone()),
        ("expiresAt", expires.map(|e| e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))),
    ];
    for (field, value) in optional {
        if let Some(v) = value {
            obj.insert(field.into(), Value::String(v));
        }
    }
    let key = ResourceKey::new(Kind::McpToken, Some(&project), &a.name);
    let header = "# Only the SHA-256 of the token is here; the raw token was printed once by `mcpctl create mcptoken`.\n";
    let rel = authoring::write_new(g, &key, spec, header, |state| refuse_escalation(state, &key))?;
    writeln!(std::io::stdout(), "{raw}").context("writing the token")?;
    let expiry = expires
        .map_or_else(|| "never expires".to_string(), |e| format!("expires {}", e.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
    let _ = writeln!(
        anstream::stderr(),
        "{key} written to {rel} ({expiry}). The token above is shown once: store it now. It works once this commit deploys (mcpctl push)."
    );
    Ok(())
}

/// Refuse a new token whose bindings exceed its creator's ceiling, naming each.
fn refuse_escalation(state: &schema::DesiredState, key: &ResourceKey) -> Result {
    let Some(token) = state.get(key) else { return Ok(()) };
    let over = schema::ceiling::escalations(state, token);
    if over.is_empty() {
        return Ok(());
    }
    let creator = match &token.spec {
        Spec::McpToken(t) => t.created_by.clone().unwrap_or_default(),
        _ => String::new(),
    };
    for (_, b) in &over {
        render::error_line(&format!(
            "--bind {}: exceeds the permissions of User `{creator}` (--as) in project `{}`; nothing was written",
            schema::rbac::binding_syntax(b),
            key.project().unwrap_or_default()
        ));
    }
    Err(CliError::Invalid(over.len()))
}

/// `mcpctl revoke mcptoken NAME -p PROJECT`: set `spec.revoked: true` in its file, in place.
pub(super) fn revoke(g: &Global, a: RevokeArgs) -> Result {
    if Kind::parse_any(&a.kind) != Some(Kind::McpToken) {
        return Err(TokenCmdError::NotToken(a.kind).into());
    }
    let files = reconciler::read_dir(&g.repo).with_context(|| format!("reading repo {}", g.repo.display()))?;
    let loaded = schema::load::load(&files);
    let key = ResourceKey::new(Kind::McpToken, Some(&a.project), &a.name);
    let not_found = || TokenCmdError::NotFound { name: a.name.clone(), project: a.project.clone() };
    let res = loaded.resources.iter().find(|r| r.key() == key).ok_or_else(not_found)?;
    let Spec::McpToken(t) = &res.spec else { return Err(not_found().into()) };
    if t.revoked {
        return Err(TokenCmdError::AlreadyRevoked(a.name).into());
    }
    let origin = res.origin.as_ref().ok_or_else(not_found)?;
    let file = origin.file.to_string();
    let text = files.iter().find(|f| f.path == file).map(|f| String::from_utf8_lossy(&f.bytes).into_owned()).unwrap_or_default();
    let spec = |k: &str| vec![schema::document::Seg::Key("spec".into()), schema::document::Seg::Key(k.into())];
    let written = origin.node.with_node(|n| n.get("spec").and_then(|s| s.get("revoked")).is_some()).unwrap_or(false);
    let edited = if written {
        // `revoked: false` written out: turn the value.
        let pos = origin.node.with_node(|n| n.locate(&spec("revoked"), false)).unwrap_or(origin.node.pos);
        replace_at(&text, pos, "false", "true")
    } else {
        // Insert `revoked: true` before the `hash` key, in the style of the mapping around it.
        let pos = origin.node.with_node(|n| n.locate(&spec("hash"), true)).unwrap_or(origin.node.pos);
        insert_before(&text, pos)
    }
    .with_context(|| format!("{file}: cannot find where to write `revoked: true`; edit it by hand (mcpctl edit mcptoken {})", a.name))?;
    authoring::rewrite_checked(g, &file, &edited)?;
    render::ok_line(&format!("{key} revoked in {file}; it is refused (401) once this commit deploys (mcpctl push)"));
    Ok(())
}

/// Byte offset of a 1-based line and column (in characters).
fn offset(text: &str, pos: schema::document::Pos) -> Option<usize> {
    let start: usize = text.split_inclusive('\n').take(pos.line.checked_sub(1)? as usize).map(str::len).sum();
    let line = text[start..].split('\n').next()?;
    let col = line.char_indices().nth(pos.col.checked_sub(1)? as usize).map_or(line.len(), |(i, _)| i);
    Some(start + col)
}

fn replace_at(text: &str, pos: schema::document::Pos, from: &str, to: &str) -> Option<String> {
    let at = offset(text, pos)?;
    text[at..].starts_with(from).then(|| format!("{}{to}{}", &text[..at], &text[at + from.len()..]))
}

fn insert_before(text: &str, pos: schema::document::Pos) -> Option<String> {
    let at = offset(text, pos)?;
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let lead = &text[line_start..at];
    let insert = if lead.chars().all(|c| c == ' ') {
        // Block mapping: a line of its own at the same indentation.
        format!("revoked: true\n{lead}")
    } else {
        // Flow mapping (`{hash: …}`): an entry of its own.
        "revoked: true, ".to_string()
    };
    Some(format!("{}{insert}{}", &text[..at], &text[at..]))
}

/// A token's state as `get mcptokens` shows it.
fn state_of(t: &schema::spec::McpTokenSpec, now: DateTime<Utc>) -> &'static str {
    if t.revoked {
        "revoked"
    } else if t.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

fn day(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

/// `get mcptokens`: NAME, PROJECT, PREFIX, CREATED, LAST USED, EXPIRES, STATUS; `-o json` adds a
/// `status` object (`lastUsedAt`, `uses`, `state`) to each resource.
pub(super) async fn list(out: &mut impl Write, store: &reconciler::Store, items: &[(StoredResource, Resource)], json_out: bool) -> Result {
    let usage = store.token_usage().await.context("reading token usage")?;
    let now = Utc::now();
    let mut rows = Vec::new();
    let mut list = Vec::new();
    for (_, res) in items {
        let Spec::McpToken(t) = &res.spec else { continue };
        let used = usage.get(&t.hash);
        if json_out {
            let mut v = res.to_json();
            v["status"] =
                json!({"lastUsedAt": used.map(|u| &u.last_used_at), "uses": used.map_or(0, |u| u.uses), "state": state_of(t, now)});
            list.push(v);
            continue;
        }
        let last = used.and_then(|u| DateTime::parse_from_rfc3339(&u.last_used_at).ok()).map(|t| t.with_timezone(&Utc));
        rows.push(vec![
            res.name().to_string(),
            res.metadata.project.clone().unwrap_or_default(),
            t.prefix.clone(),
            day(t.created_at),
            last.map_or_else(|| "never".into(), |t| day(Some(t))),
            t.expires_at.map_or_else(|| "never".into(), |e| day(Some(e))),
            state_of(t, now).to_string(),
        ]);
    }
    if json_out {
        writeln!(out, "{}", serde_json::to_string_pretty(&list).expect("json")).context("writing output")?;
        return Ok(());
    }
    render::columns(out, &["NAME", "PROJECT", "PREFIX", "CREATED", "LAST USED", "EXPIRES", "STATUS"], &rows).context("writing output")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::document::Pos;

    #[test]
    fn ttl_forms() {
        let now = DateTime::parse_from_rfc3339("2026-12-03T12:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(expiry("never", now).unwrap(), None);
        assert_eq!(expiry("30d", now).unwrap().unwrap().to_rfc3339(), "2027-01-02T12:00:00+00:00");
        assert_eq!(expiry("2027-02-01T00:00:00Z", now).unwrap().unwrap().to_rfc3339(), "2027-02-01T00:00:00+00:00");
        assert_eq!(expiry("2027-02-01", now).unwrap().unwrap().to_rfc3339(), "2027-02-01T00:00:00+00:00");
        for bad in ["2020-01-01", "soon", "-1d", ""] {
            assert!(expiry(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn minted_tokens_are_random_and_hash_as_the_gateway_does() {
        let (a, ha, pa) = mint(TOKEN_PREFIX).unwrap();
        let (b, _, _) = mint(TOKEN_PREFIX).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 2 * TOKEN_BYTES);
        assert!(a.starts_with(&pa) && pa.len() == TOKEN_PREFIX.len() + PREFIX_HEX);
        assert_eq!(ha, gateway::auth::token_hash(&a));
    }

    #[test]
    fn revoked_goes_in_the_style_of_the_mapping() {
        let block = "spec:\n  prefix: p\n  hash: \"sha256:x\"\n";
        assert_eq!(insert_before(block, Pos::new(3, 3)).unwrap(), "spec:\n  prefix: p\n  revoked: true\n  hash: \"sha256:x\"\n");
        let flow = "spec: {hash: x, prefix: p}\n";
        assert_eq!(insert_before(flow, Pos::new(1, 8)).unwrap(), "spec: {revoked: true, hash: x, prefix: p}\n");
        assert_eq!(replace_at("  revoked: false\n", Pos::new(1, 12), "false", "true").unwrap(), "  revoked: true\n");
        assert!(replace_at("  revoked: no\n", Pos::new(1, 12), "false", "true").is_none());
    }
}
