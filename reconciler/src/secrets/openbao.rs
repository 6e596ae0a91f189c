//! The `openbao` secret backend: OpenBao / HashiCorp Vault KV version 2 over HTTP.
//!
//! Uses four routes of a KV v2 mount: read (`GET /v1/<mount>/data/<path>`), write
//! (`POST /v1/<mount>/data/<path>`), delete every version (`DELETE /v1/<mount>/metadata/<path>`)
//! and existence (`GET /v1/<mount>/metadata/<path>`).
//!
//! # Guarantees
//! The token is read once from its source and cached; a 403 drops it, reads it again and retries
//! once (a token rotated in the repo, or renewed by an operator, is picked up without a restart).
//! A 5xx or a connection failure is retried up to [`RETRIES`] times with a doubling pause. Errors
//! name the address, the path and the status, never a response body (it may hold values) nor the
//! token.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Retries after a 5xx or a connection failure.
pub const RETRIES: u32 = 3;

/// Why an OpenBao request failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenBaoError {
    #[error("cannot get the OpenBao token: {0}")]
    Token(String),
    #[error("OpenBao {url} {path}: permission denied (403) with a freshly read token; check the token and its policy")]
    Denied { url: String, path: String },
    #[error("OpenBao {url} {path}: server error {status} after {attempts} attempts")]
    Server { url: String, path: String, status: u16, attempts: u32 },
    #[error("OpenBao {url} {path}: unexpected status {status}")]
    Status { url: String, path: String, status: u16 },
    #[error("OpenBao {url} {path}: request failed after {attempts} attempts: {source}")]
    Http {
        url: String,
        path: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error("OpenBao {url} {path}: malformed answer: {message}")]
    Malformed { url: String, path: String, message: String },
}

/// Where the token comes from; called again after a 403.
pub type TokenSource<'a> = &'a (dyn Fn() -> Result<String, String> + Sync);

/// A client of one OpenBao KV v2 mount.
pub struct OpenBao {
    http: reqwest::Client,
    url: String,
    mount: String,
    token: tokio::sync::Mutex<Option<String>>,
    pause: Duration,
}

impl std::fmt::Debug for OpenBao {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenBao({} mount {})", self.url, self.mount)
    }
}

impl OpenBao {
    /// A client of the KV v2 mount `mount` at `url` (e.g. `https://bao.internal:8200`).
    pub fn new(url: &str, mount: &str) -> OpenBao {
        // reqwest is built without a default TLS provider in this workspace; install ring unless
        // the process already chose one (the CLI does at start).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
        OpenBao {
            http,
            url: url.trim_end_matches('/').to_string(),
            mount: mount.trim_matches('/').to_string(),
            token: tokio::sync::Mutex::new(None),
            pause: Duration::from_millis(200),
        }
    }

    /// Pause before the first retry (doubles each time; default 200 ms).
    pub fn with_retry_pause(mut self, pause: Duration) -> OpenBao {
        self.pause = pause;
        self
    }

    /// The values at `path`, `None` when nothing is there.
    ///
    /// # Errors
    /// See [`OpenBaoError`]; a non-string value is `Malformed`.
    pub async fn read(&self, path: &str, token: TokenSource<'_>) -> Result<Option<BTreeMap<String, String>>, OpenBaoError> {
        let route = format!("{}/data/{}", self.mount, path);
        let (status, body) = self.send(Method::GET, &route, None, token).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let malformed = |message: &str| OpenBaoError::Malformed { url: self.url.clone(), path: route.clone(), message: message.into() };
        let data = body.pointer("/data/data").and_then(Value::as_object).ok_or_else(|| malformed("no `data.data` object"))?;
        data.iter()
            .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())).ok_or_else(|| malformed(&format!("key `{k}` is not a string"))))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// Write `values` as a new version of `path`.
    ///
    /// # Errors
    /// See [`OpenBaoError`].
    pub async fn write(&self, path: &str, values: &BTreeMap<String, String>, token: TokenSource<'_>) -> Result<(), OpenBaoError> {
        let route = format!("{}/data/{}", self.mount, path);
        self.send(Method::POST, &route, Some(json!({ "data": values })), token).await.and_then(|(s, _)| self.expect_ok(s, &route))
    }

    /// Delete `path` with all its versions; already gone is success.
    ///
    /// # Errors
    /// See [`OpenBaoError`].
    pub async fn delete(&self, path: &str, token: TokenSource<'_>) -> Result<(), OpenBaoError> {
        let route = format!("{}/metadata/{}", self.mount, path);
        let (status, _) = self.send(Method::DELETE, &route, None, token).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        self.expect_ok(status, &route)
    }

    /// Whether anything is stored at `path` (its metadata exists).
    ///
    /// # Errors
    /// See [`OpenBaoError`].
    pub async fn exists(&self, path: &str, token: TokenSource<'_>) -> Result<bool, OpenBaoError> {
        let route = format!("{}/metadata/{}", self.mount, path);
        let (status, _) = self.send(Method::GET, &route, None, token).await?;
        Ok(status != StatusCode::NOT_FOUND)
    }

    fn expect_ok(&self, status: StatusCode, route: &str) -> Result<(), OpenBaoError> {
        if status.is_success() {
            Ok(())
        } else {
            Err(OpenBaoError::Status { url: self.url.clone(), path: route.to_string(), status: status.as_u16() })
        }
    }

    async fn send(
        &self,
        method: Method,
        route: &str,
        body: Option<Value>,
        token: TokenSource<'_>,
    ) -> Result<(StatusCode, Value), OpenBaoError> {
        let url = format!("{}/v1/{}", self.url, route);
        let mut renewed = false;
        let mut attempts: u32 = 0;
        loop {
            attempts += 1;
            let tok = {
                let mut cached = self.token.lock().await;
                match cached.as_ref() {
                    Some(t) => t.clone(),
                    None => {
                        let t = token().map_err(OpenBaoError::Token)?;
                        *cached = Some(t.clone());
                        t
                    }
                }
            };
            let mut req = self.http.request(method.clone(), &url).header("X-Vault-Token", tok);
            if let Some(b) = &body {
                req = req.json(b);
            }
            let pause = self.pause * 2u32.pow(attempts.saturating_sub(1).min(8));
            let resp = match req.send().await {
                Ok(r) => r,
                Err(source) if attempts > RETRIES => {
                    return Err(OpenBaoError::Http {
                        url: self.url.clone(),
                        path: route.to_string(),
                        attempts,
                        source: source.without_url(),
                    })
                }
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    continue;
                }
            };
            let status = resp.status();
            if status == StatusCode::FORBIDDEN {
                if renewed {
                    return Err(OpenBaoError::Denied { url: self.url.clone(), path: route.to_string() });
                }
                renewed = true;
                attempts -= 1;
                *self.token.lock().await = None;
                continue;
            }
            if status.is_server_error() {
                if attempts > RETRIES {
                    return Err(OpenBaoError::Server { url: self.url.clone(), path: route.to_string(), status: status.as_u16(), attempts });
                }
                tokio::time::sleep(pause).await;
                continue;
            }
            let value = resp.json::<Value>().await.unwrap_or(Value::Null);
            return Ok((status, value));
        }
    }
}
