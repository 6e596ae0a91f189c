//! Signed-commit policy: accept only commits carrying an SSH signature (git's `gpg.format=ssh`)
//! made by a key listed in an allowed-signers file (the format of `ssh-keygen -Y verify`).
//!
//! # Guarantees
//! Only the commit object is read to verify it: no blob of an unverified commit is touched. The
//! options of an allowed-signers line are honoured as `ssh-keygen` does: `namespaces` must allow
//! `git`, `valid-after`/`valid-before` bound the commit's committer time. `cert-authority` lines
//! and unknown options are refused when the file is loaded, naming the line, rather than ignored.
//!
//! # Caveats
//! The committer time is written by the signer, as in `git verify-commit`; a validity window
//! limits when a key may be used, it is not a clock an attacker cannot set back. Rollbacks to an
//! older signed commit are stopped by the controller (a new tip must descend from the last good
//! deploy), not here.

use std::path::Path;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// Why a commit is not accepted, or the policy cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("cannot read the allowed signers file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
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
    #[error("commit {sha} is signed by the key of `{principal}`, but allowed signers line {line} {reason}")]
    NotAllowed { sha: String, principal: String, line: usize, reason: String },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// One line of the allowed-signers file.
#[derive(Debug, Clone)]
struct Signer {
    principals: String,
    /// 1-based line in the file, for messages.
    line: usize,
    key: ssh_key::PublicKey,
    /// `namespaces="…"` patterns; `None`: any namespace.
    namespaces: Option<Vec<String>>,
    valid_after: Option<DateTime<Utc>>,
    valid_before: Option<DateTime<Utc>>,
}

impl Signer {
    /// Why this line does not allow signing a commit made at `at`, if it does not.
    fn refuses(&self, at: DateTime<Utc>) -> Option<String> {
        if let Some(ns) = &self.namespaces {
            if !pattern_list_matches(ns, "git") {
                return Some(format!("limits it to namespaces `{}`, which do not include `git`", ns.join(",")));
            }
        }
        if let Some(after) = self.valid_after {
            if at < after {
                return Some(format!("makes it valid only after {} and the commit time is {}", after.to_rfc3339(), at.to_rfc3339()));
            }
        }
        if let Some(before) = self.valid_before {
            if at >= before {
                return Some(format!("makes it valid only before {} and the commit time is {}", before.to_rfc3339(), at.to_rfc3339()));
            }
        }
        None
    }
}

/// Keys allowed to sign deployable commits.
#[derive(Debug, Clone)]
pub struct AllowedSigners {
    signers: Vec<Signer>,
}

impl AllowedSigners {
    /// Parse `principal[,principal…] [options] keytype base64 [comment]` lines.
    ///
    /// # Errors
    /// On a line without a readable public key, with an unknown or malformed option, or with
    /// `cert-authority` (certificates are not verified here; list the signing keys themselves).
    pub fn parse(text: &str) -> Result<AllowedSigners, SignatureError> {
        let mut signers = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let err = |message: String| SignatureError::Parse { line: line_no, message };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = fields
                .iter()
                .position(|f| f.starts_with("ssh-") || f.starts_with("ecdsa-") || f.starts_with("sk-"))
                .ok_or_else(|| err("no key type (ssh-ed25519, …)".into()))?;
            if at == 0 {
                return Err(err("no principal before the key".into()));
            }
            let b64 = fields.get(at + 1).ok_or_else(|| err("key type without key".into()))?;
            let key = ssh_key::PublicKey::from_openssh(&format!("{} {b64}", fields[at])).map_err(|e| err(e.to_string()))?;
            let mut signer =
                Signer { principals: fields[0].to_string(), line: line_no, key, namespaces: None, valid_after: None, valid_before: None };
            let options = fields[1..at].join(" ");
            for opt in split_options(&options) {
                let (name, value) = match opt.split_once('=') {
                    Some((n, v)) => (n.trim().to_ascii_lowercase(), Some(unquote(v.trim()))),
                    None => (opt.trim().to_ascii_lowercase(), None),
                };
                let need = |v: Option<String>| v.filter(|v| !v.is_empty()).ok_or_else(|| err(format!("option `{name}` needs a value")));
                match name.as_str() {
                    "cert-authority" => {
                        return Err(err(
                            "`cert-authority` is not supported (SSH certificates are not verified); list the signing keys themselves"
                                .into(),
                        ))
                    }
                    "namespaces" => signer.namespaces = Some(need(value)?.split(',').map(|s| s.trim().to_string()).collect()),
                    "valid-after" => signer.valid_after = Some(parse_time(&need(value)?).map_err(err)?),
                    "valid-before" => signer.valid_before = Some(parse_time(&need(value)?).map_err(err)?),
                    _ => return Err(err(format!("unknown option `{name}` (supported: namespaces, valid-after, valid-before)"))),
                }
            }
            signers.push(signer);
        }
        Ok(AllowedSigners { signers })
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
        self.signers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.signers.is_empty()
    }
}

/// Split an options string on commas outside double quotes.
fn split_options(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().filter(|o| !o.trim().is_empty()).collect()
}

fn unquote(v: &str) -> String {
    v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v).to_string()
}

/// `YYYYMMDD[HHMM[SS]][Z]`, as `ssh-keygen` reads it: UTC with `Z`, else the local time zone.
fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let (digits, utc) = match s.strip_suffix(['Z', 'z']) {
        Some(d) => (d, true),
        None => (s, false),
    };
    let padded = match digits.len() {
        8 => format!("{digits}000000"),
        12 => format!("{digits}00"),
        14 => digits.to_string(),
        _ => String::new(),
    };
    let bad = || format!("`{s}` is not a time (YYYYMMDD[HHMM[SS]][Z])");
    if padded.is_empty() || !padded.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let naive = NaiveDateTime::parse_from_str(&padded, "%Y%m%d%H%M%S").map_err(|_| bad())?;
    if utc {
        Ok(Utc.from_utc_datetime(&naive))
    } else {
        chrono::Local.from_local_datetime(&naive).earliest().map(|t| t.with_timezone(&Utc)).ok_or_else(bad)
    }
}

/// `ssh`'s pattern lists: comma-separated `*`/`?` globs, a `!` prefix negates and wins.
fn pattern_list_matches(patterns: &[String], s: &str) -> bool {
    let mut hit = false;
    for p in patterns {
        match p.strip_prefix('!') {
            Some(neg) if glob(neg.as_bytes(), s.as_bytes()) => return false,
            Some(_) => {}
            None => hit |= glob(p.as_bytes(), s.as_bytes()),
        }
    }
    hit
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Verify the SSH signature of commit `sha`; returns the signer's principal.
///
/// Reads only the commit object (signature, signed payload, committer time), never a tree or
/// blob, so a refused commit's content is not parsed at all.
///
/// # Errors
/// Unsigned, not SSH, unknown key, a signature that does not verify, or a key whose
/// allowed-signers options do not allow this commit (namespace, validity window).
pub fn verify_commit(repo: &git2::Repository, sha: &str, allowed: &AllowedSigners) -> Result<String, SignatureError> {
    let oid = git2::Oid::from_str(sha)?;
    let (sig, data) = repo.extract_signature(&oid, None).map_err(|_| SignatureError::Unsigned(sha.to_string()))?;
    let pem = std::str::from_utf8(&sig).map_err(|e| SignatureError::NotSsh { sha: sha.into(), message: e.to_string() })?;
    let sshsig = ssh_key::SshSig::from_pem(pem).map_err(|e| SignatureError::NotSsh { sha: sha.into(), message: e.to_string() })?;
    let signer = sshsig.public_key();
    let candidates: Vec<&Signer> = allowed.signers.iter().filter(|s| s.key.key_data() == signer).collect();
    let Some(first) = candidates.first() else {
        return Err(SignatureError::UnknownKey { sha: sha.into(), fingerprint: signer.fingerprint(Default::default()).to_string() });
    };
    first.key.verify("git", &data, &sshsig).map_err(|e| SignatureError::Invalid { sha: sha.into(), message: e.to_string() })?;
    let commit = repo.find_commit(oid)?;
    let at = Utc.timestamp_opt(commit.committer().when().seconds(), 0).single().unwrap_or_default();
    let mut refusal = None;
    for s in &candidates {
        match s.refuses(at) {
            None => return Ok(s.principals.clone()),
            Some(reason) => {
                refusal.get_or_insert((s.principals.clone(), s.line, reason));
            }
        }
    }
    let (principal, line, reason) = refusal.expect("at least one candidate");
    Err(SignatureError::NotAllowed { sha: sha.into(), principal, line, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINILM1dJdIehtbYVYttWx+ixFoYBOU624FONXelaol6V";

    #[test]
    fn options_are_parsed_and_unknown_ones_refused_naming_the_line() {
        let a = AllowedSigners::parse(&format!(
            "# team\ndev@example.com namespaces=\"git,file\",valid-after=\"20240101Z\",valid-before=\"203001011200Z\" {KEY} laptop\n"
        ))
        .unwrap();
        let s = &a.signers[0];
        assert_eq!((s.line, s.namespaces.clone().unwrap()), (2, vec!["git".to_string(), "file".to_string()]));
        assert_eq!(s.valid_after.unwrap().to_rfc3339(), "2024-01-01T00:00:00+00:00");
        assert_eq!(s.valid_before.unwrap().to_rfc3339(), "2030-01-01T12:00:00+00:00");
        let e = AllowedSigners::parse(&format!("a@x {KEY}\nca@x cert-authority {KEY}\n")).unwrap_err().to_string();
        assert!(e.starts_with("allowed signers line 2: `cert-authority` is not supported"), "{e}");
        let e = AllowedSigners::parse(&format!("a@x no-touch-required {KEY}\n")).unwrap_err().to_string();
        assert!(e.contains("line 1: unknown option `no-touch-required`"), "{e}");
        let e = AllowedSigners::parse(&format!("a@x valid-after=\"2024\" {KEY}\n")).unwrap_err().to_string();
        assert!(e.contains("line 1: `2024` is not a time"), "{e}");
    }

    #[test]
    fn namespaces_and_validity_decide_per_line() {
        let a =
            AllowedSigners::parse(&format!("a@x namespaces=\"file,!git,*\" {KEY}\nb@x namespaces=\"gi?\",valid-before=20250101Z {KEY}\n"))
                .unwrap();
        let at = Utc.with_ymd_and_hms(2024, 6, 1, 0, 0, 0).unwrap();
        assert!(a.signers[0].refuses(at).unwrap().contains("do not include `git`"));
        assert_eq!(a.signers[1].refuses(at), None);
        let later = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        assert!(a.signers[1].refuses(later).unwrap().contains("valid only before 2025-01-01T00:00:00+00:00"));
    }
}
