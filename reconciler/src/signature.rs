//! Signed-commit policy: accept only commits carrying an SSH signature (git's `gpg.format=ssh`)
//! made by a key listed in an allowed-signers file (the format of `ssh-keygen -Y verify`).

use std::path::Path;

/// Why a commit is not accepted, or the policy cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("cannot read the allowed signers file {path}: {source}")]
    Read { path: String, #[source] source: std::io::Error },
    #[error("allowed signers line {line}: {message}")]
    Parse { line: usize, message: String },
    #[error("commit {0} is not signed")]
    Unsigned(String),
    #[error("commit {sha} has a signature that is not an SSH signature: {message}")]
    NotSsh { sha: String, message: String },
    #[error("commit {sha} is signed by a key that is not in the allowed signers ({fingerprint})")]
    UnknownKey { sha: String, fingerprint: String },
    #[error("commit {sha}: the signature does not verify: {message}")]
    Invalid { sha: String, message: String },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// Keys allowed to sign deployable commits.
#[derive(Debug, Clone)]
pub struct AllowedSigners {
    keys: Vec<(String, ssh_key::PublicKey)>,
}

impl AllowedSigners {
    /// Parse `principal[,principal…] [options] keytype base64 [comment]` lines.
    ///
    /// # Errors
    /// On a line without a readable public key.
    pub fn parse(text: &str) -> Result<AllowedSigners, SignatureError> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = fields
                .iter()
                .position(|f| f.starts_with("ssh-") || f.starts_with("ecdsa-") || f.starts_with("sk-"))
                .ok_or_else(|| SignatureError::Parse { line: i + 1, message: "no key type (ssh-ed25519, …)".into() })?;
            let b64 = fields.get(at + 1).ok_or_else(|| SignatureError::Parse { line: i + 1, message: "key type without key".into() })?;
            let key = ssh_key::PublicKey::from_openssh(&format!("{} {b64}", fields[at]))
                .map_err(|e| SignatureError::Parse { line: i + 1, message: e.to_string() })?;
            keys.push((fields[0].to_string(), key));
        }
        Ok(AllowedSigners { keys })
    }

    /// Read and parse a file.
    ///
    /// # Errors
    /// When the file cannot be read or parsed.
    pub fn load(path: &Path) -> Result<AllowedSigners, SignatureError> {
        let text = std::fs::read_to_string(path).map_err(|source| SignatureError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Verify the SSH signature of commit `sha`; returns the signer's principal.
///
/// # Errors
/// Unsigned, not SSH, unknown key, or a signature that does not verify.
pub fn verify_commit(repo: &git2::Repository, sha: &str, allowed: &AllowedSigners) -> Result<String, SignatureError> {
    let oid = git2::Oid::from_str(sha)?;
    let (sig, data) = repo.extract_signature(&oid, None).map_err(|_| SignatureError::Unsigned(sha.to_string()))?;
    let pem = std::str::from_utf8(&sig).map_err(|e| SignatureError::NotSsh { sha: sha.into(), message: e.to_string() })?;
    let sshsig = ssh_key::SshSig::from_pem(pem).map_err(|e| SignatureError::NotSsh { sha: sha.into(), message: e.to_string() })?;
    let signer = sshsig.public_key();
    let (principal, key) = allowed
        .keys
        .iter()
        .find(|(_, k)| k.key_data() == signer)
        .ok_or_else(|| SignatureError::UnknownKey { sha: sha.into(), fingerprint: signer.fingerprint(Default::default()).to_string() })?;
    key.verify("git", &data, &sshsig).map_err(|e| SignatureError::Invalid { sha: sha.into(), message: e.to_string() })?;
    Ok(principal.clone())
}
