//! RBAC evaluation: which bindings apply to a subject, and whether they allow a request. Pure.

use crate::desired::DesiredState;
use crate::kind::Kind;
use crate::resource::{Resource, Spec};
use crate::spec::{Role, RoleBinding, SubjectKind};

/// Named operations a `{role: run, action}` binding may grant.
pub const ACTIONS: &[&str] = &["chat", "logs", "audit", "reconcile", "migrate-secrets", "reveal-secrets"];

/// What is being asked.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// A role on a resource (`name = None`: the whole kind, e.g. listing).
    Resource { role: Role, kind: Kind, name: Option<&'a str> },
    /// A named action.
    Action(&'a str),
}

fn role_grants(granted: Role, wanted: Role) -> bool {
    granted == wanted || wanted == Role::View
}

/// Whether one binding allows the request. `edit`, `create`, `delete` and `run` imply `view`.
pub fn binding_allows(b: &RoleBinding, req: Request<'_>) -> bool {
    match req {
        Request::Action(a) => b.role == Role::Run && b.action.as_deref() == Some(a),
        Request::Resource { role, kind, name } => {
            let Some(res) = b.resource.as_deref() else { return false };
            (res == "*" || res == kind.plural())
                && role_grants(b.role, role)
                && match (&b.name, name) {
                    (None, _) => true,
                    (Some(bn), Some(n)) => bn == n,
                    (Some(_), None) => false,
                }
        }
    }
}

/// Whether any binding allows the request.
pub fn allows(bindings: &[RoleBinding], req: Request<'_>) -> bool {
    bindings.iter().any(|b| binding_allows(b, req))
}

/// Every binding that applies to an McpToken: its own, plus those of `RbacDefinition`s naming the
/// token, its user, or a group its user belongs to. A disabled user gets nothing.
pub fn token_bindings(state: &DesiredState, token: &Resource) -> Vec<RoleBinding> {
    let Spec::McpToken(t) = &token.spec else { return Vec::new() };
    let project = token.metadata.project.as_deref();
    let user = t.user.as_deref();
    if let Some(u) = user {
        if matches!(state.resolve(Kind::User, u, None), Some(Resource { spec: Spec::User(us), .. }) if us.disabled) {
            return Vec::new();
        }
    }
    let groups: Vec<&str> = match user {
        Some(u) => state
            .of_kind(Kind::Group)
            .filter(|g| matches!(&g.spec, Spec::Group(gs) if gs.members.iter().any(|m| m == u)))
            .map(Resource::name)
            .collect(),
        None => Vec::new(),
    };
    let mut out = t.bindings.clone();
    for def in state.of_kind(Kind::RbacDefinition) {
        let Spec::RbacDefinition(d) = &def.spec else { continue };
        let def_project = def.metadata.project.as_deref();
        let applies = d.subjects.iter().any(|s| match s.kind {
            SubjectKind::McpToken => s.name == token.name() && s.project.as_deref().or(def_project) == project,
            SubjectKind::User => Some(s.name.as_str()) == user,
            SubjectKind::Group => groups.contains(&s.name.as_str()),
        });
        // A definition inside another project grants nothing here.
        if applies && (def_project.is_none() || def_project == project) {
            out.extend(d.role_bindings.iter().cloned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rb(role: Role, resource: Option<&str>, name: Option<&str>, action: Option<&str>) -> RoleBinding {
        RoleBinding { role, resource: resource.map(Into::into), name: name.map(Into::into), action: action.map(Into::into) }
    }

    #[test]
    fn roles_and_names() {
        let b = [rb(Role::Run, Some("servers"), Some("time"), None)];
        let call = |n| Request::Resource { role: Role::Run, kind: Kind::Server, name: Some(n) };
        assert!(allows(&b, call("time")));
        assert!(!allows(&b, call("other")));
        assert!(allows(&b, Request::Resource { role: Role::View, kind: Kind::Server, name: Some("time") }));
        assert!(!allows(&b, Request::Resource { role: Role::Edit, kind: Kind::Server, name: Some("time") }));
        assert!(!allows(&b, Request::Resource { role: Role::View, kind: Kind::Server, name: None }));
        let all = [rb(Role::View, Some("*"), None, None)];
        assert!(allows(&all, Request::Resource { role: Role::View, kind: Kind::Agent, name: None }));
        assert!(!allows(&all, Request::Resource { role: Role::Run, kind: Kind::Agent, name: Some("a") }));
        let act = [rb(Role::Run, None, None, Some("chat"))];
        assert!(allows(&act, Request::Action("chat")));
        assert!(!allows(&act, Request::Action("logs")));
    }
}
