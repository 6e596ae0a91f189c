//! RBAC evaluation: which bindings apply to a subject (user, group or token) and in which
//! project, whether they allow a request, who is allowed one, whether a binding lies within a set
//! of others, and the one-line binding syntax of the CLI. Pure.
//!
//! # The model
//! - A subject gets the `roleBindings` of every `RbacDefinition` naming it; a user also those of
//!   the definitions naming a group it is a member of; a token also those of its `user` (and its
//!   groups), plus its own `spec.bindings`.
//! - A definition inside a project (`metadata.project`) grants only in that project; a global one
//!   grants everywhere. A token acts only in its own project: nothing it gets applies elsewhere.
//! - A disabled user gets nothing, and neither do its tokens; a revoked token gets nothing.
//!   Expiry is a matter of the clock, not of the state: the gateway checks it on each request.

use std::fmt;

use crate::desired::DesiredState;
use crate::hint::did_you_mean;
use crate::kind::Kind;
use crate::resource::{Resource, ResourceKey, Spec};
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

/// Who is asking. A token is known by its name and its project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectRef<'a> {
    User(&'a str),
    Group(&'a str),
    McpToken { name: &'a str, project: &'a str },
}

impl SubjectRef<'_> {
    pub fn kind(&self) -> SubjectKind {
        match self {
            SubjectRef::User(_) => SubjectKind::User,
            SubjectRef::Group(_) => SubjectKind::Group,
            SubjectRef::McpToken { .. } => SubjectKind::McpToken,
        }
    }
}

/// `User:alice`, `Group:admins`, `McpToken:homelab/claude-desktop`.
impl fmt::Display for SubjectRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectRef::User(n) => write!(f, "User:{n}"),
            SubjectRef::Group(n) => write!(f, "Group:{n}"),
            SubjectRef::McpToken { name, project } => write!(f, "McpToken:{project}/{name}"),
        }
    }
}

/// A binding a subject holds, with where it applies and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveBinding {
    pub binding: RoleBinding,
    /// The only project it applies in; `None`: every project and the global resources.
    pub project: Option<String>,
    /// The `RbacDefinition` granting it; `None` for a token's own `spec.bindings`.
    pub definition: Option<ResourceKey>,
    /// The group through which a user (or a token's user) holds it, if any.
    pub group: Option<String>,
}

impl EffectiveBinding {
    /// Whether it applies to a request in `project` (`None`: a global resource or action).
    pub fn applies_in(&self, project: Option<&str>) -> bool {
        self.project.is_none() || self.project.as_deref() == project
    }
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

/// Whether `b` lies within `ceiling`: some single binding of the ceiling allows everything `b`
/// allows (same action; or the same or a wildcard resource, the same role or `b` only viewing,
/// and no name or the same name).
///
/// # Caveats
/// Bindings are compared one by one: `{view, *}` is not covered by a `view` binding on every
/// kind listed separately (a wildcard also covers kinds added later).
pub fn covers(ceiling: &[RoleBinding], b: &RoleBinding) -> bool {
    ceiling.iter().any(|c| binding_covers(c, b))
}

fn binding_covers(c: &RoleBinding, b: &RoleBinding) -> bool {
    match (&b.action, &b.resource) {
        (Some(a), _) => c.role == Role::Run && c.action.as_deref() == Some(a.as_str()),
        (None, Some(r)) => {
            let Some(cr) = c.resource.as_deref() else { return false };
            (cr == "*" || cr == r)
                && role_grants(c.role, b.role)
                && match (&c.name, &b.name) {
                    (None, _) => true,
                    (Some(cn), Some(bn)) => cn == bn,
                    (Some(_), None) => false,
                }
        }
        (None, None) => false,
    }
}

fn user_disabled(state: &DesiredState, user: &str) -> bool {
    matches!(state.resolve(Kind::User, user, None), Some(Resource { spec: Spec::User(us), .. }) if us.disabled)
}

fn groups_of<'s>(state: &'s DesiredState, user: &str) -> Vec<&'s str> {
    state
        .of_kind(Kind::Group)
        .filter(|g| matches!(&g.spec, Spec::Group(gs) if gs.members.iter().any(|m| m == user)))
        .map(Resource::name)
        .collect()
}

/// Every binding `subject` holds, each with the project it is confined to (see the module
/// documentation). A token's bindings are all confined to its project; an unknown or revoked
/// token, and a disabled user (and its tokens), hold nothing.
pub fn effective_bindings(state: &DesiredState, subject: SubjectRef<'_>) -> Vec<EffectiveBinding> {
    match subject {
        SubjectRef::User(u) => holder_bindings(state, Some(u), None, None),
        SubjectRef::Group(g) => holder_bindings(state, None, Some(g), None),
        SubjectRef::McpToken { name, project } => match state.get(&ResourceKey::new(Kind::McpToken, Some(project), name)) {
            Some(res @ Resource { spec: Spec::McpToken(t), .. }) if !t.revoked => token_effective(state, res),
            _ => Vec::new(),
        },
    }
}

/// [`effective_bindings`] of a token resource, revoked or not.
fn token_effective(state: &DesiredState, token: &Resource) -> Vec<EffectiveBinding> {
    let Spec::McpToken(t) = &token.spec else { return Vec::new() };
    let project = token.metadata.project.as_deref().unwrap_or_default();
    holder_bindings(state, t.user.as_deref(), None, Some((token.name(), project, &t.bindings)))
}

/// The bindings of a user, a group, or a token (name, project, own bindings) acting for `user`.
fn holder_bindings(
    state: &DesiredState,
    user: Option<&str>,
    group: Option<&str>,
    token: Option<(&str, &str, &[RoleBinding])>,
) -> Vec<EffectiveBinding> {
    if user.is_some_and(|u| user_disabled(state, u)) {
        return Vec::new();
    }
    let groups = match (group, user) {
        (Some(g), _) => vec![g],
        (None, Some(u)) => groups_of(state, u),
        (None, None) => Vec::new(),
    };
    let token_project = token.map(|(_, tp, _)| tp);
    let confine = |p: Option<&str>| token_project.or(p).map(str::to_string);
    let mut out: Vec<EffectiveBinding> = token
        .into_iter()
        .flat_map(|(_, tp, own)| {
            own.iter().map(move |b| EffectiveBinding { binding: b.clone(), project: Some(tp.to_string()), definition: None, group: None })
        })
        .collect();
    for def in state.of_kind(Kind::RbacDefinition) {
        let Spec::RbacDefinition(d) = &def.spec else { continue };
        let def_project = def.metadata.project.as_deref();
        // A definition inside another project grants a token nothing.
        if token_project.is_some_and(|tp| def_project.is_some_and(|dp| dp != tp)) {
            continue;
        }
        let direct = d.subjects.iter().any(|s| match s.kind {
            SubjectKind::McpToken => token.is_some_and(|(n, tp, _)| s.name == n && s.project.as_deref().or(def_project) == Some(tp)),
            SubjectKind::User => user == Some(s.name.as_str()),
            SubjectKind::Group => false,
        });
        let via = d.subjects.iter().find(|s| s.kind == SubjectKind::Group && groups.contains(&s.name.as_str())).map(|s| s.name.clone());
        if !direct && via.is_none() {
            continue;
        }
        let group = if direct { None } else { via };
        out.extend(d.role_bindings.iter().map(|b| EffectiveBinding {
            binding: b.clone(),
            project: confine(def_project),
            definition: Some(def.key()),
            group: group.clone(),
        }));
    }
    out
}

/// Every binding that applies to an McpToken: its own, plus those of `RbacDefinition`s naming the
/// token, its user, or a group its user belongs to (global ones, and those of its project). A
/// disabled user gets nothing. Revocation is not looked at (the gateway leaves revoked tokens
/// out of its index).
pub fn token_bindings(state: &DesiredState, token: &Resource) -> Vec<RoleBinding> {
    token_effective(state, token).into_iter().map(|e| e.binding).collect()
}

/// Whether `subject` may make `req` in `project` (`None`: on a global resource or action). A
/// token acts only in its own project: `None` means its project, another project is refused.
pub fn can(state: &DesiredState, subject: SubjectRef<'_>, project: Option<&str>, req: Request<'_>) -> bool {
    let project = match subject {
        SubjectRef::McpToken { project: tp, .. } => match project {
            Some(p) if p != tp => return false,
            _ => Some(tp),
        },
        _ => project,
    };
    effective_bindings(state, subject).iter().any(|e| e.applies_in(project) && binding_allows(&e.binding, req))
}

/// Every user, group and token that may make `req` in `project`, sorted. Tokens are named
/// `<project>/<name>`; with `project` set only that project's tokens can qualify.
pub fn who_can(state: &DesiredState, project: Option<&str>, req: Request<'_>) -> Vec<(SubjectKind, String)> {
    let mut out = Vec::new();
    for u in state.of_kind(Kind::User) {
        if can(state, SubjectRef::User(u.name()), project, req) {
            out.push((SubjectKind::User, u.name().to_string()));
        }
    }
    for g in state.of_kind(Kind::Group) {
        if can(state, SubjectRef::Group(g.name()), project, req) {
            out.push((SubjectKind::Group, g.name().to_string()));
        }
    }
    for t in state.of_kind(Kind::McpToken) {
        let tp = t.metadata.project.as_deref().unwrap_or_default();
        if can(state, SubjectRef::McpToken { name: t.name(), project: tp }, project, req) {
            out.push((SubjectKind::McpToken, format!("{tp}/{}", t.name())));
        }
    }
    out.sort();
    out
}

/// A binding in the CLI's syntax that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingSyntaxError {
    #[error("`{0}` is not `key:value` (e.g. `role:view,resource:servers`)")]
    NotKeyValue(String),
    #[error("unknown key `{0}`; keys are role, resource, name, action{1}")]
    UnknownKey(String, String),
    #[error("`{0}` is given twice")]
    Repeated(String),
    #[error("unknown role `{0}`; roles are view, edit, create, delete, run{1}")]
    UnknownRole(String, String),
    #[error("unknown resource `{0}` (use a plural kind such as `servers`, or `*`){1}")]
    UnknownResource(String, String),
    #[error("unknown action `{0}`; known: {known}{1}", known = ACTIONS.join(", "))]
    UnknownAction(String, String),
    #[error("a binding has either `resource:` or `action:`")]
    ResourceOrAction,
    #[error("`role:` is required with `resource:`")]
    NoRole,
    #[error("`action:` bindings take `role:run`")]
    ActionRole,
    #[error("`name:` goes with `resource:`, not `action:`")]
    NameWithAction,
    #[error("`{0}` is not a subject: write `User:NAME`, `Group:NAME`, `McpToken:NAME` or `McpToken:PROJECT/NAME`")]
    BadSubject(String),
}

/// Read a subject written `User:alice`, `Group:admins`, `McpToken:NAME` or
/// `McpToken:PROJECT/NAME` (the kind is case-insensitive).
///
/// # Errors
/// [`BindingSyntaxError::BadSubject`] for anything else.
pub fn parse_subject(s: &str) -> Result<crate::spec::Subject, BindingSyntaxError> {
    let bad = || BindingSyntaxError::BadSubject(s.into());
    let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
    let kind = match kind.trim().to_ascii_lowercase().as_str() {
        "user" => SubjectKind::User,
        "group" => SubjectKind::Group,
        "mcptoken" | "token" => SubjectKind::McpToken,
        _ => return Err(bad()),
    };
    let (project, name) = match rest.trim().split_once('/') {
        Some((p, n)) if kind == SubjectKind::McpToken => (Some(p.to_string()), n.to_string()),
        Some(_) => return Err(bad()),
        None => (None, rest.trim().to_string()),
    };
    if name.is_empty() || project.as_deref() == Some("") {
        return Err(bad());
    }
    Ok(crate::spec::Subject { kind, name, project })
}

fn parse_role(s: &str) -> Result<Role, BindingSyntaxError> {
    const ROLES: [(&str, Role); 5] =
        [("view", Role::View), ("edit", Role::Edit), ("create", Role::Create), ("delete", Role::Delete), ("run", Role::Run)];
    ROLES
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, r)| *r)
        .ok_or_else(|| BindingSyntaxError::UnknownRole(s.into(), did_you_mean(s, ROLES.iter().map(|(n, _)| *n))))
}

/// Read a binding written `role:view,resource:servers[,name:my-ha]` or `action:logs` (the role
/// `run` is implied by `action:`; `role:run,action:logs` is the same). Checked as validation
/// checks a binding in YAML: known role, resource (plural kind or `*`) and action.
///
/// # Errors
/// What is wrong with the text, with a "did you mean" hint where one is close.
pub fn parse_binding(s: &str) -> Result<RoleBinding, BindingSyntaxError> {
    let (mut role, mut resource, mut name, mut action) = (None, None, None, None);
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once(':').map(|(k, v)| (k.trim(), v.trim())).ok_or_else(|| BindingSyntaxError::NotKeyValue(part.into()))?;
        if v.is_empty() {
            return Err(BindingSyntaxError::NotKeyValue(part.into()));
        }
        let slot = match k {
            "role" => &mut role,
            "resource" => &mut resource,
            "name" => &mut name,
            "action" => &mut action,
            _ => return Err(BindingSyntaxError::UnknownKey(k.into(), did_you_mean(k, ["role", "resource", "name", "action"]))),
        };
        if slot.replace(v.to_string()).is_some() {
            return Err(BindingSyntaxError::Repeated(k.into()));
        }
    }
    let role = role.as_deref().map(parse_role).transpose()?;
    match (&resource, &action) {
        (Some(_), Some(_)) | (None, None) => return Err(BindingSyntaxError::ResourceOrAction),
        (Some(r), None) => {
            if r != "*" && !Kind::ALL.iter().any(|k| k.plural() == r) {
                let hint = did_you_mean(r, Kind::ALL.iter().map(|k| k.plural()));
                return Err(BindingSyntaxError::UnknownResource(r.clone(), hint));
            }
            if role.is_none() {
                return Err(BindingSyntaxError::NoRole);
            }
        }
        (None, Some(a)) => {
            if !ACTIONS.contains(&a.as_str()) {
                return Err(BindingSyntaxError::UnknownAction(a.clone(), did_you_mean(a, ACTIONS.iter().copied())));
            }
            if role.is_some_and(|r| r != Role::Run) {
                return Err(BindingSyntaxError::ActionRole);
            }
            if name.is_some() {
                return Err(BindingSyntaxError::NameWithAction);
            }
        }
    }
    Ok(RoleBinding { role: role.unwrap_or(Role::Run), resource, name, action })
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::View => "view",
        Role::Edit => "edit",
        Role::Create => "create",
        Role::Delete => "delete",
        Role::Run => "run",
    }
}

/// A binding in the syntax [`parse_binding`] reads (`action:logs`, `role:view,resource:servers`).
pub fn binding_syntax(b: &RoleBinding) -> String {
    match (&b.action, &b.resource) {
        (Some(a), _) => format!("action:{a}"),
        (None, r) => {
            let mut s = format!("role:{},resource:{}", role_name(b.role), r.as_deref().unwrap_or("?"));
            if let Some(n) = &b.name {
                s.push_str(",name:");
                s.push_str(n);
            }
            s
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::load::SourceFile;

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

    /// The engine's table, shared with `mcpctl rbac can-i`/`who-can`'s test (every case must
    /// agree): `schema/tests/fixtures/rbac/{access.yaml,cases.txt}`.
    pub(crate) const ACCESS_YAML: &str = include_str!("../tests/fixtures/rbac/access.yaml");
    const CASES: &str = include_str!("../tests/fixtures/rbac/cases.txt");

    pub(crate) fn access_state() -> DesiredState {
        crate::check(&[SourceFile::new("access.yaml", ACCESS_YAML)]).unwrap_or_else(|d| panic!("{d}"))
    }

    /// (subject, project, request, expected), read from cases.txt.
    pub(crate) fn cases() -> Vec<(SubjectRef<'static>, Option<&'static str>, Request<'static>, bool)> {
        let opt = |s: &'static str| (s != "-").then_some(s);
        CASES
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let f: Vec<&'static str> = l.split_whitespace().collect();
                let [subject, project, verb, resource, name, want] = f[..] else { panic!("bad case line: {l}") };
                let subject = match subject.split_once(':') {
                    Some(("User", n)) => SubjectRef::User(n),
                    Some(("Group", n)) => SubjectRef::Group(n),
                    Some(("McpToken", pn)) => {
                        let (project, name) = pn.split_once('/').expect("McpToken:project/name");
                        SubjectRef::McpToken { name, project }
                    }
                    _ => panic!("bad subject in {l}"),
                };
                let req = if resource == "action" {
                    Request::Action(name)
                } else {
                    let role = serde_json::from_value(serde_json::json!(verb)).expect("a role");
                    let kind = Kind::ALL.iter().copied().find(|k| k.plural() == resource).expect("a plural kind");
                    Request::Resource { role, kind, name: opt(name) }
                };
                (subject, opt(project), req, want == "yes")
            })
            .collect()
    }

    #[test]
    fn can_table() {
        let state = access_state();
        for (subject, project, req, want) in cases() {
            assert_eq!(can(&state, subject, project, req), want, "{subject} in {project:?}: {req:?}");
        }
    }

    #[test]
    fn who_can_agrees_with_can_on_every_case() {
        let state = access_state();
        for (subject, project, req, want) in cases() {
            let name = match subject {
                SubjectRef::User(n) | SubjectRef::Group(n) => n.to_string(),
                SubjectRef::McpToken { name, project } => format!("{project}/{name}"),
            };
            let listed = who_can(&state, project, req).contains(&(subject.kind(), name));
            assert_eq!(listed, want, "{subject} in {project:?}: {req:?}");
        }
        let runs_ha = who_can(&state, Some("lab"), Request::Resource { role: Role::Run, kind: Kind::Server, name: Some("ha") });
        let names: Vec<String> = runs_ha.iter().map(|(k, n)| format!("{k:?}:{n}")).collect();
        assert_eq!(names, ["User:bob", "McpToken:lab/bot"]);
    }

    #[test]
    fn effective_bindings_name_their_scope_and_source() {
        let state = access_state();
        let bob = effective_bindings(&state, SubjectRef::User("bob"));
        assert_eq!(bob.len(), 2);
        assert!(bob.iter().all(|e| e.project.as_deref() == Some("lab") && e.group.is_none()));
        assert_eq!(bob[0].definition.as_ref().unwrap().to_string(), "RbacDefinition/lab/bob-lab");
        let alice = effective_bindings(&state, SubjectRef::User("alice"));
        assert!(alice.iter().all(|e| e.project.is_none() && e.group.as_deref() == Some("admins")));
        // A token's bindings are all confined to its project, global definitions included.
        let alices = effective_bindings(&state, SubjectRef::McpToken { name: "alices", project: "lab" });
        assert_eq!(alices.len(), 2);
        assert!(alices.iter().all(|e| e.project.as_deref() == Some("lab")));
    }

    #[test]
    fn token_bindings_keep_their_behaviour() {
        let state = access_state();
        let token = |n| state.get(&ResourceKey::new(Kind::McpToken, Some("lab"), n)).unwrap();
        let bot = token_bindings(&state, token("bot"));
        assert_eq!(
            bot,
            [
                rb(Role::Run, Some("servers"), Some("time"), None),
                rb(Role::Run, Some("servers"), Some("ha"), None),
                rb(Role::Run, None, None, Some("chat"))
            ]
        );
        assert!(token_bindings(&state, token("carols")).is_empty(), "disabled user");
        assert_eq!(token_bindings(&state, token("alices")).len(), 2);
        // Revocation is the gateway's to judge (it leaves revoked tokens out of its index).
        assert_eq!(token_bindings(&state, token("gone")), [rb(Role::View, Some("*"), None, None)]);
        let bobs = state.get(&ResourceKey::new(Kind::McpToken, Some("work"), "bobs")).unwrap();
        assert!(token_bindings(&state, bobs).is_empty(), "bob's grants are confined to lab");
    }

    #[test]
    fn covers_table() {
        let ceiling = [
            rb(Role::Edit, Some("servers"), None, None),
            rb(Role::Run, Some("servers"), Some("time"), None),
            rb(Role::View, Some("*"), None, None),
            rb(Role::Run, None, None, Some("logs")),
        ];
        let cases = [
            (rb(Role::Edit, Some("servers"), Some("ha"), None), true),
            (rb(Role::Edit, Some("servers"), None, None), true),
            (rb(Role::View, Some("agents"), None, None), true),
            (rb(Role::View, Some("*"), None, None), true),
            (rb(Role::Run, Some("servers"), Some("time"), None), true),
            (rb(Role::Run, Some("servers"), Some("ha"), None), false),
            (rb(Role::Run, Some("servers"), None, None), false),
            (rb(Role::Edit, Some("*"), None, None), false),
            (rb(Role::Delete, Some("servers"), None, None), false),
            (rb(Role::Edit, Some("agents"), None, None), false),
            (rb(Role::Run, None, None, Some("logs")), true),
            (rb(Role::Run, None, None, Some("chat")), false),
        ];
        for (b, want) in cases {
            assert_eq!(covers(&ceiling, &b), want, "{}", binding_syntax(&b));
        }
        let named = [rb(Role::Edit, Some("servers"), Some("ha"), None)];
        assert!(!covers(&named, &rb(Role::Edit, Some("servers"), None, None)));
        assert!(!covers(&[], &rb(Role::View, Some("servers"), None, None)));
    }

    #[test]
    fn binding_syntax_table() {
        let ok = [
            ("role:view,resource:servers", rb(Role::View, Some("servers"), None, None)),
            ("role:edit,resource:servers,name:my-ha", rb(Role::Edit, Some("servers"), Some("my-ha"), None)),
            (" role : run , resource : * ", rb(Role::Run, Some("*"), None, None)),
            ("action:logs", rb(Role::Run, None, None, Some("logs"))),
            ("role:run,action:reveal-secrets", rb(Role::Run, None, None, Some("reveal-secrets"))),
        ];
        for (text, want) in ok {
            let got = parse_binding(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got, want, "{text}");
            assert_eq!(parse_binding(&binding_syntax(&got)).unwrap(), got, "round trip of {text}");
        }
        let bad = [
            ("role:view", "a binding has either `resource:` or `action:`"),
            ("resource:servers", "`role:` is required with `resource:`"),
            ("role:view,resource:servers,action:logs", "a binding has either `resource:` or `action:`"),
            ("role:veiw,resource:servers", "unknown role `veiw`"),
            ("role:view,resource:server", "unknown resource `server`"),
            ("action:log", "unknown action `log`"),
            ("role:edit,action:logs", "`action:` bindings take `role:run`"),
            ("action:logs,name:x", "`name:` goes with `resource:`, not `action:`"),
            ("role:view,role:edit,resource:servers", "`role` is given twice"),
            ("rol:view,resource:servers", "unknown key `rol`"),
            ("view", "`view` is not `key:value`"),
            ("role:,resource:servers", "`role:` is not `key:value`"),
        ];
        let subjects = [
            ("User:alice", Some((SubjectKind::User, "alice", None))),
            ("group:admins", Some((SubjectKind::Group, "admins", None))),
            ("McpToken:bot", Some((SubjectKind::McpToken, "bot", None))),
            ("McpToken:lab/bot", Some((SubjectKind::McpToken, "bot", Some("lab")))),
            ("User:lab/alice", None),
            ("Robot:x", None),
            ("User:", None),
            ("alice", None),
        ];
        for (text, want) in subjects {
            let got = parse_subject(text).ok();
            let got = got.as_ref().map(|s| (s.kind, s.name.as_str(), s.project.as_deref()));
            assert_eq!(got, want, "{text}");
        }
        for (text, want) in bad {
            let err = parse_binding(text).expect_err(text).to_string();
            assert!(err.starts_with(want), "{text}: {err}");
        }
    }
}
