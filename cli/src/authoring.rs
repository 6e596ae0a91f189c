//! `create`, `edit` and `delete`: change resource files in the checkout, kubectl-style. Every
//! change is validated against the whole repo first; an invalid result writes nothing.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// `anyhow::bail!` for `CliError` results.
macro_rules! bail {
    ($($t:tt)*) => { return Err(CliError::Other(anyhow::anyhow!($($t)*))) };
}
use serde_json::{json, Value};

use schema::{DesiredState, Kind, ResourceKey, Scope, SourceFile};

use crate::args::{CreateArgs, Global, TargetArgs};
use crate::{render, CliError};

type Result<T = ()> = std::result::Result<T, CliError>;

/// Where `create` writes a resource: `<plural>/<name>.yaml`, or under `projects/<project>/`.
pub fn path_for(key: &ResourceKey) -> PathBuf {
    let file = format!("{}/{}.yaml", key.kind.plural(), key.name);
    match key.project() {
        Some(p) => PathBuf::from("projects").join(p).join(file),
        None => PathBuf::from(file),
    }
}

/// Validate the repo with `path` replaced by `content` (or removed when `None`).
fn check_with(repo: &Path, path: &str, content: Option<&str>) -> Result<DesiredState> {
    let mut files: Vec<SourceFile> = reconciler::read_dir(repo).with_context(|| format!("reading repo {}", repo.display()))?;
    files.retain(|f| f.path != path);
    if let Some(c) = content {
        files.push(SourceFile::new(path, c));
    }
    schema::check(&files).map_err(|d| {
        render::diagnostics(&d);
        CliError::Invalid(d.len())
    })
}

pub fn create(g: &Global, a: CreateArgs) -> Result {
    let kind: Kind = a.kind.parse().map_err(anyhow::Error::from)?;
    if kind.scope() == Scope::Project && a.project.is_none() {
        return Err(anyhow::anyhow!("{kind} is project-scoped: pass -p PROJECT").into());
    }
    if kind == Kind::McpToken {
        return crate::commands::tokens::create(g, a);
    }
    if !a.token.bind.is_empty() {
        bail!("--bind is for mcptokens (RbacDefinitions take --roleBindings)");
    }
    let mut spec = match &a.spec {
        Some(text) => {
            let docs = schema::document::parse(text).map_err(|e| anyhow::anyhow!("--spec {}: {}", e.pos, e.message))?;
            docs.first().map(|d| d.to_json()).unwrap_or(json!({}))
        }
        None => json!({}),
    };
    let flags = [("command", &a.command), ("packageName", &a.package), ("runner", &a.runner), ("url", &a.url), ("image", &a.image)];
    let obj = spec.as_object_mut().context("--spec must be a mapping")?;
    for (field, value) in flags {
        if let Some(v) = value {
            obj.insert(field.into(), Value::String(v.clone()));
        }
    }
    if !a.args.is_empty() {
        obj.insert("args".into(), json!(a.args));
    }
    if kind != Kind::Server && flags.iter().any(|(_, v)| v.is_some()) {
        bail!("--command/--package/--runner/--url/--image are for servers; use --spec for a {kind}");
    }
    if let Some(d) = &a.token.description {
        obj.insert("description".into(), Value::String(d.clone()));
    }
    crate::commands::rbac::definition_flags(kind, &a.rbac, obj)?;
    let key = ResourceKey::new(kind, a.project.as_deref(), &a.name);
    let rel = write_new(g, &key, spec, "", |_| Ok(()))?;
    render::ok_line(&format!("{key} created in {rel}"));
    Ok(())
}

/// Write a new resource file for `key` with `spec` (after `header`, e.g. comments), once the repo
/// with it is valid and `vet` accepts that state; nothing is written otherwise. Returns the
/// repo-relative path.
pub fn write_new(g: &Global, key: &ResourceKey, spec: Value, header: &str, vet: impl FnOnce(&DesiredState) -> Result) -> Result<String> {
    let mut metadata = json!({"name": key.name});
    if let Some(p) = key.project() {
        metadata["project"] = json!(p);
    }
    let doc = json!({"apiVersion": schema::API_VERSION, "kind": key.kind.as_str(), "metadata": metadata, "spec": spec});
    let rel = path_for(key);
    let rel_str = rel.to_string_lossy().replace('\\', "/");
    let full = g.repo.join(&rel);
    if full.exists() {
        bail!("{} already exists", full.display());
    }
    let text = format!("{header}{}", schema::emit::yaml_document(&doc));
    let state = check_with(&g.repo, &rel_str, Some(&text))?;
    vet(&state)?;
    std::fs::create_dir_all(full.parent().expect("path has a parent")).with_context(|| format!("creating {}", full.display()))?;
    std::fs::write(&full, &text).with_context(|| format!("writing {}", full.display()))?;
    Ok(rel_str)
}

/// Validate the repo with the file `rel` (repo-relative) holding `content`, then replace it (by
/// rename).
pub fn rewrite_checked(g: &Global, rel: &str, content: &str) -> Result {
    check_with(&g.repo, rel, Some(content))?;
    let full = g.repo.join(rel);
    let tmp = full.with_extension("mcpctl-tmp");
    std::fs::write(&tmp, content).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &full).with_context(|| format!("replacing {}", full.display()))?;
    Ok(())
}

/// The file defining a resource, and how many resources that file holds.
pub fn locate(g: &Global, a: &TargetArgs) -> Result<(String, usize)> {
    let kind: Kind = a.kind.parse().map_err(anyhow::Error::from)?;
    let files = reconciler::read_dir(&g.repo).with_context(|| format!("reading repo {}", g.repo.display()))?;
    let loaded = schema::load::load(&files);
    let matches: Vec<_> = loaded
        .resources
        .iter()
        .filter(|r| r.kind() == kind && r.name() == a.name && (a.project.is_none() || r.metadata.project == a.project))
        .collect();
    let res = match matches.as_slice() {
        [] => bail!("{kind} `{}` is not defined in {}", a.name, g.repo.display()),
        [one] => *one,
        _ => bail!("{kind} `{}` is defined in several projects; pass -p PROJECT", a.name),
    };
    let file = res.origin.as_ref().map(|o| o.file.to_string()).context("resource has no file")?;
    let count = loaded.resources.iter().filter(|r| r.origin.as_ref().is_some_and(|o| *o.file == *file)).count();
    Ok((file, count))
}

pub fn delete(g: &Global, a: TargetArgs) -> Result {
    let (file, count) = locate(g, &a)?;
    if count > 1 {
        bail!("{file} defines {count} resources; edit it to remove `{}` (mcpctl edit {} {})", a.name, a.kind, a.name);
    }
    check_with(&g.repo, &file, None)?;
    std::fs::remove_file(g.repo.join(&file)).with_context(|| format!("removing {file}"))?;
    render::ok_line(&format!("removed {file}"));
    Ok(())
}

pub fn edit(g: &Global, a: TargetArgs) -> Result {
    let (file, _) = locate(g, &a)?;
    let path = g.repo.join(&file);
    let before = std::fs::read(&path).with_context(|| format!("reading {file}"))?;
    let editor = std::env::var("VISUAL").or_else(|_| std::env::var("EDITOR")).unwrap_or_else(|_| "vi".into());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("mcpctl-edit")
        .arg(&path)
        .status()
        .with_context(|| format!("running {editor}"))?;
    if !status.success() {
        std::fs::write(&path, &before).context("restoring the file")?;
        bail!("{editor} exited with {status}; {file} left unchanged");
    }
    let after = std::fs::read_to_string(&path).unwrap_or_default();
    if let Err(e) = check_with(&g.repo, &file, Some(&after)) {
        std::fs::write(&path, &before).context("restoring the file")?;
        render::error_line(&format!("the edit made the repo invalid; {file} restored"));
        return Err(e);
    }
    render::ok_line(&format!("{file} saved"));
    Ok(())
}
