//! Secret values: age ciphertext from the desired state, decrypted on demand with the identities
//! of this installation, held only in memory (handed to a process's env), never stored or logged.

use std::io::Read;
use std::path::Path;

use schema::spec::SecretKeyRef;
use schema::{DesiredState, Kind, Resource, Spec};

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
}

/// Decrypts secret values with the installation's age identities.
///
/// Keeps the identity file's text and parses it per lookup: age's parsed identities are not
/// `Send`, and the reconciler runs on a multi-threaded runtime.
pub struct SecretResolver {
    identity_text: Option<String>,
    path: String,
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
        let text = std::fs::read_to_string(path).map_err(|e| SecretError::Identity { path: path.display().to_string(), message: e.to_string() })?;
        let r = SecretResolver { identity_text: Some(text), path: path.display().to_string() };
        r.identities()?;
        Ok(r)
    }

    /// The identity file this resolver was loaded from, if any.
    pub fn identity_path(&self) -> Option<&Path> {
        self.identity_text.as_ref().map(|_| Path::new(&self.path))
    }

    /// A resolver with no identity: every lookup fails with [`SecretError::NoIdentity`].
    pub fn none() -> SecretResolver {
        SecretResolver { identity_text: None, path: String::new() }
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

    /// Decrypt `r` as seen from a resource in `project`.
    ///
    /// # Errors
    /// Missing secret or key, no identity, or ciphertext not for these identities.
    pub fn resolve(&self, state: &DesiredState, project: Option<&str>, r: &SecretKeyRef) -> Result<String, SecretError> {
        let Some(Resource { spec: Spec::Secret(s), .. }) = state.resolve(Kind::Secret, &r.name, project) else {
            return Err(SecretError::NotFound(r.name.clone()));
        };
        let armored = s.data.get(&r.key).ok_or_else(|| SecretError::NoKey { name: r.name.clone(), key: r.key.clone() })?;
        if self.identity_text.is_none() {
            return Err(SecretError::NoIdentity(r.name.clone()));
        }
        let identities = self.identities()?;
        let fail = |message: String| SecretError::Decrypt { name: r.name.clone(), key: r.key.clone(), message };
        let decryptor = age::Decryptor::new(age::armor::ArmoredReader::new(armored.trim().as_bytes())).map_err(|e| fail(e.to_string()))?;
        let mut reader = decryptor.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity)).map_err(|e| fail(e.to_string()))?;
        let mut out = String::new();
        reader.read_to_string(&mut out).map_err(|e| fail(e.to_string()))?;
        Ok(out)
    }
}
