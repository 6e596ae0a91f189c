//! `mcpctl login`: check a token against a gateway (`GET /api/v1/whoami`) and keep it as the
//! current context of the config file ([`crate::context`]).
//!
//! # Guarantees
//! The token is read from `--token`, `$MCPCTL_TOKEN`, or a prompt that does not echo (on a
//! terminal only); it is written only to the config file (mode 0600) and never printed. A token
//! the gateway refuses writes nothing.

use std::io::{IsTerminal, Write};

use anyhow::Context as _;
use serde_json::{json, Value};

use super::Result;
use crate::args::*;
use crate::context::{config_path, Config, Context};
use crate::remote::{Remote, RemoteError};
use crate::CliError;

/// What `login` and `config` refuse.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("no token: pass --token, set $MCPCTL_TOKEN, or run `mcpctl login` on a terminal to be asked")]
    NoToken,
    #[error("login refused: {0}")]
    Refused(#[source] RemoteError),
}

impl From<LoginError> for CliError {
    fn from(e: LoginError) -> Self {
        CliError::Other(e.into())
    }
}

fn token_from_prompt(url: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(LoginError::NoToken.into());
    }
    let term = console::Term::stderr();
    term.write_str(&format!("Token for {}: ", reconciler::redact::urls(url))).context("writing the prompt")?;
    let t = term.read_secure_line().context("reading the token")?;
    Ok(t.trim().to_string())
}

/// `<who>@<host[:port]>` of a gateway URL.
fn default_name(who: &str, url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    format!("{who}@{host}")
}

/// Who a `whoami` answer names: a user's name, or `project/name` of an McpToken.
fn who(whoami: &Value) -> String {
    let name = whoami["name"].as_str().unwrap_or("?");
    match whoami["project"].as_str() {
        Some(p) if whoami["kind"] == "McpToken" => format!("{p}/{name}"),
        _ => name.to_string(),
    }
}

pub(super) async fn login(a: LoginArgs) -> Result {
    let token = match a.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => t.to_string(),
        None => token_from_prompt(&a.url)?,
    };
    if token.is_empty() {
        return Err(LoginError::NoToken.into());
    }
    let remote = Remote::new(&a.url, Some(token.clone()));
    let whoami = remote.get_json("/api/v1/whoami").await.map_err(LoginError::Refused)?;
    let who = who(&whoami);
    let name = a.name.unwrap_or_else(|| default_name(&who, &remote.url));
    let path = config_path()?;
    let mut config = Config::load(&path)?;
    config.upsert_current(Context { name: name.clone(), url: remote.url.clone(), token, user: Some(who.clone()) });
    config.save(&path)?;
    let mut out = anstream::stdout();
    let kind = whoami["kind"].as_str().unwrap_or("?");
    match a.output {
        TextOrJson::Json => {
            let v = json!({"context": name, "url": remote.url, "kind": kind, "name": whoami["name"], "project": whoami["project"], "config": path});
            writeln!(out, "{}", serde_json::to_string_pretty(&v).expect("json"))
        }
        TextOrJson::Text => writeln!(
            out,
            "Logged in to {} as {kind} {who}; context `{name}` is current ({}).",
            reconciler::redact::urls(&remote.url),
            path.display()
        ),
    }
    .context("writing output")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_names() {
        assert_eq!(default_name("alice", "http://127.0.0.1:8080"), "alice@127.0.0.1:8080");
        assert_eq!(default_name("lab/bot", "https://u:p@gw.example.com/base?x"), "lab/bot@gw.example.com");
        assert_eq!(who(&json!({"kind": "McpToken", "name": "bot", "project": "lab"})), "lab/bot");
        assert_eq!(who(&json!({"kind": "User", "name": "alice", "project": null})), "alice");
    }
}
