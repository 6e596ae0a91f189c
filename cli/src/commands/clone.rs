//! Resources made from others: `create project NEW --from OLD` (a project's files cloned) and
//! `create server NAME --from-template T --set key=value` (a Template instantiated, its declared
//! parameters checked). Like every `create`, the whole repo is validated with the new files
//! first; an invalid result, or a file already there, writes nothing.
//!
//! # What a project clone copies
//! The Project's spec (servers stay references by name: they are not copied), and with
//! `--with-prompts` its project-scope Prompts; with `--with-agents` its Agents, their
//! Personalities and the agent- and personality-scope Prompts. `metadata.project` is renamed.
//! McpTokens are never copied (a token is a credential of one project), nor RbacDefinitions or
//! project Secrets: grant access to the new project anew.

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::{json, Value};

use schema::spec::PromptScope;
use schema::{Kind, Resource, ResourceKey, SourceFile, Spec};

use super::Result;
use crate::args::{CreateArgs, Global};
use crate::{render, CliError};

/// A problem with the request itself (nothing was read wrong; nothing is written).
#[derive(Debug, thiserror::Error)]
pub enum CloneError {
    #[error("project `{0}` is not defined in the repo")]
    NoProject(String),
    #[error("project `{0}` already exists")]
    Exists(String),
    #[error("{0} already exists")]
    FileExists(String),
    #[error("--from is for projects and --from-template for servers (got a {0})")]
    WrongKind(Kind),
    #[error("template `{0}` is not defined in the repo")]
    NoTemplate(String),
    #[error("--set `{0}`: expected key=value")]
    BadSet(String),
    #[error("template `{template}` has no parameter `{key}` (it declares: {declared})")]
    UnknownParameter { template: String, key: String, declared: String },
    #[error("template `{template}` needs --set {key}=… (required, no default)")]
    MissingParameter { template: String, key: String },
    #[error("--with-prompts and --with-agents are for --from, --set for --from-template")]
    StrayFlags,
}

impl From<CloneError> for CliError {
    fn from(e: CloneError) -> Self {
        CliError::Other(e.into())
    }
}

fn load(g: &Global) -> Result<(Vec<SourceFile>, Vec<Resource>)> {
    let files = reconciler::read_dir(&g.repo).with_context(|| format!("reading repo {}", g.repo.display()))?;
    let loaded = schema::load::load(&files);
    Ok((files, loaded.resources))
}

/// A resource document renamed into `project` (or renamed, for a cluster resource).
fn renamed(res: &Resource, name: &str, project: Option<&str>) -> Value {
    let mut doc = res.to_json();
    doc["metadata"]["name"] = json!(name);
    match project {
        Some(p) => doc["metadata"]["project"] = json!(p),
        None => {
            if let Some(m) = doc["metadata"].as_object_mut() {
                m.remove("project");
            }
        }
    }
    doc
}

/// Validate the repo with `new` files added, then write them; each path must be new.
fn write_all(g: &Global, mut files: Vec<SourceFile>, new: Vec<(ResourceKey, Value)>) -> Result {
    let mut out = Vec::new();
    for (key, doc) in new {
        let rel = crate::authoring::path_for(&key).to_string_lossy().replace('\\', "/");
        if g.repo.join(&rel).exists() || files.iter().any(|f| f.path == rel) {
            return Err(CloneError::FileExists(rel).into());
        }
        let text = schema::emit::yaml_document(&doc);
        files.push(SourceFile::new(&rel, text.as_str()));
        out.push((key, rel, text));
    }
    schema::check(&files).map(drop).map_err(|d| {
        render::diagnostics(&d);
        CliError::Invalid(d.len())
    })?;
    for (key, rel, text) in out {
        let full = g.repo.join(&rel);
        std::fs::create_dir_all(full.parent().expect("path has a parent")).with_context(|| format!("creating {}", full.display()))?;
        std::fs::write(&full, &text).with_context(|| format!("writing {}", full.display()))?;
        render::ok_line(&format!("{key} created in {rel}"));
    }
    Ok(())
}

/// `create project NEW --from OLD [--with-prompts] [--with-agents]`.
pub(super) fn project(g: &Global, a: &CreateArgs, from: &str) -> Result {
    let (files, all) = load(g)?;
    let find = |name: &str| all.iter().find(|r| r.kind() == Kind::Project && r.name() == name);
    let old = find(from).ok_or_else(|| CloneError::NoProject(from.to_owned()))?;
    if find(&a.name).is_some() {
        return Err(CloneError::Exists(a.name.clone()).into());
    }
    let mut new = vec![(ResourceKey::new(Kind::Project, None, &a.name), renamed(old, &a.name, None))];
    for r in all.iter().filter(|r| r.metadata.project.as_deref() == Some(from)) {
        let take = match &r.spec {
            Spec::Prompt(p) if p.scope == PromptScope::Project => a.with_prompts,
            Spec::Prompt(_) => a.with_agents,
            Spec::Agent(_) | Spec::Personality(_) => a.with_agents,
            _ => false,
        };
        if take {
            new.push((ResourceKey::new(r.kind(), Some(&a.name), r.name()), renamed(r, r.name(), Some(&a.name))));
        }
    }
    write_all(g, files, new)
}

/// `create server NAME --from-template T --set key=value…`.
pub(super) fn server(g: &Global, a: &CreateArgs, template: &str) -> Result {
    let (files, all) = load(g)?;
    let t = all
        .iter()
        .find_map(|r| match &r.spec {
            Spec::Template(t) if r.name() == template => Some(t),
            _ => None,
        })
        .ok_or_else(|| CloneError::NoTemplate(template.to_owned()))?;
    let mut values = BTreeMap::new();
    for s in &a.set {
        let (k, v) = s.split_once('=').ok_or_else(|| CloneError::BadSet(s.clone()))?;
        if !t.parameters.iter().any(|p| p.name == k) {
            let declared = t.parameters.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ");
            return Err(CloneError::UnknownParameter { template: template.into(), key: k.into(), declared }.into());
        }
        values.insert(k.to_owned(), v.to_owned());
    }
    if let Some(p) = t.parameters.iter().find(|p| p.required && p.default.is_none() && !values.contains_key(&p.name)) {
        return Err(CloneError::MissingParameter { template: template.into(), key: p.name.clone() }.into());
    }
    let mut metadata = json!({"name": a.name});
    if let Some(p) = &a.project {
        metadata["project"] = json!(p);
    }
    let mut instance = json!({"name": template});
    if !values.is_empty() {
        instance["parameters"] = json!(values);
    }
    let doc = json!({"apiVersion": schema::API_VERSION, "kind": "Server", "metadata": metadata, "spec": {"fromTemplate": instance}});
    write_all(g, files, vec![(ResourceKey::new(Kind::Server, a.project.as_deref(), &a.name), doc)])
}

/// `create`: a clone, an instance of a template, or (otherwise) a resource from flags.
pub(super) fn create(g: &Global, a: CreateArgs) -> Result {
    let kind: Kind = a.kind.parse().map_err(anyhow::Error::from)?;
    if let Some(from) = a.from.clone() {
        if kind != Kind::Project {
            return Err(CloneError::WrongKind(kind).into());
        }
        return project(g, &a, &from);
    }
    if let Some(t) = a.from_template.clone() {
        if kind != Kind::Server {
            return Err(CloneError::WrongKind(kind).into());
        }
        return server(g, &a, &t);
    }
    if a.with_prompts || a.with_agents || !a.set.is_empty() {
        return Err(CloneError::StrayFlags.into());
    }
    crate::authoring::create(g, a)
}
