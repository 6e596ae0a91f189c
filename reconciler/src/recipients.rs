//! age encryption to a repo's recipients: the recipients file (`.mcpctl/recipients.txt`),
//! encrypting a value to it, and identity files (age X25519 or unencrypted OpenSSH ed25519/RSA
//! keys) that decrypt values, as `mcpctl secret set|reveal|rotate` and the reconciler use them.
//!
//! # Guarantees
//! Values only pass through memory; no error here carries a value. A value encrypted here is a
//! standard age file in ASCII armor: `age -d -i IDENTITY` decrypts it, and values `age -r … -a`
//! wrote decrypt here.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use schema::{DesiredState, Kind, Spec};

/// Where a repo lists who can read its secrets, relative to the repo root (a dot-directory, so the
/// loader never reads it as resources).
pub const RECIPIENTS_FILE: &str = ".mcpctl/recipients.txt";

/// The annotation that records, in each Secret, the recipients its values were encrypted to.
pub const RECIPIENTS_ANNOTATION: &str = "mcpctl.io/recipients";

/// Why recipients, encryption or decryption failed. Never carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum RecipientsError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{file}:{line}:{col}: `{text}` is not an age recipient (age1…) or an SSH public key (ssh-ed25519 …, ssh-rsa …): {reason}")]
    BadRecipient { file: String, line: usize, col: usize, text: String, reason: String },
    #[error("{0} lists no recipients; add one with `mcpctl secret recipients add age1…` (or `ssh-ed25519 …`)")]
    NoRecipients(String),
    #[error("cannot read the identity file {path}: {message}")]
    Identity { path: String, message: String },
    #[error("encrypting failed: {0}")]
    Encrypt(String),
    #[error("Secret `{secret}` key `{key}` cannot be decrypted with {identity}: {reason}")]
    Decrypt { secret: String, key: String, identity: String, reason: String },
}

/// One recipient line: the parsed key and the text it was written as (with its comment).
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The key in canonical form (`age1…`, or `ssh-ed25519 AAAA…` without comment).
    pub key: String,
    /// The SSH key's comment, or a trailing `# comment` on the line.
    pub comment: Option<String>,
    /// `X25519`, `ssh-ed25519` or `ssh-rsa`.
    pub kind: &'static str,
}

impl Recipient {
    /// Parse one recipient as written on a line (`age1…`, `ssh-ed25519 AAAA… comment`), with an
    /// optional trailing `# comment`.
    ///
    /// # Errors
    /// A reason, when the text is neither an X25519 recipient nor a supported SSH public key.
    pub fn parse(text: &str) -> Result<Recipient, String> {
        let (body, hash_comment) = match text.split_once(" #") {
            Some((b, c)) => (b.trim(), Some(c.trim().to_string()).filter(|c| !c.is_empty())),
            None => (text.trim(), None),
        };
        if body.starts_with("age1") {
            let r = age::x25519::Recipient::from_str(body).map_err(|e| e.to_string())?;
            return Ok(Recipient { key: r.to_string(), comment: hash_comment, kind: "X25519" });
        }
        if body.starts_with("ssh-") {
            let mut parts = body.split_whitespace();
            let (ty, b64) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let ssh_comment = parts.collect::<Vec<_>>().join(" ");
            let r = age::ssh::Recipient::from_str(&format!("{ty} {b64}")).map_err(|e| match e {
                age::ssh::ParseRecipientKeyError::Unsupported(t) => {
                    format!("SSH key type {t} is not supported (use ssh-ed25519 or ssh-rsa)")
                }
                age::ssh::ParseRecipientKeyError::RsaModulusTooSmall => "RSA key smaller than 2048 bits".into(),
                age::ssh::ParseRecipientKeyError::RsaModulusTooLarge => "RSA key too large".into(),
                _ => "invalid SSH public key".into(),
            })?;
            let kind = if ty == "ssh-ed25519" { "ssh-ed25519" } else { "ssh-rsa" };
            let comment = hash_comment.or_else(|| Some(ssh_comment).filter(|c| !c.is_empty()));
            return Ok(Recipient { key: r.to_string(), comment, kind });
        }
        Err("expected `age1…`, `ssh-ed25519 …` or `ssh-rsa …`".into())
    }

    /// The recipient with its comment, as written in the annotation and by `list`.
    pub fn display(&self) -> String {
        match &self.comment {
            Some(c) => format!("{} {c}", self.key),
            None => self.key.clone(),
        }
    }

    fn encryptor(&self) -> Box<dyn age::Recipient + Send> {
        if self.kind == "X25519" {
            Box::new(age::x25519::Recipient::from_str(&self.key).expect("parsed before"))
        } else {
            Box::new(age::ssh::Recipient::from_str(&self.key).expect("parsed before"))
        }
    }
}

/// The recipients file of a repo: its lines (kept as written, comments included) and the
/// recipients they hold.
#[derive(Debug, Clone)]
pub struct Recipients {
    path: PathBuf,
    lines: Vec<String>,
    parsed: Vec<(usize, Recipient)>,
}

impl Recipients {
    /// Read `<repo>/.mcpctl/recipients.txt`; a missing file is an empty list.
    ///
    /// # Errors
    /// An unreadable file, or a line that is not a recipient (`file:line:col`).
    pub fn load(repo: &Path) -> Result<Recipients, RecipientsError> {
        let path = repo.join(RECIPIENTS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(RecipientsError::Read { path: path.display().to_string(), message: e.to_string() }),
        };
        Recipients::parse(path, &text)
    }

    /// Parse the text of a recipients file: one recipient a line; blank lines and lines starting
    /// with `#` are comments.
    ///
    /// # Errors
    /// A line that is not a recipient, with its position.
    pub fn parse(path: PathBuf, text: &str) -> Result<Recipients, RecipientsError> {
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let mut parsed = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let col = line.len() - line.trim_start().len() + 1;
            let r = Recipient::parse(t).map_err(|reason| RecipientsError::BadRecipient {
                file: path.display().to_string(),
                line: i + 1,
                col,
                text: t.chars().take(60).collect(),
                reason,
            })?;
            parsed.push((i, r));
        }
        Ok(Recipients { path, lines, parsed })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn iter(&self) -> impl Iterator<Item = &Recipient> {
        self.parsed.iter().map(|(_, r)| r)
    }

    pub fn is_empty(&self) -> bool {
        self.parsed.is_empty()
    }

    /// The recipients as the annotation records them: one a line, sorted, comments kept.
    pub fn annotation(&self) -> String {
        let mut v: Vec<String> = self.iter().map(Recipient::display).collect();
        v.sort();
        v.join("\n")
    }

    /// Whether an annotation (as [`Recipients::annotation`] wrote it) names exactly these keys.
    pub fn matches_annotation(&self, annotation: &str) -> bool {
        let mut have: Vec<String> = annotation.lines().filter_map(|l| Recipient::parse(l).ok()).map(|r| r.key).collect();
        let mut want: Vec<String> = self.iter().map(|r| r.key.clone()).collect();
        have.sort();
        have.dedup();
        want.sort();
        want.dedup();
        have == want
    }

    /// Add a recipient line; `false` when that key is already listed.
    pub fn add(&mut self, r: Recipient) -> bool {
        if self.iter().any(|x| x.key == r.key) {
            return false;
        }
        let line = match (&r.comment, r.kind) {
            (Some(c), "X25519") => format!("{} # {c}", r.key),
            _ => r.display(),
        };
        self.lines.push(line);
        self.parsed.push((self.lines.len() - 1, r));
        true
    }

    /// Remove the recipients whose key or comment is `what`; returns what was removed.
    pub fn remove(&mut self, what: &str) -> Vec<Recipient> {
        let wanted = Recipient::parse(what).ok().map(|r| r.key);
        let hit = |r: &Recipient| Some(&r.key) == wanted.as_ref() || r.key == what.trim() || r.comment.as_deref() == Some(what.trim());
        let gone: Vec<(usize, Recipient)> = self.parsed.iter().filter(|(_, r)| hit(r)).cloned().collect();
        let drop: Vec<usize> = gone.iter().map(|(i, _)| *i).collect();
        self.lines = self.lines.iter().enumerate().filter(|(i, _)| !drop.contains(i)).map(|(_, l)| l.clone()).collect();
        // Line numbers moved: parse again (every remaining line parsed before).
        let again = Recipients::parse(self.path.clone(), &self.render()).expect("remaining lines parsed before");
        self.parsed = again.parsed;
        gone.into_iter().map(|(_, r)| r).collect()
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }

    /// Encrypt `value` to every recipient, as age ASCII armor.
    ///
    /// # Errors
    /// No recipients, or a failure of the age library.
    pub fn encrypt(&self, value: &[u8]) -> Result<String, RecipientsError> {
        if self.is_empty() {
            return Err(RecipientsError::NoRecipients(self.path.display().to_string()));
        }
        let boxed: Vec<Box<dyn age::Recipient + Send>> = self.iter().map(Recipient::encryptor).collect();
        let enc = age::Encryptor::with_recipients(boxed.iter().map(|r| r.as_ref() as &dyn age::Recipient))
            .map_err(|e| RecipientsError::Encrypt(e.to_string()))?;
        let fail = |e: std::io::Error| RecipientsError::Encrypt(e.to_string());
        let mut out = Vec::new();
        let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor).map_err(fail)?;
        let mut w = enc.wrap_output(armor).map_err(fail)?;
        w.write_all(value).map_err(fail)?;
        w.finish().and_then(|a| a.finish()).map_err(fail)?;
        let mut text = String::from_utf8(out).map_err(|e| RecipientsError::Encrypt(e.to_string()))?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Ok(text)
    }
}

/// An identity file: age X25519 identities (`age-keygen`) or one unencrypted OpenSSH private key
/// (ed25519 or RSA). Kept as text and parsed per use, because age's parsed identities are not
/// `Send`.
pub struct Identities {
    text: String,
    path: String,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities({})", self.path)
    }
}

impl Identities {
    /// Load an identity file.
    ///
    /// # Errors
    /// An unreadable file, no identity in it, or a passphrase-protected SSH key.
    pub fn from_file(path: &Path) -> Result<Identities, RecipientsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RecipientsError::Identity { path: path.display().to_string(), message: e.to_string() })?;
        let ids = Identities { text, path: path.display().to_string() };
        ids.parsed()?;
        Ok(ids)
    }

    /// The file these identities came from.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn parsed(&self) -> Result<Vec<Box<dyn age::Identity>>, RecipientsError> {
        let err = |message: String| RecipientsError::Identity { path: self.path.clone(), message };
        if self.text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") || self.text.contains("-----BEGIN RSA PRIVATE KEY-----") {
            let id = age::ssh::Identity::from_buffer(self.text.as_bytes(), Some(self.path.clone())).map_err(|e| err(e.to_string()))?;
            return match id {
                age::ssh::Identity::Unencrypted(_) => Ok(vec![Box::new(id)]),
                age::ssh::Identity::Encrypted(_) => {
                    Err(err("the SSH key is passphrase-protected; use an unencrypted copy (kept private) or an age identity".into()))
                }
                age::ssh::Identity::Unsupported(_) => Err(err("unsupported SSH key type (use ed25519 or RSA)".into())),
            };
        }
        let file = age::IdentityFile::from_buffer(self.text.as_bytes()).map_err(|e| err(e.to_string()))?;
        let ids = file.into_identities().map_err(|e| err(e.to_string()))?;
        if ids.is_empty() {
            return Err(err("no identities in the file (expected AGE-SECRET-KEY-1… or an OpenSSH private key)".into()));
        }
        Ok(ids)
    }

    /// Decrypt one value of Secret `secret`, key `key` (the names only label errors).
    ///
    /// # Errors
    /// [`RecipientsError::Decrypt`] naming the secret and key, never the value.
    pub fn decrypt(&self, secret: &str, key: &str, armored: &str) -> Result<String, RecipientsError> {
        let ids = self.parsed()?;
        self.decrypt_with(&ids, secret, key, armored)
    }

    fn decrypt_with(&self, ids: &[Box<dyn age::Identity>], secret: &str, key: &str, armored: &str) -> Result<String, RecipientsError> {
        let fail =
            |reason: String| RecipientsError::Decrypt { secret: secret.into(), key: key.into(), identity: self.path.clone(), reason };
        let why = |e: age::DecryptError| match e {
            age::DecryptError::NoMatchingKeys => "it was not encrypted to this identity (rotate after adding its recipient)".to_string(),
            e => e.to_string(),
        };
        let dec = age::Decryptor::new(age::armor::ArmoredReader::new(armored.trim().as_bytes())).map_err(|e| fail(why(e)))?;
        let mut reader = dec.decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity)).map_err(|e| fail(why(e)))?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(|e| fail(e.to_string()))?;
        String::from_utf8(out).map_err(|_| fail("the value is not UTF-8 text".into()))
    }

    /// Decrypt every age value of every Secret in `state`, keeping nothing: the check that a commit's
    /// secrets can be used by this installation before anything is applied.
    ///
    /// # Errors
    /// One [`RecipientsError::Decrypt`] per value that cannot be decrypted (all of them listed).
    pub fn check_decryptable(&self, state: &DesiredState) -> Result<usize, Vec<RecipientsError>> {
        let ids = self.parsed().map_err(|e| vec![e])?;
        let mut errors = Vec::new();
        let mut count = 0;
        for r in state.of_kind(Kind::Secret) {
            let Spec::Secret(s) = &r.spec else { continue };
            let name = match &r.metadata.project {
                Some(p) => format!("{p}/{}", r.name()),
                None => r.name().to_string(),
            };
            for (key, armored) in &s.data {
                match self.decrypt_with(&ids, &name, key, armored) {
                    Ok(_) => count += 1,
                    Err(e) => errors.push(e),
                }
            }
        }
        if errors.is_empty() {
            Ok(count)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGE_KEY: &str = "AGE-SECRET-KEY-1ZJ2W3H5AC9GYGWU5TRU5C847E9N638MVJEXNGF42NJY8WUR4SQVSW5FKQ8";
    const AGE_PUB: &str = "age1jplu2fc9l388hy7l37z7ss0r5639qhphqedxnnhelwr4edmmtp7sysp5a9";

    fn identities(text: &str) -> (tempfile::TempDir, Identities) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("id.txt");
        std::fs::write(&p, text).unwrap();
        let ids = Identities::from_file(&p).unwrap();
        (dir, ids)
    }

    #[test]
    fn recipients_file_keeps_comments_and_reports_bad_lines_with_positions() {
        let text = format!("# team\n\n{AGE_PUB} # ops laptop\n");
        let mut r = Recipients::parse(PathBuf::from("r.txt"), &text).unwrap();
        assert_eq!(r.iter().count(), 1);
        assert_eq!(r.iter().next().unwrap().comment.as_deref(), Some("ops laptop"));
        assert_eq!(r.render(), text);
        assert!(!r.add(Recipient::parse(AGE_PUB).unwrap()), "duplicate added");
        assert_eq!(r.remove("ops laptop").len(), 1);
        assert!(r.is_empty());
        assert_eq!(r.render(), "# team\n\n");

        let err = Recipients::parse(PathBuf::from("r.txt"), "# x\n  age1notakey\n").unwrap_err().to_string();
        assert!(err.starts_with("r.txt:2:3: `age1notakey` is not an age recipient"), "{err}");
        assert!(matches!(Recipients::parse(PathBuf::from("r"), "").unwrap().encrypt(b"x"), Err(RecipientsError::NoRecipients(_))));
    }

    #[test]
    fn encrypts_and_decrypts_and_a_wrong_identity_names_secret_and_key_only() {
        let r = Recipients::parse(PathBuf::from("r"), AGE_PUB).unwrap();
        let armored = r.encrypt(b"sk-live-value").unwrap();
        assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        assert!(!armored.contains("sk-live-value"));
        let (_d, ids) = identities(AGE_KEY);
        assert_eq!(ids.decrypt("api-keys", "openai", &armored).unwrap(), "sk-live-value");

        let other = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        let (_d2, wrong) = identities(other.to_string().expose_secret());
        let e = wrong.decrypt("api-keys", "openai", &armored).unwrap_err().to_string();
        assert!(e.starts_with("Secret `api-keys` key `openai` cannot be decrypted with "), "{e}");
        assert!(e.contains("not encrypted to this identity"), "{e}");
        assert!(!e.contains("sk-live"), "{e}");
    }

    #[test]
    fn check_decryptable_lists_every_value_it_cannot_read_with_project_secret_and_key() {
        let mine = Recipients::parse(PathBuf::from("r"), AGE_PUB).unwrap();
        let theirs = Recipients::parse(PathBuf::from("r"), &age::x25519::Identity::generate().to_public().to_string()).unwrap();
        let doc = |name: &str, project: &str, key: &str, armor: &str| {
            let body: String = armor.lines().map(|l| format!("      {l}\n")).collect();
            format!("apiVersion: mcpctl.io/v1\nkind: Secret\nmetadata: {{name: {name}{project}}}\nspec:\n  data:\n    {key}: |\n{body}")
        };
        let files = vec![
            schema::SourceFile::new("a.yaml", doc("ok", "", "k", &mine.encrypt(b"v").unwrap())),
            schema::SourceFile::new("b.yaml", doc("foreign", ", project: lab", "token", &theirs.encrypt(b"v").unwrap())),
            schema::SourceFile::new("c.yaml", "apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {name: lab}\n"),
        ];
        let state = schema::check(&files).unwrap();
        let (_d, ids) = identities(AGE_KEY);
        let errors = ids.check_decryptable(&state).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().starts_with("Secret `lab/foreign` key `token` cannot be decrypted"), "{}", errors[0]);
        let only_mine = schema::check(&files[..1]).unwrap();
        assert_eq!(ids.check_decryptable(&only_mine).unwrap(), 1);
    }

    #[test]
    fn annotation_matching_ignores_order_and_comments() {
        let other = age::x25519::Identity::generate().to_public().to_string();
        let r = Recipients::parse(PathBuf::from("r"), &format!("{AGE_PUB} # a\n{other}\n")).unwrap();
        assert!(r.matches_annotation(&format!("{other}\n{AGE_PUB}")));
        assert!(!r.matches_annotation(AGE_PUB));
    }
}
