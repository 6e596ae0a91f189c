//! `mcpctl rbac can-i` and `who-can`: the RBAC engine asked about the repo's desired state; and
//! the `--subject`/`--roleBindings` flags of `create rbac`.

use std::io::Write;

use anyhow::Context;
use serde_json::{json, Map, Value};

use schema::rbac::{self, Request, SubjectRef};
use schema::spec::{Role, SubjectKind};
use schema::Kind;

use super::Result;
use crate::args::*;
use crate::CliError;

/// What is wrong with a `can-i`/`who-can` question.
#[derive(Debug, thiserror::Error)]
pub enum AccessQueryError {
    #[error("unknown verb `{0}`; verbs are view, edit, create, delete, run")]
    Verb(String),
    #[error("unknown resource `{0}` (use a plural kind such as `servers`, or `action NAME`){1}")]
    Resource(String, String),
    #[error("`action` needs its name, e.g. `run action logs`; actions: {}", rbac::ACTIONS.join(", "))]
    NoAction,
    #[error("actions are run: `run action {0}`")]
    ActionVerb(String),
    #[error("McpToken subject `{0}` needs its project: -p PROJECT or `McpToken:PROJECT/{0}`")]
    TokenProject(String),
    #[error("--subject/--roleBindings are for rbacdefinitions")]
    NotDefinition,
}

impl From<AccessQueryError> for CliError {
    fn from(e: AccessQueryError) -> Self {
        CliError::Other(e.into())
    }
}

/// `create rbac NAME --subject … --roleBindings …`: put them into the spec being written.
pub(crate) fn definition_flags(kind: Kind, r: &RbacCreateArgs, spec: &mut Map<String, Value>) -> Result {
    if r.subjects.is_empty() && r.role_bindings.is_empty() {
        return Ok(());
    }
    if kind != Kind::RbacDefinition {
        return Err(AccessQueryError::NotDefinition.into());
    }
    if !r.subjects.is_empty() {
        spec.insert("subjects".into(), serde_json::to_value(&r.subjects).context("subjects")?);
    }
    if !r.role_bindings.is_empty() {
        spec.insert("roleBindings".into(), serde_json::to_value(&r.role_bindings).context("roleBindings")?);
    }
    Ok(())
}

fn role(verb: &str) -> std::result::Result<Role, AccessQueryError> {
    serde_json::from_value(json!(verb)).map_err(|_| AccessQueryError::Verb(verb.into()))
}

/// The engine's request for `VERB RESOURCE [NAME]`.
fn request(q: &AccessQuery) -> std::result::Result<Request<'_>, AccessQueryError> {
    let role = role(&q.verb)?;
    if q.resource == "action" {
        let a = q.name.as_deref().ok_or(AccessQueryError::NoAction)?;
        if role != Role::Run {
            return Err(AccessQueryError::ActionVerb(a.into()));
        }
        return Ok(Request::Action(a));
    }
    let kind =
        Kind::ALL.iter().copied().find(|k| k.plural() == q.resource || Kind::parse_any(&q.resource) == Some(*k)).ok_or_else(|| {
            AccessQueryError::Resource(q.resource.clone(), schema::did_you_mean(&q.resource, Kind::ALL.iter().map(|k| k.plural())))
        })?;
    Ok(Request::Resource { role, kind, name: q.name.as_deref() })
}

/// `mcpctl rbac can-i VERB RESOURCE [NAME] --as SUBJECT [-p PROJECT]`: yes (exit 0) or no (exit 1).
pub(super) fn can_i(g: &Global, a: CanIArgs) -> Result {
    let state = super::load_repo(&g.repo)?;
    let req = request(&a.query)?;
    let s = &a.subject;
    let project = a.query.project.as_deref();
    let subject = match s.kind {
        SubjectKind::User => SubjectRef::User(&s.name),
        SubjectKind::Group => SubjectRef::Group(&s.name),
        SubjectKind::McpToken => {
            let tp = s.project.as_deref().or(project).ok_or_else(|| AccessQueryError::TokenProject(s.name.clone()))?;
            SubjectRef::McpToken { name: &s.name, project: tp }
        }
    };
    let yes = rbac::can(&state, subject, project, req);
    writeln!(anstream::stdout(), "{}", if yes { "yes" } else { "no" }).context("writing output")?;
    if yes {
        Ok(())
    } else {
        Err(CliError::Failed(1))
    }
}

/// `mcpctl rbac who-can VERB RESOURCE [NAME] [-p PROJECT]`: `Kind:name` per line (tokens
/// `McpToken:project/name`), or a JSON list.
pub(super) fn who_can(g: &Global, a: WhoCanArgs) -> Result {
    let state = super::load_repo(&g.repo)?;
    let req = request(&a.query)?;
    let subjects = rbac::who_can(&state, a.query.project.as_deref(), req);
    let mut out = anstream::stdout();
    match a.output {
        TextOrJson::Json => {
            let list: Vec<Value> = subjects.iter().map(|(k, n)| json!({"kind": k, "name": n})).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&list).expect("json"))
        }
        TextOrJson::Text if subjects.is_empty() => writeln!(out, "nobody"),
        TextOrJson::Text => subjects.iter().try_for_each(|(k, n)| writeln!(out, "{k:?}:{n}")),
    }
    .context("writing output")?;
    Ok(())
}
