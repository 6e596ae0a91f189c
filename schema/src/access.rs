//! Access changes between two desired states (a pull request's base and head): each subject's
//! effective permission gains and losses, the escalations among them, and the servers each
//! project gains or loses. Pure; `mcpctl plan --base` renders it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::desired::DesiredState;
use crate::kind::Kind;
use crate::rbac::{self, binding_syntax, SubjectRef};
use crate::resource::{Resource, Spec};
use crate::spec::{McpTokenSpec, Role, RoleBinding};

/// One permission: a binding and the project it applies in (`None`: everywhere).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Grant {
    /// In the CLI's binding syntax (`role:edit,resource:servers`).
    pub binding: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.project {
            Some(p) => write!(f, "`{}` in {p}", self.binding),
            None => write!(f, "`{}` everywhere", self.binding),
        }
    }
}

/// How one subject's access changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubjectChange {
    /// `User:alice`, `Group:admins`, `McpToken:homelab/claude-desktop`.
    pub subject: String,
    pub gains: Vec<Grant>,
    pub losses: Vec<Grant>,
    /// Why this change deserves a reviewer's attention; empty when it does not.
    pub escalations: Vec<String>,
}

/// Servers a project starts or stops exposing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SurfaceChange {
    pub project: String,
    pub added_servers: Vec<String>,
    pub removed_servers: Vec<String>,
}

/// Everything the review shows about access.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccessDiff {
    pub subjects: Vec<SubjectChange>,
    pub surfaces: Vec<SurfaceChange>,
}

impl AccessDiff {
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty() && self.surfaces.is_empty()
    }

    /// Whether any change is flagged.
    pub fn escalates(&self) -> bool {
        self.subjects.iter().any(|s| !s.escalations.is_empty())
    }
}

fn grants(state: &DesiredState, subject: SubjectRef<'_>) -> BTreeSet<Grant> {
    rbac::effective_bindings(state, subject)
        .into_iter()
        .map(|e| Grant { binding: binding_syntax(&e.binding), project: e.project })
        .collect()
}

/// Why a gained binding is risky, if it is.
fn risky(b: &RoleBinding) -> Option<&'static str> {
    if b.resource.as_deref() == Some("*") {
        Some("a wildcard (`resource: *`)")
    } else if b.role == Role::Delete {
        Some("`delete`")
    } else if b.action.as_deref() == Some("reveal-secrets") {
        Some("`reveal-secrets`")
    } else if b.name.is_none() && matches!(b.role, Role::Edit | Role::Create) {
        Some("write access to a whole kind (no `name`)")
    } else {
        None
    }
}

fn subjects(state: &DesiredState) -> BTreeSet<(u8, String, String)> {
    let mut out = BTreeSet::new();
    out.extend(state.of_kind(Kind::User).map(|r| (0, r.name().to_string(), String::new())));
    out.extend(state.of_kind(Kind::Group).map(|r| (1, r.name().to_string(), String::new())));
    out.extend(state.of_kind(Kind::McpToken).map(|r| (2, r.name().to_string(), r.metadata.project.clone().unwrap_or_default())));
    out
}

fn subject_ref<'a>(s: &'a (u8, String, String)) -> SubjectRef<'a> {
    match s.0 {
        0 => SubjectRef::User(&s.1),
        1 => SubjectRef::Group(&s.1),
        _ => SubjectRef::McpToken { name: &s.1, project: &s.2 },
    }
}

fn token<'s>(state: &'s DesiredState, name: &str, project: &str) -> Option<(&'s Resource, &'s McpTokenSpec)> {
    let r = state.get(&crate::resource::ResourceKey::new(Kind::McpToken, Some(project), name))?;
    match &r.spec {
        Spec::McpToken(t) => Some((r, t)),
        _ => None,
    }
}

fn members(state: &DesiredState) -> BTreeMap<&str, BTreeSet<&str>> {
    state
        .of_kind(Kind::Group)
        .filter_map(|g| match &g.spec {
            Spec::Group(gs) => Some((g.name(), gs.members.iter().map(String::as_str).collect())),
            _ => None,
        })
        .collect()
}

/// The access changes from `base` to `head`.
pub fn diff(base: &DesiredState, head: &DesiredState) -> AccessDiff {
    let mut out = AccessDiff::default();
    let (base_members, head_members) = (members(base), members(head));
    let all: BTreeSet<_> = subjects(base).into_iter().chain(subjects(head)).collect();
    for s in &all {
        let subject = subject_ref(s);
        let (before, after) = (grants(base, subject), grants(head, subject));
        let gains: Vec<Grant> = after.difference(&before).cloned().collect();
        let losses: Vec<Grant> = before.difference(&after).cloned().collect();
        let mut flags = Vec::new();
        if let SubjectRef::McpToken { name, project } = subject {
            let (old, new) = (token(base, name, project), token(head, name, project));
            if let (None, Some((res, t))) = (old, new) {
                let by = t
                    .created_by
                    .as_deref()
                    .map_or_else(|| "no `createdBy`: nothing bounds it".to_string(), |c| format!("created by User:{c}"));
                flags.push(format!("a new token ({by})"));
                let over = crate::ceiling::escalations(head, res);
                for (_, b) in over {
                    flags.push(format!("`{}` exceeds its creator's permissions", binding_syntax(b)));
                }
            }
            if let (Some((_, o)), Some((_, n))) = (old, new) {
                let longer = match (o.expires_at, n.expires_at) {
                    (Some(_), None) => Some("no longer expires".to_string()),
                    (Some(a), Some(b)) if b > a => {
                        Some(format!("expiry moved later ({} → {})", a.format("%Y-%m-%d"), b.format("%Y-%m-%d")))
                    }
                    _ => None,
                };
                flags.extend(longer.filter(|_| !n.revoked));
                if o.revoked && !n.revoked {
                    flags.push("un-revoked".into());
                }
            }
        }
        if let SubjectRef::User(u) = subject {
            for (g, m) in &head_members {
                let joined = m.contains(u) && !base_members.get(g).is_some_and(|b| b.contains(u));
                let group_grants = grants(head, SubjectRef::Group(g));
                if joined && gains.iter().any(|x| group_grants.contains(x)) {
                    flags.push(format!("joins Group:{g}, gaining its permissions"));
                }
            }
        }
        if !gains.is_empty() {
            let new: Vec<RoleBinding> = rbac::effective_bindings(head, subject)
                .into_iter()
                .filter(|e| gains.iter().any(|g| g.binding == binding_syntax(&e.binding) && g.project == e.project))
                .map(|e| e.binding)
                .collect();
            let mut why: Vec<&str> = new.iter().filter_map(risky).collect();
            why.sort_unstable();
            why.dedup();
            flags.extend(why.into_iter().map(|w| format!("gains {w}")));
        }
        if gains.is_empty() && losses.is_empty() && flags.is_empty() {
            continue;
        }
        out.subjects.push(SubjectChange { subject: subject.to_string(), gains, losses, escalations: flags });
    }
    let servers = |state: &DesiredState| -> BTreeMap<String, BTreeSet<String>> {
        state
            .of_kind(Kind::Project)
            .filter_map(|p| match &p.spec {
                Spec::Project(ps) => Some((p.name().to_string(), ps.servers.iter().cloned().collect())),
                _ => None,
            })
            .collect()
    };
    let (b, h) = (servers(base), servers(head));
    let projects: BTreeSet<&String> = b.keys().chain(h.keys()).collect();
    let empty = BTreeSet::new();
    for p in projects {
        let (old, new) = (b.get(p).unwrap_or(&empty), h.get(p).unwrap_or(&empty));
        let added: Vec<String> = new.difference(old).cloned().collect();
        let removed: Vec<String> = old.difference(new).cloned().collect();
        if !added.is_empty() || !removed.is_empty() {
            out.surfaces.push(SurfaceChange { project: p.clone(), added_servers: added, removed_servers: removed });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::SourceFile;

    fn state(extra: &str) -> DesiredState {
        let base = crate::rbac::tests::ACCESS_YAML;
        crate::check(&[SourceFile::new("a.yaml", format!("{base}{extra}"))]).unwrap_or_else(|d| panic!("{d}"))
    }

    #[test]
    fn a_user_joining_an_admin_group_is_flagged() {
        let base = state("");
        let head_yaml = crate::rbac::tests::ACCESS_YAML.replace("spec: {members: [alice, carol]}", "spec: {members: [alice, bob, carol]}");
        let head = crate::check(&[SourceFile::new("a.yaml", head_yaml)]).unwrap();
        let d = diff(&base, &head);
        let names: Vec<&str> = d.subjects.iter().map(|s| s.subject.as_str()).collect();
        // bob's token lives in `work`: admins' global grants reach it there too.
        assert_eq!(names, ["User:bob", "McpToken:work/bobs"], "{d:#?}");
        let bob = &d.subjects[0];
        assert_eq!(
            bob.gains.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["`action:logs` everywhere", "`role:edit,resource:*` everywhere"]
        );
        assert!(bob.losses.is_empty());
        assert_eq!(bob.escalations, ["joins Group:admins, gaining its permissions", "gains a wildcard (`resource: *`)"]);
        assert!(diff(&head, &head).is_empty());
    }

    #[test]
    fn a_new_token_and_a_longer_expiry_are_flagged() {
        let base = state("");
        let head = state(
            r#"---
apiVersion: mcpctl.io/v1
kind: McpToken
metadata: {name: ci, project: lab}
spec:
  hash: "sha256:0000000000000000000000000000000000000000000000000000000000000009"
  prefix: mcpctl_pat_z
  createdBy: bob
  bindings: [{role: edit, resource: servers}]
"#,
        );
        let d = diff(&base, &head);
        assert_eq!(d.subjects.len(), 1, "{d:#?}");
        assert_eq!(d.subjects[0].subject, "McpToken:lab/ci");
        assert_eq!(
            d.subjects[0].escalations,
            [
                "a new token (created by User:bob)",
                "`role:edit,resource:servers` exceeds its creator's permissions",
                "gains write access to a whole kind (no `name`)"
            ]
        );
        let later = crate::rbac::tests::ACCESS_YAML
            .replace("  prefix: mcpctl_pat_b\n", "  prefix: mcpctl_pat_b\n  expiresAt: 2030-01-01T00:00:00Z\n");
        let earlier = crate::rbac::tests::ACCESS_YAML
            .replace("  prefix: mcpctl_pat_b\n", "  prefix: mcpctl_pat_b\n  expiresAt: 2027-01-01T00:00:00Z\n");
        let (e, l) =
            (crate::check(&[SourceFile::new("a.yaml", earlier)]).unwrap(), crate::check(&[SourceFile::new("a.yaml", later)]).unwrap());
        let d = diff(&e, &l);
        assert_eq!(d.subjects[0].escalations, ["expiry moved later (2027-01-01 → 2030-01-01)"]);
        assert!(diff(&l, &e).is_empty(), "a shorter expiry changes no permission and is no escalation");
        let d = diff(&e, &base);
        assert_eq!(d.subjects[0].escalations, ["no longer expires"]);
    }

    #[test]
    fn servers_leaving_a_project_are_listed() {
        let base = state("");
        let head = crate::check(&[SourceFile::new(
            "a.yaml",
            crate::rbac::tests::ACCESS_YAML.replace("spec: {servers: [time, ha]}", "spec: {servers: [time]}"),
        )])
        .unwrap();
        let d = diff(&base, &head);
        assert_eq!(d.surfaces, [SurfaceChange { project: "lab".into(), added_servers: vec![], removed_servers: vec!["ha".into()] }]);
    }
}
