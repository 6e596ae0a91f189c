//! The creator ceiling: an McpToken's own bindings must lie within the effective permissions of
//! the `User` who minted it (`spec.createdBy`) in the token's project. Checked by
//! `mcpctl validate` and `mcpctl create mcptoken`, each escalation reported at the binding that
//! exceeds the ceiling.
//!
//! # Caveats
//! - Not part of [`crate::check`], so not of a deploy: lowering a user's rights or disabling a
//!   user must not make the repo undeployable (that commit is exactly the one to let through);
//!   `mcpctl validate` in CI then names the tokens to revoke.
//! - Tokens without `createdBy` (written by hand) and revoked tokens are not checked; the PR
//!   review (`mcpctl plan --base`) flags a new token without a creator.
//! - Grants of `RbacDefinition`s naming a token are not bounded by its creator.

use crate::desired::DesiredState;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::document::{Pos, Seg};
use crate::kind::Kind;
use crate::rbac::{self, binding_syntax, SubjectRef};
use crate::resource::{Resource, Spec};
use crate::spec::{RoleBinding, UserSpec};

/// The bindings `creator` holds in `project`: what a token it mints there may be given
/// (`--rbac clone` copies them).
pub fn ceiling_of(state: &DesiredState, creator: &str, project: &str) -> Vec<RoleBinding> {
    let mut out: Vec<RoleBinding> = rbac::effective_bindings(state, SubjectRef::User(creator))
        .into_iter()
        .filter(|e| e.applies_in(Some(project)))
        .map(|e| e.binding)
        .collect();
    let mut seen = Vec::new();
    out.retain(|b| {
        let new = !seen.contains(b);
        if new {
            seen.push(b.clone());
        }
        new
    });
    out
}

/// The token's own bindings that exceed its creator's ceiling, by index (none for a token
/// without `createdBy`, a revoked one, or another kind).
pub fn escalations<'r>(state: &DesiredState, token: &'r Resource) -> Vec<(usize, &'r RoleBinding)> {
    let Spec::McpToken(t) = &token.spec else { return Vec::new() };
    let (Some(creator), false) = (t.created_by.as_deref(), t.revoked) else { return Vec::new() };
    let ceiling = ceiling_of(state, creator, token.metadata.project.as_deref().unwrap_or_default());
    t.bindings.iter().enumerate().filter(|(_, b)| !rbac::covers(&ceiling, b)).collect()
}

/// Every escalation of the repo, one diagnostic per binding, at its position.
///
/// # Errors
/// The escalations, sorted by file and position.
pub fn check(state: &DesiredState) -> Result<(), Diagnostics> {
    let mut diags = Vec::new();
    for token in state.of_kind(Kind::McpToken) {
        let Spec::McpToken(t) = &token.spec else { continue };
        let creator = t.created_by.as_deref().unwrap_or_default();
        let project = token.metadata.project.as_deref().unwrap_or_default();
        let disabled =
            matches!(state.resolve(Kind::User, creator, None), Some(Resource { spec: Spec::User(UserSpec { disabled: true, .. }), .. }));
        for (i, b) in escalations(state, token) {
            let pos = token
                .origin
                .as_ref()
                .map_or_else(Pos::default, |o| o.pos_segs(&[Seg::Key("spec".into()), Seg::Key("bindings".into()), Seg::Index(i)]));
            let file = token.origin.as_ref().map_or_else(|| "<store>".into(), |o| o.file.clone());
            let why = if disabled {
                format!(
                    "User `{creator}` is disabled and holds nothing; revoke the token (`mcpctl revoke mcptoken {} -p {project}`)",
                    token.name()
                )
            } else {
                format!("User `{creator}` (spec.createdBy) does not hold it in project `{project}`")
            };
            let msg = format!("spec.bindings[{i}] `{}` exceeds its creator's permissions: {why}", binding_syntax(b));
            diags.push(Diagnostic::new(&file, pos, Some(token.key().to_string()), msg));
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics::sorted(diags))
    }
}

#[cfg(test)]
mod tests {
    use crate::load::SourceFile;

    const REPO: &str = r#"apiVersion: mcpctl.io/v1
kind: Project
metadata: {name: lab}
spec: {}
---
apiVersion: mcpctl.io/v1
kind: User
metadata: {name: alice}
spec: {}
---
apiVersion: mcpctl.io/v1
kind: RbacDefinition
metadata: {name: alice-lab, project: lab}
spec:
  subjects: [{kind: User, name: alice}]
  roleBindings: [{role: view, resource: servers}, {role: run, resource: servers, name: time}]
---
apiVersion: mcpctl.io/v1
kind: McpToken
metadata: {name: t, project: lab}
spec:
  hash: "sha256:0000000000000000000000000000000000000000000000000000000000000001"
  prefix: mcpctl_pat_x
  createdBy: alice
  bindings:
    - {role: run, resource: servers, name: time}
    - {role: edit, resource: servers}
"#;

    #[test]
    fn an_escalation_is_refused_at_the_binding_that_exceeds() {
        let state = crate::check(&[SourceFile::new("tokens.yaml", REPO)]).unwrap_or_else(|d| panic!("{d}"));
        let err = super::check(&state).expect_err("edit on servers exceeds alice").to_string();
        assert_eq!(
            err.trim(),
            "tokens.yaml:27:7: McpToken/lab/t: spec.bindings[1] `role:edit,resource:servers` exceeds its creator's permissions: User `alice` (spec.createdBy) does not hold it in project `lab`"
        );
        // Within the ceiling: fine. Revoked: not checked.
        let within = REPO.replace("    - {role: edit, resource: servers}\n", "");
        let state = crate::check(&[SourceFile::new("tokens.yaml", within)]).unwrap();
        assert!(super::check(&state).is_ok());
        let revoked = REPO.replace("  createdBy: alice\n", "  createdBy: alice\n  revoked: true\n");
        let state = crate::check(&[SourceFile::new("tokens.yaml", revoked)]).unwrap();
        assert!(super::check(&state).is_ok());
        // A disabled creator holds nothing: every binding is named, with the way out.
        let disabled = REPO.replace("metadata: {name: alice}\nspec: {}", "metadata: {name: alice}\nspec: {disabled: true}");
        let state = crate::check(&[SourceFile::new("tokens.yaml", disabled)]).unwrap();
        let err = super::check(&state).unwrap_err();
        assert_eq!(err.len(), 2);
        assert!(err.to_string().contains("revoke the token (`mcpctl revoke mcptoken t -p lab`)"), "{err}");
    }
}
