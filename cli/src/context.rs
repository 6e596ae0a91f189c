//! The CLI's config file of login contexts (kubeconfig-like): `~/.config/mcpctl/config.yaml`, or
//! `$MCPCTL_CONFIG`. Each context names a gateway URL and the token to send it; one is current.
//!
//! ```yaml
//! apiVersion: mcpctl.io/v1
//! kind: Config
//! currentContext: alice@gw.example.com
//! contexts:
//!   - name: alice@gw.example.com
//!     url: https://gw.example.com
//!     token: mcpctl_usr_…
//!     user: alice
//! ```
//!
//! # Guarantees
//! - The file holds raw tokens, so it is written with mode 0600 (its directory 0700 when this
//!   creates it), through a temporary file renamed over the old one: a reader never sees half a
//!   file, and the token is never readable by others, not even for a moment.
//! - A file that does not parse is an error naming it and the position; nothing is written then.
//! - Tokens are never printed: `config get-contexts` shows a context's URL, user and token prefix.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `kind` of the config document.
pub const CONFIG_KIND: &str = "Config";
/// The config file's largest accepted size (it holds a few contexts, not data).
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// What can go wrong with the config file.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("no config directory for this user; set $MCPCTL_CONFIG")]
    NoConfigDir,
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge { path: String },
    #[error("{path}:{at}: {message}")]
    Parse { path: String, at: String, message: String },
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no context `{name}` in {path} (see `mcpctl config get-contexts`)")]
    NoSuchContext { name: String, path: String },
}

impl From<ContextError> for crate::CliError {
    fn from(e: ContextError) -> Self {
        crate::CliError::Other(e.into())
    }
}

/// One gateway and the token to send it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Context {
    pub name: String,
    /// Base URL of the gateway, e.g. `https://gw.example.com`.
    pub url: String,
    /// The raw bearer token (`mcpctl_usr_…` or `mcpctl_pat_…`).
    pub token: String,
    /// Who the gateway said the token is (`User` name, or `project/name` of an McpToken), as
    /// recorded by `mcpctl login`; informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Context {
    /// The token's first characters, for display (never the whole token).
    pub fn token_prefix(&self) -> String {
        schema::token::prefix_of(&self.token)
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    #[serde(default = "api_version")]
    pub api_version: String,
    #[serde(default = "config_kind")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    #[serde(default)]
    pub contexts: Vec<Context>,
}

fn api_version() -> String {
    schema::API_VERSION.to_string()
}
fn config_kind() -> String {
    CONFIG_KIND.to_string()
}

/// Where the config file is: `$MCPCTL_CONFIG`, else `mcpctl/config.yaml` under the user's config
/// directory (`~/.config` on Linux).
///
/// # Errors
/// [`ContextError::NoConfigDir`] when neither exists.
pub fn config_path() -> Result<PathBuf, ContextError> {
    match std::env::var_os("MCPCTL_CONFIG").filter(|p| !p.is_empty()) {
        Some(p) => Ok(PathBuf::from(p)),
        None => Ok(dirs::config_dir().ok_or(ContextError::NoConfigDir)?.join("mcpctl").join("config.yaml")),
    }
}

impl Config {
    /// Read the config file at `path`; a missing file is an empty config.
    ///
    /// # Errors
    /// When it cannot be read, is over [`MAX_CONFIG_BYTES`], or does not parse.
    pub fn load(path: &Path) -> Result<Config, ContextError> {
        let shown = path.display().to_string();
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::empty()),
            Err(source) => return Err(ContextError::Read { path: shown, source }),
        };
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(ContextError::TooLarge { path: shown });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ContextError::Read { path: shown.clone(), source })?;
        let parse_err = |at: String, message: String| ContextError::Parse { path: shown.clone(), at, message };
        let docs = schema::document::parse(&text).map_err(|e| parse_err(e.pos.to_string(), e.message))?;
        let Some(doc) = docs.first() else { return Ok(Config::empty()) };
        let config: Config = serde_path_to_error::deserialize(doc.to_json()).map_err(|e| {
            let segs: Vec<schema::document::Seg> = e
                .path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Seq { index } => Some(schema::document::Seg::Index(*index)),
                    serde_path_to_error::Segment::Map { key } => Some(schema::document::Seg::Key(key.clone())),
                    _ => None,
                })
                .collect();
            parse_err(doc.locate(&segs, true).to_string(), format!("{}: {}", e.path(), e.inner()))
        })?;
        if config.kind != CONFIG_KIND {
            return Err(parse_err("1:1".into(), format!("kind is `{}`, expected `{CONFIG_KIND}`", config.kind)));
        }
        Ok(config)
    }

    fn empty() -> Config {
        Config { api_version: api_version(), kind: config_kind(), current_context: None, contexts: Vec::new() }
    }

    /// Write the config to `path` with mode 0600, atomically (see the module's guarantees).
    ///
    /// # Errors
    /// When the directory or file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), ContextError> {
        let err = |source| ContextError::Write { path: path.display().to_string(), source };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.exists() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(dir).map_err(err)?;
        }
        let text = schema::emit::yaml_document(&serde_json::to_value(self).expect("config serializes"));
        let tmp = dir.join(format!(".{}.tmp-{}", path.file_name().and_then(|n| n.to_str()).unwrap_or("config"), std::process::id()));
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let _ = std::fs::remove_file(&tmp);
        let written = o.open(&tmp).and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(err(e));
        }
        Ok(())
    }

    /// The context called `name`.
    pub fn get(&self, name: &str) -> Option<&Context> {
        self.contexts.iter().find(|c| c.name == name)
    }

    /// The current context, if one is set and exists.
    pub fn current(&self) -> Option<&Context> {
        self.current_context.as_deref().and_then(|n| self.get(n))
    }

    /// Add `ctx`, replacing a context of the same name, and make it current.
    pub fn upsert_current(&mut self, ctx: Context) {
        self.current_context = Some(ctx.name.clone());
        match self.contexts.iter_mut().find(|c| c.name == ctx.name) {
            Some(c) => *c = ctx,
            None => self.contexts.push(ctx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(name: &str) -> Context {
        Context {
            name: name.into(),
            url: "http://127.0.0.1:1".into(),
            token: "mcpctl_usr_0123456789abcdef".into(),
            user: Some("alice".into()),
        }
    }

    #[test]
    fn saves_private_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/dir/config.yaml");
        assert_eq!(Config::load(&path).unwrap(), Config::empty(), "a missing file is an empty config");
        let mut c = Config::empty();
        c.upsert_current(ctx("a"));
        c.upsert_current(ctx("b"));
        c.upsert_current(Context { url: "http://other".into(), ..ctx("a") });
        c.save(&path).unwrap();
        let back = Config::load(&path).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.current().map(|c| c.url.as_str()), Some("http://other"));
        assert_eq!(back.contexts.len(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        }
        assert_eq!(ctx("a").token_prefix(), "mcpctl_usr_01234567");
    }

    #[test]
    fn bad_files_are_errors_with_positions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, "apiVersion: mcpctl.io/v1\nkind: Config\ncontexts:\n  - name: a\n    url: u\n    tokn: t\n").unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(e.contains("config.yaml:6:5") && e.contains("tokn"), "{e}");
        std::fs::write(&path, "kind: Kubeconfig\n").unwrap();
        assert!(Config::load(&path).unwrap_err().to_string().contains("expected `Config`"));
        std::fs::write(&path, "contexts: [\n").unwrap();
        assert!(matches!(Config::load(&path), Err(ContextError::Parse { .. })));
    }
}
