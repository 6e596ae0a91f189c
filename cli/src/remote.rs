//! The gateway's REST API as the CLI reaches it: where it is and which token to send, resolved
//! once per command (flags, then `$MCPCTL_URL` / `$MCPCTL_TOKEN`, then the current login
//! context), and the few request helpers every remote command shares.
//!
//! # Guarantees
//! The token is sent only as a bearer header to the resolved URL and is never printed; errors
//! name the URL (redacted by `reconciler::redact::urls`) and the HTTP status, never the token.

use std::time::Duration;

use serde_json::Value;

/// Default time for one API request (streams are not bounded by it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("cannot reach the gateway at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the gateway at {url} answered {status}: {message}")]
    Status { url: String, status: u16, message: String },
    #[error("the gateway at {url} refused the token ({status}): {message}")]
    Unauthorized { url: String, status: u16, message: String },
    #[error("the gateway at {url} sent an answer that is not JSON: {source}")]
    Decode {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

/// Where a remote's URL and token were found, in the order they are looked for.
#[derive(Debug, Clone, Default)]
pub struct Target<'a> {
    /// A URL flag (`--server`, or a command's own `--url`).
    pub url: Option<&'a str>,
    /// A token flag (`login --token`, `test mcp --token`).
    pub token: Option<&'a str>,
    /// `--context NAME` (else `$MCPCTL_CONTEXT`, else the config's current context).
    pub context: Option<&'a str>,
}

/// A gateway to talk to.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl Remote {
    /// The gateway named by flags, else by `$MCPCTL_URL` / `$MCPCTL_TOKEN`, else by the current
    /// login context; `None` when none names a URL (the command then works on the local
    /// database). A config file that cannot be read is reported on stderr and ignored here; use
    /// [`Remote::locate`] to refuse instead.
    #[allow(dead_code)] // for the remote commands of chat and console (their own --url/--token)
    pub fn resolve(url: Option<&str>, token: Option<&str>) -> Option<Remote> {
        Remote::locate(&Target { url, token, context: None }).unwrap_or_else(|e| {
            crate::render::error_line(&format!("{e} (ignored)"));
            None
        })
    }

    /// [`Remote::resolve`], strictly: URL from the flag, `$MCPCTL_URL`, or the context
    /// (`--context`, `$MCPCTL_CONTEXT`, the current one); token from the flag, `$MCPCTL_TOKEN`,
    /// or the context when the URL is the context's.
    ///
    /// # Errors
    /// When the config file cannot be read or parsed, or a named context does not exist.
    pub fn locate(t: &Target<'_>) -> Result<Option<Remote>, crate::context::ContextError> {
        let env = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
        let named = t.context.map(str::to_owned).or_else(|| env("MCPCTL_CONTEXT"));
        let url = t.url.map(str::to_owned).or_else(|| env("MCPCTL_URL"));
        let token = t.token.map(str::to_owned).or_else(|| env("MCPCTL_TOKEN"));
        // The config file is read only when it can matter.
        let context =
            if named.is_some() || url.is_none() || token.is_none() {
                let path = crate::context::config_path()?;
                let config = crate::context::Config::load(&path)?;
                match &named {
                    Some(n) => Some(config.get(n).cloned().ok_or_else(|| crate::context::ContextError::NoSuchContext {
                        name: n.clone(),
                        path: path.display().to_string(),
                    })?),
                    None => config.current().cloned(),
                }
            } else {
                None
            };
        let (url, token) = match (url, context) {
            // An explicit context beats $MCPCTL_URL; a URL flag beats both.
            (Some(_), Some(c)) if named.is_some() && t.url.is_none() => (c.url.clone(), token.or(Some(c.token))),
            (Some(u), Some(c)) => {
                let same = u.trim_end_matches('/') == c.url.trim_end_matches('/');
                (u, token.or(same.then_some(c.token)))
            }
            (Some(u), None) => (u, token),
            (None, Some(c)) => (c.url.clone(), token.or(Some(c.token))),
            (None, None) => return Ok(None),
        };
        Ok(Some(Remote::new(&url, token)))
    }

    pub fn new(url: &str, token: Option<String>) -> Remote {
        let client = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Remote { url: url.trim_end_matches('/').to_owned(), token, client }
    }

    /// The bearer token, for a client of another protocol on the same gateway (the MCP endpoint
    /// `mcpctl chat`'s `/tools` lists); never print it.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The URL of an API path (`/api/v1/...`).
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// A request to `path` carrying the bearer token, if any.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let rb = self.client.request(method, self.endpoint(path));
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// Send a prepared request, mapping transport and HTTP errors.
    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response, RemoteError> {
        let url = reconciler::redact::urls(&self.url);
        let resp = rb.send().await.map_err(|source| RemoteError::Connect { url: url.clone(), source })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str().map(str::to_owned)))
            .unwrap_or_else(|| body.chars().take(300).collect());
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(RemoteError::Unauthorized { url, status: status.as_u16(), message });
        }
        Err(RemoteError::Status { url, status: status.as_u16(), message })
    }

    /// GET `path` and decode its JSON answer.
    pub async fn get_json(&self, path: &str) -> Result<Value, RemoteError> {
        let resp = self.send(self.request(reqwest::Method::GET, path).timeout(REQUEST_TIMEOUT)).await?;
        resp.json().await.map_err(|source| RemoteError::Decode { url: reconciler::redact::urls(&self.url), source })
    }
}

/// A path segment or query value, percent-encoded (everything but RFC 3986 unreserved
/// characters), for the API paths remote commands build.
pub fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
