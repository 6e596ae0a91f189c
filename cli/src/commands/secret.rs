//! `mcpctl secret …`: author age-encrypted values in the checkout (`set`, `rotate`), read them
//! (`reveal`), manage who can read them (`recipients`), and look for credentials that escaped
//! encryption (`scan`).
//!
//! # Guarantees
//! Every write is validated against the whole repo first and an invalid result writes nothing;
//! files are replaced by rename. No value is ever printed except by `reveal`, to stdout.
//! `rotate` decrypts everything before it writes anything: one undecryptable value and no file
//! changes.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use reconciler::leak_scan::{self, Finding};
use reconciler::recipients::{Identities, Recipient, Recipients, RECIPIENTS_ANNOTATION};
use schema::{Kind, Resource, ResourceKey, SourceFile, Spec};

use crate::args::*;
use crate::{render, CliError};

type Result<T = ()> = std::result::Result<T, CliError>;

/// What went wrong in a `secret` command, before anything was written.
#[derive(Debug, thiserror::Error)]
pub enum SecretCmdError {
    #[error("Secret `{0}` is not defined in the repo")]
    NotFound(String),
    #[error("Secret `{0}` is defined in several projects ({1}); pass -p PROJECT")]
    Ambiguous(String, String),
    #[error("Secret `{name}` has no key `{key}` (keys: {keys})")]
    NoKey { name: String, key: String, keys: String },
    #[error("Secret `{0}` holds no age-encrypted values in the repo (its values live in its backend)")]
    NoData(String),
    #[error("Secret `{name}` sits in a grouped list in {file}; `secret set/rotate` rewrite whole documents: move it into its own `kind: Secret` document")]
    Grouped { name: String, file: String },
    #[error("{0} needs an age identity: pass --age-identity FILE or set MCPCTL_AGE_IDENTITY_FILE")]
    NoIdentity(&'static str),
    #[error("Secret `{name}` is kept in backend `{backend}` (type openbao), not in git; write its value there, or move it with `mcpctl migrate secrets`")]
    External { name: String, backend: String },
    #[error("the value is empty; nothing written")]
    EmptyValue,
    #[error("no recipient matches `{0}` (by key or comment); see `mcpctl secret recipients list`")]
    NoSuchRecipient(String),
    #[error("removing `{0}` would leave no recipient, so no one could read new secrets; add the new recipient first")]
    LastRecipient(String),
    #[error("`{0}` is already a recipient")]
    Duplicate(String),
    #[error(transparent)]
    Recipients(#[from] reconciler::recipients::RecipientsError),
    #[error(transparent)]
    Scan(#[from] reconciler::leak_scan::ScanError),
}

impl From<SecretCmdError> for CliError {
    fn from(e: SecretCmdError) -> Self {
        CliError::Other(e.into())
    }
}

pub(super) fn run(g: &Global, c: SecretCommand) -> Result {
    match c {
        SecretCommand::Set(a) => set(g, a),
        SecretCommand::Reveal(a) => reveal(g, a),
        SecretCommand::Rotate(a) => rotate(g, a),
        SecretCommand::Recipients(RecipientsCommand::List) => recipients_list(g),
        SecretCommand::Recipients(RecipientsCommand::Add { recipient }) => recipients_add(g, &recipient),
        SecretCommand::Recipients(RecipientsCommand::Remove { recipient }) => recipients_remove(g, &recipient),
        SecretCommand::Scan(a) => scan(g, a),
    }
}

fn read_files(repo: &Path) -> Result<Vec<SourceFile>> {
    Ok(reconciler::read_dir(repo).with_context(|| format!("reading repo {}", repo.display()))?)
}

fn display_name(r: &Resource) -> String {
    match &r.metadata.project {
        Some(p) => format!("{p}/{}", r.name()),
        None => r.name().to_string(),
    }
}

/// The Secret NAME (in PROJECT, or the only one of that name) among loaded resources.
fn find<'a>(resources: &'a [Resource], name: &str, project: Option<&str>) -> std::result::Result<Option<&'a Resource>, SecretCmdError> {
    let hits: Vec<&Resource> = resources
        .iter()
        .filter(|r| r.kind() == Kind::Secret && r.name() == name && (project.is_none() || r.metadata.project.as_deref() == project))
        .collect();
    match hits.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(SecretCmdError::Ambiguous(
            name.into(),
            many.iter().map(|r| r.metadata.project.clone().unwrap_or_else(|| "global".into())).collect::<Vec<_>>().join(", "),
        )),
    }
}

/// The OpenBao backend holding secret `r` (its `backend`, else the default), if that is where it
/// lives: its values are not written into git.
fn external_backend(resources: &[Resource], r: &Resource) -> Option<String> {
    let Spec::Secret(s) = &r.spec else { return None };
    resources.iter().find_map(|b| match &b.spec {
        Spec::SecretBackend(bs)
            if s.backend.as_deref().map_or(bs.is_default, |n| n == b.name())
                && bs.backend_type == schema::spec::SecretBackendType::Openbao =>
        {
            Some(b.name().to_string())
        }
        _ => None,
    })
}

fn identities(a: &IdentityArgs, what: &'static str) -> Result<Identities> {
    let path = a.age_identity.as_ref().ok_or(SecretCmdError::NoIdentity(what))?;
    Ok(Identities::from_file(path).map_err(SecretCmdError::from)?)
}

/// Validate the repo with these files replaced, then write them (each by rename).
fn write_checked(repo: &Path, changed: &BTreeMap<String, String>) -> Result {
    crate::document_edit::write_checked(repo, changed)
}

/// [`crate::document_edit::rewrite_document`] of a Secret: a grouped one cannot be rewritten.
fn rewrite_document(
    text: &str,
    line: usize,
    name: &str,
    file: &str,
    edit: impl FnOnce(&mut Value),
) -> std::result::Result<String, SecretCmdError> {
    crate::document_edit::rewrite_document(text, line, "Secret", edit)
        .ok_or_else(|| SecretCmdError::Grouped { name: name.into(), file: file.into() })
}

/// Put each ciphertext of `data` under `spec.data`, and record the recipients in the annotation.
fn set_fields(doc: &mut Value, data: &BTreeMap<String, String>, annotation: &str) {
    let root = doc.as_object_mut().expect("a Secret document is a mapping");
    let meta = root.entry("metadata").or_insert_with(|| json!({}));
    let ann = meta.as_object_mut().expect("metadata is a mapping").entry("annotations").or_insert_with(|| json!({}));
    if let Some(a) = ann.as_object_mut() {
        a.insert(RECIPIENTS_ANNOTATION.into(), Value::String(annotation.into()));
    }
    let spec = root.entry("spec").or_insert_with(|| json!({}));
    let d = spec.as_object_mut().expect("spec is a mapping").entry("data").or_insert_with(|| json!({}));
    if let Some(d) = d.as_object_mut() {
        for (k, v) in data {
            d.insert(k.clone(), Value::String(v.clone()));
        }
    }
}

const NEW_FILE_HEADER: &str = "# Values are age ciphertext, encrypted to .mcpctl/recipients.txt (see the annotation).\n# Change them with `mcpctl secret set`; read them with `mcpctl secret reveal`.\n";

fn read_value(a: &SecretSetArgs) -> Result<String> {
    let v = if let Some(v) = &a.from_literal {
        v.clone()
    } else if let Some(f) = &a.from_file {
        std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
    } else {
        if std::io::stdin().is_terminal() {
            eprintln!("reading the value of {}/{} from stdin (end with Ctrl-D)…", a.name, a.key);
        }
        let mut v = String::new();
        std::io::stdin().read_to_string(&mut v).context("reading the value from stdin")?;
        let trimmed = v.strip_suffix("\r\n").or_else(|| v.strip_suffix('\n')).map(str::to_string);
        trimmed.unwrap_or(v)
    };
    if v.is_empty() {
        return Err(SecretCmdError::EmptyValue.into());
    }
    Ok(v)
}

fn set(g: &Global, a: SecretSetArgs) -> Result {
    let recipients = Recipients::load(&g.repo).map_err(SecretCmdError::from)?;
    let value = read_value(&a)?;
    let armored = recipients.encrypt(value.as_bytes()).map_err(SecretCmdError::from)?;
    drop(value);
    let files = read_files(&g.repo)?;
    let loaded = schema::load::load(&files);
    let data = BTreeMap::from([(a.key.clone(), armored)]);
    let annotation = recipients.annotation();
    let (rel, content, created) = match find(&loaded.resources, &a.name, a.project.as_deref())? {
        Some(r) => {
            if let Some(backend) = external_backend(&loaded.resources, r) {
                return Err(SecretCmdError::External { name: a.name.clone(), backend }.into());
            }
            let origin = r.origin.as_ref().context("the secret has no file")?;
            let file = origin.file.to_string();
            let text = std::fs::read_to_string(g.repo.join(&file)).with_context(|| format!("reading {file}"))?;
            let new = rewrite_document(&text, origin.node.pos.line as usize, &a.name, &file, |doc| set_fields(doc, &data, &annotation))?;
            (file, new, false)
        }
        None => {
            let key = ResourceKey::new(Kind::Secret, a.project.as_deref(), &a.name);
            let rel = crate::authoring::path_for(&key).to_string_lossy().replace('\\', "/");
            if g.repo.join(&rel).exists() {
                return Err(anyhow::anyhow!("{rel} exists but does not define Secret `{}`; edit it or pick another name", a.name).into());
            }
            let mut metadata = json!({"name": a.name});
            if let Some(p) = &a.project {
                metadata["project"] = json!(p);
            }
            let mut doc = json!({"apiVersion": schema::API_VERSION, "kind": "Secret", "metadata": metadata, "spec": {}});
            set_fields(&mut doc, &data, &annotation);
            (rel, format!("{NEW_FILE_HEADER}{}", schema::emit::yaml_document(&doc)), true)
        }
    };
    write_checked(&g.repo, &BTreeMap::from([(rel.clone(), content)]))?;
    let n = recipients.iter().count();
    let what = if created { "created in" } else { "written to" };
    render::ok_line(&format!("Secret `{}` key `{}` encrypted to {n} recipient(s), {what} {rel}", a.name, a.key));
    Ok(())
}

fn reveal(g: &Global, a: SecretRevealArgs) -> Result {
    let ids = identities(&a.identity, "reveal")?;
    let files = read_files(&g.repo)?;
    let loaded = schema::load::load(&files);
    let r = find(&loaded.resources, &a.name, a.project.as_deref())?.ok_or_else(|| SecretCmdError::NotFound(a.name.clone()))?;
    let Spec::Secret(s) = &r.spec else { return Err(SecretCmdError::NotFound(a.name.clone()).into()) };
    if s.data.is_empty() {
        return Err(SecretCmdError::NoData(a.name.clone()).into());
    }
    let name = display_name(r);
    let mut out = std::io::stdout().lock();
    if let Some(key) = &a.key {
        let armored = s.data.get(key).ok_or_else(|| SecretCmdError::NoKey {
            name: name.clone(),
            key: key.clone(),
            keys: s.data.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        let v = ids.decrypt(&name, key, armored).map_err(SecretCmdError::from)?;
        out.write_all(v.as_bytes()).context("writing output")?;
        if std::io::stdout().is_terminal() && !v.ends_with('\n') {
            writeln!(out).context("writing output")?;
        }
        return Ok(());
    }
    let mut values = serde_json::Map::new();
    for (k, armored) in &s.data {
        values.insert(k.clone(), Value::String(ids.decrypt(&name, k, armored).map_err(SecretCmdError::from)?));
    }
    if a.output == TextOrJson::Json {
        writeln!(out, "{}", Value::Object(values)).context("writing output")?;
    } else {
        for (k, v) in values {
            let v = v.as_str().unwrap_or_default().to_string();
            let plain = !v.is_empty() && !v.contains(['\n', '\r', '"']) && v.trim() == v;
            writeln!(out, "{k}={}", if plain { v } else { Value::String(v).to_string() }).context("writing output")?;
        }
    }
    Ok(())
}

fn rotate(g: &Global, a: SecretRotateArgs) -> Result {
    let ids = identities(&a.identity, "rotate")?;
    let recipients = Recipients::load(&g.repo).map_err(SecretCmdError::from)?;
    if recipients.is_empty() {
        return Err(
            SecretCmdError::from(reconciler::recipients::RecipientsError::NoRecipients(recipients.path().display().to_string())).into()
        );
    }
    let files = read_files(&g.repo)?;
    let loaded = schema::load::load(&files);
    let chosen: Vec<&Resource> = loaded
        .resources
        .iter()
        .filter(|r| matches!(&r.spec, Spec::Secret(s) if !s.data.is_empty()))
        .filter(|r| a.names.is_empty() || a.names.iter().any(|n| *n == display_name(r) || *n == r.name()))
        .collect();
    for n in &a.names {
        if !chosen.iter().any(|r| *n == display_name(r) || *n == r.name()) {
            return Err(SecretCmdError::NotFound(n.clone()).into());
        }
    }
    // Decrypt everything first: one failure and nothing is written.
    let mut errors = Vec::new();
    let mut plan: Vec<(&Resource, BTreeMap<String, String>)> = Vec::new();
    for r in &chosen {
        let Spec::Secret(s) = &r.spec else { continue };
        let mut data = BTreeMap::new();
        for (k, armored) in &s.data {
            match ids.decrypt(&display_name(r), k, armored).and_then(|v| recipients.encrypt(v.as_bytes())) {
                Ok(new) => {
                    data.insert(k.clone(), new);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        plan.push((r, data));
    }
    if !errors.is_empty() {
        errors.iter().for_each(|e| render::error_line(e));
        return Err(anyhow::anyhow!("{} value(s) cannot be decrypted with {}; nothing rotated", errors.len(), ids.path()).into());
    }
    // Rewrite from the bottom of each file up, so earlier documents keep their line numbers.
    plan.sort_by_key(|(r, _)| r.origin.as_ref().map(|o| (o.file.to_string(), std::cmp::Reverse(o.node.pos.line))));
    let annotation = recipients.annotation();
    let mut changed: BTreeMap<String, String> = BTreeMap::new();
    let mut count = 0;
    for (r, data) in &plan {
        let origin = r.origin.as_ref().context("the secret has no file")?;
        let file = origin.file.to_string();
        let text = match changed.get(&file) {
            Some(t) => t.clone(),
            None => std::fs::read_to_string(g.repo.join(&file)).with_context(|| format!("reading {file}"))?,
        };
        count += data.len();
        let new = rewrite_document(&text, origin.node.pos.line as usize, r.name(), &file, |doc| set_fields(doc, data, &annotation))?;
        changed.insert(file, new);
    }
    write_checked(&g.repo, &changed)?;
    render::ok_line(&format!("re-encrypted {count} value(s) of {} secret(s) to {} recipient(s)", chosen.len(), recipients.iter().count()));
    Ok(())
}

/// Secrets whose recipients annotation differs from the current recipients (to rotate).
fn stale(g: &Global, recipients: &Recipients) -> Result<Vec<String>> {
    let files = read_files(&g.repo)?;
    let loaded = schema::load::load(&files);
    Ok(loaded
        .resources
        .iter()
        .filter(|r| matches!(&r.spec, Spec::Secret(s) if !s.data.is_empty()))
        .filter(|r| !r.metadata.annotations.get(RECIPIENTS_ANNOTATION).is_some_and(|a| recipients.matches_annotation(a)))
        .map(display_name)
        .collect())
}

fn rotate_hint(g: &Global, recipients: &Recipients) -> Result {
    let stale = stale(g, recipients)?;
    if !stale.is_empty() {
        eprintln!("{} secret(s) are encrypted to another set of recipients: {}; run `mcpctl secret rotate`", stale.len(), stale.join(", "));
    }
    Ok(())
}

fn recipients_list(g: &Global) -> Result {
    let recipients = Recipients::load(&g.repo).map_err(SecretCmdError::from)?;
    let mut out = anstream::stdout();
    if recipients.is_empty() {
        writeln!(out, "no recipients in {}; add one with `mcpctl secret recipients add age1…`", recipients.path().display())
            .context("writing output")?;
        return Ok(());
    }
    for r in recipients.iter() {
        writeln!(out, "{:<12} {}{}", r.kind, r.key, r.comment.as_ref().map(|c| format!("  # {c}")).unwrap_or_default())
            .context("writing output")?;
    }
    rotate_hint(g, &recipients)
}

fn save_recipients(r: &Recipients) -> Result {
    let path = r.path();
    std::fs::create_dir_all(path.parent().expect("has a parent")).with_context(|| format!("creating {}", path.display()))?;
    std::fs::write(path, r.render()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn recipients_add(g: &Global, text: &str) -> Result {
    let mut recipients = Recipients::load(&g.repo).map_err(SecretCmdError::from)?;
    let r = Recipient::parse(text).map_err(|reason| {
        SecretCmdError::from(reconciler::recipients::RecipientsError::BadRecipient {
            file: "argument".into(),
            line: 1,
            col: 1,
            text: text.chars().take(60).collect(),
            reason,
        })
    })?;
    let key = r.key.clone();
    if !recipients.add(r) {
        return Err(SecretCmdError::Duplicate(key).into());
    }
    save_recipients(&recipients)?;
    render::ok_line(&format!("added {key} to {}", reconciler::recipients::RECIPIENTS_FILE));
    rotate_hint(g, &recipients)
}

fn recipients_remove(g: &Global, what: &str) -> Result {
    let mut recipients = Recipients::load(&g.repo).map_err(SecretCmdError::from)?;
    let before = recipients.clone();
    let gone = recipients.remove(what);
    if gone.is_empty() {
        return Err(SecretCmdError::NoSuchRecipient(what.into()).into());
    }
    if recipients.is_empty() {
        return Err(SecretCmdError::LastRecipient(before.iter().next().map(|r| r.key.clone()).unwrap_or_default()).into());
    }
    save_recipients(&recipients)?;
    for r in &gone {
        render::ok_line(&format!("removed {} from {}", r.display(), reconciler::recipients::RECIPIENTS_FILE));
    }
    eprintln!("the removed key can still read the current ciphertext (and every old commit): run `mcpctl secret rotate`, and change the credentials themselves if that key is compromised");
    rotate_hint(g, &recipients)
}

fn scan(g: &Global, a: SecretScanArgs) -> Result {
    let mut found: Vec<Finding> = if a.pre_commit {
        leak_scan::scan_staged(&g.repo).map_err(SecretCmdError::from)?
    } else {
        let mut v = leak_scan::scan_tree(&g.repo).map_err(SecretCmdError::from)?;
        if a.history {
            v.extend(leak_scan::scan_history(&g.repo).map_err(SecretCmdError::from)?);
        }
        v
    };
    let allowed = leak_scan::allow_list(&g.repo);
    let before = found.len();
    found.retain(|f| !allowed.contains(&f.fingerprint));
    let mut out = anstream::stdout();
    if a.output == TextOrJson::Json {
        writeln!(out, "{}", serde_json::to_string(&found).context("serializing findings")?).context("writing output")?;
    } else {
        for f in &found {
            writeln!(out, "{f}").context("writing output")?;
        }
    }
    let skipped = before - found.len();
    let where_ = if a.pre_commit {
        "staged files"
    } else if a.history {
        "the work tree and history"
    } else {
        "the work tree"
    };
    if found.is_empty() {
        if a.output == TextOrJson::Json {
            return Ok(());
        }
        render::ok_line(&format!(
            "no credentials found in {where_}{}",
            if skipped > 0 { format!(" ({skipped} allowed by {})", leak_scan::ALLOW_FILE) } else { String::new() }
        ));
        return Ok(());
    }
    let mut err = anstream::stderr();
    let in_history = found.iter().any(|f| f.commit.is_some());
    let _ = writeln!(err, "\n{} possible credential(s) in {where_}. To purge:", found.len());
    let _ = writeln!(err, "  1. Revoke or rotate each credential at its provider first: once pushed it must be taken as public.");
    let _ = writeln!(err, "  2. Keep the new value encrypted: `mcpctl secret set NAME KEY --from-file FILE` and refer to it with `env: [{{name: X, valueFrom: {{secretRef: {{name: NAME, key: KEY}}}}}}]`.");
    if a.pre_commit {
        let _ = writeln!(err, "  3. Unstage it (`git restore --staged FILE`) and remove it from the file; this commit was refused.");
    } else {
        let _ = writeln!(
            err,
            "  3. Remove it from the file{}",
            if in_history {
                ", then from history: `git filter-repo --replace-text EXPRS` (EXPRS holds `OLD-VALUE==>REDACTED` lines) or `git filter-repo --invert-paths --path FILE`, force-push, and have every clone fetched anew."
            } else {
                "."
            }
        );
    }
    let _ = writeln!(err, "  A demo value or a false positive: add its fingerprint to {} (one a line, `# why`).", leak_scan::ALLOW_FILE);
    Err(CliError::Failed(1))
}
