//! Secret values: where they live (secret backends), how they are read at server start, and how
//! they move between backends (`mcpctl migrate secrets`).
//!
//! Two backend types exist. `plaintext` is the trust root: values travel in git as age
//! ciphertext (`Secret.spec.data`) and are decrypted with the installation's identities; values
//! migrated onto it are kept in the runtime database as age ciphertext to the installation's own
//! X25519 recipient ([`plaintext`]). `openbao` keeps them in OpenBao / Vault KV v2 ([`openbao`]).
//! Where a Secret's values are is its `backend` (else the default backend), unless a migration
//! moved it: the row in `secret_locations` wins.
//!
//! # Guarantees
//! A value is only ever held in memory: handed to a process's environment (local runtime) or a
//! Kubernetes Secret (Kubernetes runtime), never written to another table, a log or an error.
//! Values from non-git sources are fetched by [`SecretResolver::prefetch`] when a deploy's
//! servers are started, not per request.

pub mod openbao;
pub mod plaintext;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use schema::spec::{SecretBackendSpec, SecretBackendType, SecretKeyRef, SecretSpec};
use schema::{DesiredState, Kind, Resource, Spec};
use tracing::warn;

use crate::store::{Store, StoreError};
use openbao::OpenBao;

/// Why a secret value cannot be had. Never carries the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the age identity file {path}: {message}")]
    Identity { path: String, message: String },
    #[error("Secret `{0}` not found")]
    NotFound(String),
    #[error("Secret `{name}` has no key `{key}`")]
    NoKey { name: String, key: String },
    #[error("Secret `{name}` key `{key}` cannot be decrypted with this installation's identities: {message}")]
    Decrypt { name: String, key: String, message: String },
    #[error("no age identity configured (set MCPCTL_AGE_IDENTITY_FILE); cannot decrypt Secret `{0}`")]
    NoIdentity(String),
    #[error("Secret `{name}`: cannot read its values from backend `{backend}`: {message}")]
    Backend { name: String, backend: String, message: String },
    /// A fetch at server start failed; its message (which names the secret and backend).
    #[error("{0}")]
    Fetch(String),
    #[error("Secret `{name}`: backend `{backend}` is not a SecretBackend of the repo")]
    NoBackend { name: String, backend: String },
    #[error("Secret `{name}` lives on backend `{backend}`, whose values were not fetched yet")]
    NotFetched { name: String, backend: String },
    #[error("Secret `{name}` on backend `{backend}`: {source}")]
    OpenBao {
        name: String,
        backend: String,
        #[source]
        source: openbao::OpenBaoError,
    },
    #[error("Secret `{name}`: {source}")]
    Store {
        name: String,
        #[source]
        source: StoreError,
    },
    #[error("Secret `{name}`: cannot encrypt for the plaintext backend: {message}")]
    Encrypt { name: String, message: String },
}

/// The values of one Secret fetched from its backend, or why they could not be.
type Fetched = Result<BTreeMap<String, String>, String>;

/// Decrypts and fetches secret values with the installation's age identities.
///
/// Keeps the identity file's text and parses it per lookup: age's parsed identities are not
/// `Send`, and the reconciler runs on a multi-threaded runtime. Clones share the fetched values
/// and the OpenBao clients (one per backend, each caching its token).
#[derive(Clone)]
pub struct SecretResolver {
    identity_text: Option<Arc<str>>,
    path: String,
    /// Values of Secrets not read from git, by resource key; an error is kept as its message.
    fetched: Arc<RwLock<HashMap<String, Fetched>>>,
    clients: Arc<Mutex<HashMap<String, Arc<OpenBao>>>>,
}

impl std::fmt::Debug for SecretResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretResolver({})", if self.identity_text.is_some() { self.path.as_str() } else { "no identity" })
    }
}

impl SecretResolver {
    /// Load identities from an age identity file (as written by `age-keygen`).
    ///
    /// # Errors
    /// When the file cannot be read or holds no usable identity.
    pub fn from_file(path: &Path) -> Result<SecretResolver, SecretError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SecretError::Identity { path: path.display().to_string(), message: e.to_string() })?;
        let r = SecretResolver { identity_text: Some(text.into()), path: path.display().to_string(), ..SecretResolver::none() };
        r.identities()?;
        Ok(r)
    }

    /// The identity file this resolver was loaded from, if any.
    pub fn identity_path(&self) -> Option<&Path> {
        self.identity_text.as_ref().map(|_| Path::new(&self.path))
    }

    /// A resolver with no identity: every lookup of a git value fails with [`SecretError::NoIdentity`].
    pub fn none() -> SecretResolver {
        SecretResolver { identity_text: None, path: String::new(), fetched: Arc::default(), clients: Arc::default() }
    }

    fn identities(&self) -> Result<Vec<Box<dyn age::Identity>>, SecretError> {
        let err = |message: String| SecretError::Identity { path: self.path.clone(), message };
        let text = self.identity_text.as_deref().unwrap_or("");
        let file = age::IdentityFile::from_buffer(text.as_bytes()).map_err(|e| err(e.to_string()))?;
        let ids = file.into_identities().map_err(|e| err(e.to_string()))?;
        if ids.is_empty() {
            return Err(err("no identities in the file".into()));
        }
        Ok(ids)
    }

    /// Decrypt one armored value of Secret `name`, key `key`.
    fn decrypt(&self, name: &str, key: &str, armored: &str) -> Result<String, SecretError> {
        if self.identity_text.is_none() {
            return Err(SecretError::NoIdentity(name.to_string()));
        }
        let identities = self.identities()?;
        let fail = |message: String| SecretError::Decrypt { name: name.to_string(), key: key.to_string(), message };
        let decryptor = age::Decryptor::new(age::armor::ArmoredReader::new(armored.trim().as_bytes())).map_err(|e| fail(e.to_string()))?;
        let mut reader = decryptor.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity)).map_err(|e| fail(e.to_string()))?;
        let mut out = String::new();
        reader.read_to_string(&mut out).map_err(|e| fail(e.to_string()))?;
        Ok(out)
    }

    /// Every git value of a Secret, decrypted.
    fn decrypt_all(&self, name: &str, data: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, SecretError> {
        data.iter().map(|(k, v)| Ok((k.clone(), self.decrypt(name, k, v)?))).collect()
    }

    /// Decrypt `r` as seen from a resource in `project`: from the values fetched for its
    /// backend, else from its git ciphertext.
    ///
    /// # Errors
    /// Missing secret or key, no identity, ciphertext not for these identities, or a backend
    /// that could not be read.
    pub fn resolve(&self, state: &DesiredState, project: Option<&str>, r: &SecretKeyRef) -> Result<String, SecretError> {
        let Some(res @ Resource { spec: Spec::Secret(s), .. }) = state.resolve(Kind::Secret, &r.name, project) else {
            return Err(SecretError::NotFound(r.name.clone()));
        };
        let no_key = || SecretError::NoKey { name: r.name.clone(), key: r.key.clone() };
        if let Some(fetched) = self.fetched.read().expect("not poisoned").get(&res.key().to_string()) {
            return match fetched {
                Ok(values) => values.get(&r.key).cloned().ok_or_else(no_key),
                Err(message) => Err(SecretError::Fetch(message.clone())),
            };
        }
        if s.external_ref.is_some() {
            return Err(SecretError::NotFetched { name: r.name.clone(), backend: s.backend.clone().unwrap_or_default() });
        }
        let armored = s.data.get(&r.key).ok_or_else(no_key)?;
        self.decrypt(&r.name, &r.key, armored)
    }

    /// Fetch the values of every Secret that does not live in git (an `openbao` backend, or a
    /// migration onto the plaintext backend), so that [`SecretResolver::resolve`] can hand them
    /// out. Run when a deploy's servers are about to start. A Secret that cannot be read is
    /// logged by name (never a value) and fails the servers that use it. The locations and held
    /// values of Secrets the state no longer has are forgotten.
    ///
    /// Returns whether every Secret could be read (the reconciler fetches again until then).
    pub async fn prefetch(&self, state: &DesiredState, store: &Store) -> bool {
        let keep = state.of_kind(Kind::Secret).map(|r| r.key().to_string()).collect();
        if let Err(e) = store.forget_other_secrets(&keep).await {
            warn!(error = %e, "cannot forget the locations of deleted secrets");
        }
        let backends = match Backends::new(state, store, self).await {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "cannot read secret locations");
                return false;
            }
        };
        let mut fetched = HashMap::new();
        for res in state.of_kind(Kind::Secret) {
            match backends.needs_fetch(res).await {
                Ok(Some(backend)) => {
                    let got = backends.read(res, &backend).await.map_err(|e| {
                        warn!(secret = %res.key(), backend = %backend, error = %e, "cannot fetch secret values");
                        e.to_string()
                    });
                    fetched.insert(res.key().to_string(), got);
                }
                Ok(None) => {}
                Err(e) => {
                    warn!(secret = %res.key(), error = %e, "cannot fetch secret values");
                    fetched.insert(res.key().to_string(), Err(e.to_string()));
                }
            }
        }
        let complete = fetched.values().all(Result::is_ok);
        *self.fetched.write().expect("not poisoned") = fetched;
        complete
    }

    fn client(&self, backend: &str, cfg: &schema::spec::OpenBaoConfig) -> Arc<OpenBao> {
        let mut clients = self.clients.lock().expect("not poisoned");
        clients.entry(backend.to_string()).or_insert_with(|| Arc::new(OpenBao::new(&cfg.url, &cfg.mount))).clone()
    }

    /// Use `client` for backend `backend` (tests: a shorter retry pause).
    pub fn set_client(&self, backend: &str, client: OpenBao) {
        self.clients.lock().expect("not poisoned").insert(backend.to_string(), Arc::new(client));
    }
}

/// The secret backends of one desired state and store: where each Secret lives and how to read,
/// write and delete its values there. Used by [`SecretResolver::prefetch`] and by
/// `mcpctl migrate secrets`.
pub struct Backends<'a> {
    state: &'a DesiredState,
    store: &'a Store,
    resolver: &'a SecretResolver,
    locations: BTreeMap<String, String>,
}

impl<'a> Backends<'a> {
    /// # Errors
    /// When the store cannot be read.
    pub async fn new(state: &'a DesiredState, store: &'a Store, resolver: &'a SecretResolver) -> Result<Backends<'a>, StoreError> {
        Ok(Backends { state, store, resolver, locations: store.secret_locations().await? })
    }

    /// The backend `secret` lives on: a migration's row, else its `backend`, else the default
    /// backend; `None` when the repo has no SecretBackend (values from git, as `plaintext`).
    pub fn location(&self, secret: &Resource) -> Option<String> {
        if let Some(b) = self.locations.get(&secret.key().to_string()) {
            return Some(b.clone());
        }
        let Spec::Secret(s) = &secret.spec else { return None };
        s.backend.clone().or_else(|| default_backend(self.state).map(|r| r.metadata.name.clone()))
    }

    /// The spec of backend `name`.
    ///
    /// # Errors
    /// When the repo has no such SecretBackend.
    pub fn backend(&self, secret: &str, name: &str) -> Result<&'a SecretBackendSpec, SecretError> {
        match self.state.resolve(Kind::SecretBackend, name, None) {
            Some(Resource { spec: Spec::SecretBackend(b), .. }) => Ok(b),
            _ => Err(SecretError::NoBackend { name: secret.to_string(), backend: name.to_string() }),
        }
    }

    /// The backend to fetch `secret` from at server start, `None` when its git ciphertext is read.
    async fn needs_fetch(&self, secret: &Resource) -> Result<Option<String>, SecretError> {
        let Some(loc) = self.location(secret) else { return Ok(None) };
        let name = secret.metadata.name.clone();
        match self.backend(&name, &loc)?.backend_type {
            SecretBackendType::Openbao => Ok(Some(loc)),
            SecretBackendType::Plaintext => {
                let held =
                    self.store.secret_values(&secret.key().to_string()).await.map_err(|source| SecretError::Store { name, source })?;
                Ok((!held.is_empty()).then_some(loc))
            }
        }
    }

    /// Where `secret` is kept on an OpenBao backend: its `externalRef`, else
    /// `mcpctl/<project or _global>/<name>`.
    pub fn openbao_path(secret: &Resource) -> String {
        match &secret.spec {
            Spec::Secret(SecretSpec { external_ref: Some(p), .. }) => p.trim_matches('/').to_string(),
            _ => format!("mcpctl/{}/{}", secret.metadata.project.as_deref().unwrap_or("_global"), secret.metadata.name),
        }
    }

    /// The client of OpenBao backend `backend` and its token source.
    #[allow(clippy::type_complexity)]
    fn openbao(&self, secret: &str, backend: &str) -> Result<(Arc<OpenBao>, impl Fn() -> Result<String, String> + Sync + '_), SecretError> {
        let spec = self.backend(secret, backend)?;
        let cfg = spec.openbao.as_ref().ok_or_else(|| SecretError::NoBackend { name: secret.to_string(), backend: backend.to_string() })?;
        let client = self.resolver.client(backend, cfg);
        let token = move || -> Result<String, String> {
            match &cfg.token_secret_ref {
                // The trust root: a Secret whose ciphertext is in git, never one from OpenBao.
                Some(r) => self.resolver.resolve_git(self.state, r).map(|t| t.trim().to_string()).map_err(|e| e.to_string()),
                None => {
                    std::env::var(&cfg.token_env).map_err(|_| format!("the environment variable {} (tokenEnv) is not set", cfg.token_env))
                }
            }
        };
        Ok((client, token))
    }

    /// Every value of `secret` on `backend`, decrypted.
    ///
    /// # Errors
    /// Unknown backend, unreachable or refusing OpenBao, nothing at the path, or undecryptable
    /// ciphertext.
    pub async fn read(&self, secret: &Resource, backend: &str) -> Result<BTreeMap<String, String>, SecretError> {
        let name = secret.metadata.name.clone();
        let Spec::Secret(s) = &secret.spec else { return Err(SecretError::NotFound(name)) };
        match self.backend(&name, backend)?.backend_type {
            SecretBackendType::Plaintext => {
                let held = self
                    .store
                    .secret_values(&secret.key().to_string())
                    .await
                    .map_err(|source| SecretError::Store { name: name.clone(), source })?;
                if held.is_empty() {
                    self.resolver.decrypt_all(&name, &s.data)
                } else {
                    self.resolver.decrypt_all(&name, &held)
                }
            }
            SecretBackendType::Openbao => {
                let (client, token) = self.openbao(&name, backend)?;
                let path = Self::openbao_path(secret);
                match client.read(&path, &token).await {
                    Ok(Some(v)) => Ok(v),
                    Ok(None) => Err(SecretError::Backend { name, backend: backend.to_string(), message: format!("nothing at `{path}`") }),
                    Err(source) => Err(SecretError::OpenBao { name, backend: backend.to_string(), source }),
                }
            }
        }
    }

    /// Write `values` of `secret` to `backend` (the plaintext backend encrypts them to the
    /// installation's recipient first). Writing the same values again is harmless.
    ///
    /// # Errors
    /// As [`Backends::read`], or no X25519 identity to encrypt to.
    pub async fn write(&self, secret: &Resource, backend: &str, values: &BTreeMap<String, String>) -> Result<(), SecretError> {
        let name = secret.metadata.name.clone();
        match self.backend(&name, backend)?.backend_type {
            SecretBackendType::Plaintext => {
                let recipient =
                    self.resolver.installation_recipient().map_err(|message| SecretError::Encrypt { name: name.clone(), message })?;
                let sealed = values
                    .iter()
                    .map(|(k, v)| plaintext::seal(&recipient, v).map(|ct| (k.clone(), ct)))
                    .collect::<Result<BTreeMap<_, _>, _>>()
                    .map_err(|message| SecretError::Encrypt { name: name.clone(), message })?;
                self.store.put_secret_values(&secret.key().to_string(), &sealed).await.map_err(|source| SecretError::Store { name, source })
            }
            SecretBackendType::Openbao => {
                let (client, token) = self.openbao(&name, backend)?;
                client.write(&Self::openbao_path(secret), values, &token).await.map_err(|source| SecretError::OpenBao {
                    name,
                    backend: backend.to_string(),
                    source,
                })
            }
        }
    }

    /// Delete `secret`'s values on `backend`; already gone is success. Returns a note when some
    /// copy cannot be deleted by mcpctl (git ciphertext stays in the repo and its history).
    ///
    /// # Errors
    /// As [`Backends::read`].
    pub async fn delete(&self, secret: &Resource, backend: &str) -> Result<Option<String>, SecretError> {
        let name = secret.metadata.name.clone();
        match self.backend(&name, backend)?.backend_type {
            SecretBackendType::Plaintext => {
                self.store
                    .delete_secret_values(&secret.key().to_string())
                    .await
                    .map_err(|source| SecretError::Store { name: name.clone(), source })?;
                let in_git = matches!(&secret.spec, Spec::Secret(s) if !s.data.is_empty());
                Ok(in_git.then(|| format!("the ciphertext of {} stays in git{}: remove its `data` there (it stays in history; rotate the values if that matters)", secret.key(), secret.source().map(|s| format!(" ({s})")).unwrap_or_default())))
            }
            SecretBackendType::Openbao => {
                let (client, token) = self.openbao(&name, backend)?;
                client.delete(&Self::openbao_path(secret), &token).await.map_err(|source| SecretError::OpenBao {
                    name,
                    backend: backend.to_string(),
                    source,
                })?;
                Ok(None)
            }
        }
    }
}

impl Backends<'_> {
    /// Move `secret` from backend `from` to `to`: read it, write it at the destination, record
    /// the new location (the flip), then, unless `keep_source`, delete it at the source — best
    /// effort: a failed delete is returned as a note, the move stands.
    ///
    /// # Guarantees
    /// Until the flip, servers keep reading the source; a run stopped before the flip leaves the
    /// location unchanged and is redone whole by the next run (writing again is harmless).
    ///
    /// # Errors
    /// When reading, writing or flipping fails; nothing is deleted then.
    pub async fn move_secret(&self, secret: &Resource, from: &str, to: &str, keep_source: bool) -> Result<Vec<String>, SecretError> {
        let values = self.read(secret, from).await?;
        self.write(secret, to, &values).await?;
        drop(values);
        let key = secret.key().to_string();
        self.store
            .set_secret_location(&key, to)
            .await
            .map_err(|source| SecretError::Store { name: secret.metadata.name.clone(), source })?;
        let mut notes = Vec::new();
        if !keep_source {
            match self.delete(secret, from).await {
                Ok(Some(note)) => notes.push(note),
                Ok(None) => {}
                Err(e) => notes.push(format!("moved, but deleting at the source failed (delete it by hand): {e}")),
            }
        }
        Ok(notes)
    }
}

impl SecretResolver {
    /// `r` decrypted from its git ciphertext only (the OpenBao token: never from OpenBao itself).
    fn resolve_git(&self, state: &DesiredState, r: &SecretKeyRef) -> Result<String, SecretError> {
        let Some(Resource { spec: Spec::Secret(s), .. }) = state.resolve(Kind::Secret, &r.name, None) else {
            return Err(SecretError::NotFound(r.name.clone()));
        };
        let armored = s.data.get(&r.key).ok_or_else(|| SecretError::NoKey { name: r.name.clone(), key: r.key.clone() })?;
        self.decrypt(&r.name, &r.key, armored)
    }

    /// The X25519 recipient of the installation's first X25519 identity.
    fn installation_recipient(&self) -> Result<age::x25519::Recipient, String> {
        let text = self.identity_text.as_deref().ok_or("no age identity configured (--age-identity / MCPCTL_AGE_IDENTITY_FILE)")?;
        plaintext::recipient_of(text)
            .ok_or_else(|| format!("the identity file {} holds no X25519 identity (AGE-SECRET-KEY-…) to encrypt to", self.path))
    }
}

/// The SecretBackend with `isDefault: true`, if any.
pub fn default_backend(state: &DesiredState) -> Option<&Resource> {
    state.of_kind(Kind::SecretBackend).find(|r| matches!(&r.spec, Spec::SecretBackend(b) if b.is_default))
}
