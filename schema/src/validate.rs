//! Whole-repo checks after decoding: names, scoping, duplicates, and every reference between
//! resources. All problems are reported in one run, each at the position of the offending field.

use std::collections::{HashMap, HashSet};

use crate::desired::DesiredState;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::document::{Pos, Seg};
use crate::hint::did_you_mean;
use crate::kind::{Kind, Scope};
use crate::rbac;
use crate::resource::{Resource, ResourceKey, Spec};
use crate::spec::*;

/// Whether `s` is a DNS-1123 label.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether a secret value is age ciphertext in ASCII armor.
pub fn is_age_armor(s: &str) -> bool {
    let t = s.trim();
    t.starts_with("-----BEGIN AGE ENCRYPTED FILE-----") && t.ends_with("-----END AGE ENCRYPTED FILE-----")
}

/// Validate decoded resources as one desired state.
///
/// # Errors
/// Every problem found, sorted by file and position. The state is only returned when clean.
pub fn validate(resources: Vec<Resource>) -> Result<DesiredState, Diagnostics> {
    validate_with(resources, &[], Vec::new())
}

/// [`validate`] with the keys of resources that failed to decode and, when known, the hash of
/// every resource (`hashes[i]` of `resources[i]`, or empty).
fn validate_with(resources: Vec<Resource>, broken: &[ResourceKey], hashes: Vec<String>) -> Result<DesiredState, Diagnostics> {
    let broken = broken.iter().cloned().collect();
    let mut v = Validator { index: HashMap::new(), diags: Vec::new(), resources: &resources, broken, hints: 0 };
    v.run();
    if v.diags.is_empty() && hashes.len() == resources.len() && !hashes.is_empty() {
        Ok(DesiredState::with_hashes(resources, hashes))
    } else if v.diags.is_empty() {
        Ok(DesiredState::new(resources))
    } else {
        Err(Diagnostics::sorted(v.diags))
    }
}

/// Missing references that get a "did you mean" hint; later ones get none.
///
/// Each hint compares the name with every resource of the repo, so a hint for every one of them
/// costs the square of the repo's size (a generated file of many dangling references to many
/// near-miss names). Nobody reads the hundredth hint.
pub const MAX_HINTS: usize = 100;

struct Validator<'a> {
    resources: &'a [Resource],
    index: HashMap<ResourceKey, &'a Resource>,
    diags: Vec<Diagnostic>,
    broken: HashSet<ResourceKey>,
    /// Hints computed so far, up to [`MAX_HINTS`].
    hints: usize,
}

/// The resource being checked, for positions and subject.
struct At<'a> {
    res: &'a Resource,
}

impl At<'_> {
    fn pos(&self, path: &[&str]) -> Pos {
        self.res.origin.as_ref().map_or_else(Pos::default, |o| o.pos(path))
    }
    fn pos_segs(&self, path: &[Seg]) -> Pos {
        self.res.origin.as_ref().map_or_else(Pos::default, |o| o.pos_segs(path))
    }
}

/// `spec.tokens[0].hash` for messages.
fn seg_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn segs(parts: &[Seg]) -> Vec<Seg> {
    parts.to_vec()
}
fn key(s: &str) -> Seg {
    Seg::Key(s.to_string())
}

impl<'a> Validator<'a> {
    fn err_at(&mut self, at: &At<'_>, pos: Pos, message: impl Into<String>) {
        let file = at.res.origin.as_ref().map_or_else(|| "<store>".into(), |o| o.file.clone());
        self.diags.push(Diagnostic::new(&file, pos, Some(at.res.key().to_string()), message));
    }

    fn err(&mut self, at: &At<'_>, path: &[&str], message: impl Into<String>) {
        let pos = at.pos(path);
        self.err_at(at, pos, message);
    }

    fn run(&mut self) {
        for res in self.resources {
            let at = At { res };
            self.names_and_scope(&at);
            match self.index.get(&res.key()) {
                Some(first) => {
                    let first_at = first.source().unwrap_or_default();
                    self.err(&at, &["metadata", "name"], format!("duplicate {} (first defined at {first_at})", res.key()));
                }
                None => {
                    self.index.insert(res.key(), res);
                }
            }
        }
        for res in self.resources {
            let at = At { res };
            if let Some(p) = &res.metadata.project {
                if is_dns_label(p) && self.lookup(Kind::Project, p, None).is_none() {
                    let msg = self.missing_msg(Kind::Project, p, None);
                    self.err(&at, &["metadata", "project"], msg);
                }
            }
            self.spec(&at);
        }
        self.default_backend();
        self.unique_token_hashes();
    }

    /// Two McpTokens with one hash would be one secret with two identities (and the gateway
    /// indexes tokens by hash): refused across the whole repo, every project included.
    /// User login tokens (`User.spec.tokens[].hash`) share the one index: a hash is unique
    /// across every McpToken and every user token.
    fn unique_token_hashes(&mut self) {
        let mut seen: HashMap<&str, (&Resource, Vec<Seg>)> = HashMap::new();
        for res in self.resources {
            let hashes: Vec<(&str, Vec<Seg>)> = match &res.spec {
                Spec::McpToken(t) => vec![(t.hash.as_str(), vec![key("spec"), key("hash")])],
                Spec::User(u) => u
                    .tokens
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (t.hash.as_str(), vec![key("spec"), key("tokens"), Seg::Index(i), key("hash")]))
                    .collect(),
                _ => continue,
            };
            for (hash, path) in hashes {
                match seen.get(hash) {
                    None => {
                        seen.insert(hash, (res, path));
                    }
                    Some((first, first_path)) => {
                        let first_pos = At { res: first }.pos_segs(first_path);
                        let first_file = first.origin.as_ref().map_or_else(|| "<store>".into(), |o| o.file.clone());
                        let what = if matches!(res.spec, Spec::McpToken(_)) { "McpToken" } else { "user token" };
                        let msg = format!(
                            "{}: the same hash as {} (at {first_file}:{first_pos}); every {what} needs its own token",
                            seg_path(&path),
                            first.key()
                        );
                        let pos = At { res }.pos_segs(&path);
                        self.err_at(&At { res }, pos, msg);
                    }
                }
            }
        }
    }

    fn names_and_scope(&mut self, at: &At<'_>) {
        let m = &at.res.metadata;
        if !is_dns_label(&m.name) {
            self.err(at, &["metadata", "name"], format!("name `{}` is not a DNS-1123 label (lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit)", m.name));
        }
        if let Some(p) = &m.project {
            if !is_dns_label(p) {
                self.err(at, &["metadata", "project"], format!("project `{p}` is not a DNS-1123 label"));
            }
        }
        match (at.res.kind().scope(), &m.project) {
            (Scope::Cluster, Some(_)) => {
                self.err(at, &["metadata", "project"], format!("{} is not project-scoped; remove `metadata.project`", at.res.kind()))
            }
            (Scope::Project, None) => self.err(at, &["metadata"], format!("{} must set `metadata.project`", at.res.kind())),
            _ => {}
        }
    }

    /// Find `name` of `kind` as seen from `from` project: the project first, then global.
    fn lookup(&self, kind: Kind, name: &str, from: Option<&str>) -> Option<&'a Resource> {
        if let (Some(p), Scope::Project | Scope::Either) = (from, kind.scope()) {
            if let Some(r) = self.index.get(&ResourceKey::new(kind, Some(p), name)) {
                return Some(r);
            }
        }
        self.index.get(&ResourceKey::new(kind, None, name)).copied()
    }

    fn missing_msg(&mut self, kind: Kind, name: &str, from: Option<&str>) -> String {
        let hint = if self.hints < MAX_HINTS {
            self.hints += 1;
            let candidates = self
                .index
                .keys()
                .filter(|k| k.kind == kind && k.name != name && (k.project.is_empty() || Some(k.project.as_str()) == from))
                .map(|k| k.name.as_str());
            did_you_mean(name, candidates)
        } else {
            String::new()
        };
        match (from, kind.scope()) {
            (Some(p), Scope::Project | Scope::Either) => format!("{kind} `{name}` not found in project `{p}` or globally{hint}"),
            _ => format!("{kind} `{name}` not found{hint}"),
        }
    }

    /// Require a reference to exist; report at `path` otherwise.
    fn require(&mut self, at: &At<'_>, path: &[Seg], kind: Kind, name: &str) -> Option<&'a Resource> {
        let from = at.res.metadata.project.as_deref();
        let found = self.lookup(kind, name, from);
        let is_broken = [from, None].iter().any(|p| self.broken.contains(&ResourceKey::new(kind, *p, name)));
        if found.is_none() && !is_broken {
            let msg = self.missing_msg(kind, name, from);
            let pos = at.pos_segs(path);
            self.err_at(at, pos, msg);
        }
        found
    }

    fn require_secret_key(&mut self, at: &At<'_>, path: &[Seg], r: &SecretKeyRef) {
        let mut name_path = segs(path);
        name_path.push(key("name"));
        if let Some(Resource { spec: Spec::Secret(s), .. }) = self.require(at, &name_path, Kind::Secret, &r.name) {
            // Keys of an external secret live in its backend; they are checked at server start.
            if s.external_ref.is_none() && !s.data.contains_key(&r.key) {
                let hint = did_you_mean(&r.key, s.data.keys().map(String::as_str));
                let mut key_path = segs(path);
                key_path.push(key("key"));
                let pos = at.pos_segs(&key_path);
                self.err_at(at, pos, format!("Secret `{}` has no key `{}`{hint}", r.name, r.key));
            }
        }
    }

    fn spec(&mut self, at: &At<'_>) {
        match &at.res.spec {
            Spec::SecretBackend(s) => {
                if s.backend_type == SecretBackendType::Openbao && s.openbao.is_none() {
                    self.err(at, &["spec", "type"], "`type: openbao` needs `openbao: {url: …}`");
                }
                if let Some(r) = s.openbao.as_ref().and_then(|o| o.token_secret_ref.as_ref()) {
                    let path = [key("spec"), key("openbao"), key("tokenSecretRef")];
                    self.require_secret_key(at, &path, r);
                    if let Some(Resource { spec: Spec::Secret(tok), .. }) = self.lookup(Kind::Secret, &r.name, None) {
                        if self.backend_type_of(tok) != Some(SecretBackendType::Plaintext) || tok.external_ref.is_some() {
                            let mut p = path.to_vec();
                            p.push(key("name"));
                            let pos = at.pos_segs(&p);
                            self.err_at(at, pos, format!("the token Secret `{}` must be kept on a `plaintext` backend (age ciphertext in git): an OpenBao token cannot come from OpenBao", r.name));
                        }
                    }
                }
            }
            Spec::Secret(s) => {
                if let Some(b) = &s.backend {
                    self.require(at, &[key("spec"), key("backend")], Kind::SecretBackend, b);
                }
                if s.external_ref.is_some() {
                    if !s.data.is_empty() {
                        self.err(at, &["spec", "data"], "a Secret with `externalRef` keeps its values in the backend: leave `data` empty");
                    }
                    if matches!(self.backend_type_of(s), Some(SecretBackendType::Plaintext)) {
                        self.err(
                            at,
                            &["spec", "externalRef"],
                            "`externalRef` needs an `openbao` backend (this Secret's backend is `plaintext`); set `backend:`",
                        );
                    }
                }
                for (k, val) in &s.data {
                    let path = [key("spec"), key("data"), key(k)];
                    if !k.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) || k.is_empty() {
                        let pos = at.pos_segs(&path);
                        self.err_at(at, pos, format!("secret key `{k}` may only use letters, digits, '_', '.' and '-'"));
                    }
                    if !is_age_armor(val) {
                        let pos = at.pos_segs(&path);
                        self.err_at(at, pos, format!("spec.data.{k}: value is not age ciphertext (ASCII armor); encrypt it, e.g. `age -r <recipient> -a`, never commit plaintext"));
                    }
                }
            }
            Spec::User(u) => {
                if let Some(e) = &u.email {
                    if !e.contains('@') {
                        self.err(at, &["spec", "email"], format!("`{e}` is not an email address"));
                    }
                }
                self.user_tokens(at, &u.tokens);
            }
            Spec::Group(g) => {
                for (i, m) in g.members.iter().enumerate() {
                    self.require(at, &[key("spec"), key("members"), Seg::Index(i)], Kind::User, m);
                }
            }
            Spec::Template(t) => self.template(at, t),
            Spec::Server(s) => self.server(at, s, &[key("spec")]),
            Spec::Project(p) => {
                if let Some(llm) = p.gate.as_ref().and_then(|g| g.llm.as_ref()) {
                    self.require(at, &[key("spec"), key("gate"), key("llm")], Kind::Llm, llm);
                }
                if let Some(0) = p.gate.as_ref().and_then(|g| g.max_prompts) {
                    let pos = at.pos_segs(&[key("spec"), key("gate"), key("maxPrompts")]);
                    self.err_at(at, pos, "`maxPrompts` must be at least 1".to_string());
                }
                if !p.prefix_tools && p.servers.len() != 1 {
                    let pos = at.pos_segs(&[key("spec"), key("prefixTools")]);
                    self.err_at(at, pos, format!("`prefixTools: false` needs exactly one server (this project has {})", p.servers.len()));
                }
                let mut seen = HashSet::new();
                for (i, s) in p.servers.iter().enumerate() {
                    let path = [key("spec"), key("servers"), Seg::Index(i)];
                    if !seen.insert(s) {
                        let pos = at.pos_segs(&path);
                        self.err_at(at, pos, format!("server `{s}` listed twice"));
                        continue;
                    }
                    let own = self.index.get(&ResourceKey::new(Kind::Server, Some(at.res.name()), s)).copied();
                    if own.is_none() && self.require(at, &path, Kind::Server, s).is_none() {
                        if let Some(other) = self.index.keys().find(|k| k.kind == Kind::Server && k.name == *s && !k.project.is_empty()) {
                            let msg = format!("(Server `{s}` exists in project `{}`, which this project cannot expose)", other.project);
                            let pos = at.pos_segs(&path);
                            self.err_at(at, pos, msg);
                        }
                    }
                }
            }
            Spec::Llm(l) => {
                if let Some(u) = &l.url {
                    self.url(at, &["spec", "url"], u);
                }
                if let Some(k) = &l.api_key {
                    self.require_secret_key(at, &[key("spec"), key("apiKey"), key("secretRef")], &k.secret_ref);
                }
            }
            Spec::Agent(a) => {
                self.require(at, &[key("spec"), key("llm")], Kind::Llm, &a.llm);
                self.sampling(at, "sampling", &a.sampling);
                if let Some(p) = &a.default_personality {
                    let path = [key("spec"), key("defaultPersonality")];
                    if let Some(Resource { spec: Spec::Personality(ps), .. }) = self.require(at, &path, Kind::Personality, p) {
                        if ps.agent != at.res.name() {
                            let pos = at.pos_segs(&path);
                            self.err_at(at, pos, format!("Personality `{p}` belongs to agent `{}`, not to this agent", ps.agent));
                        }
                    }
                }
            }
            Spec::Personality(p) => {
                self.require(at, &[key("spec"), key("agent")], Kind::Agent, &p.agent);
                self.sampling(at, "sampling", &p.sampling);
            }
            Spec::Prompt(p) => self.prompt(at, p),
            Spec::McpToken(t) => {
                let h = t.hash.strip_prefix("sha256:").unwrap_or("");
                if h.len() != 64 || !h.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) {
                    self.err(
                        at,
                        &["spec", "hash"],
                        "hash must be `sha256:` followed by 64 lower-case hex digits (the token itself never goes in git)",
                    );
                }
                if t.prefix.is_empty() || t.prefix.len() > 24 {
                    self.err(at, &["spec", "prefix"], "prefix must be 1 to 24 characters (the token's first characters)");
                }
                if let Some(u) = &t.user {
                    self.require(at, &[key("spec"), key("user")], Kind::User, u);
                }
                if let Some(u) = &t.created_by {
                    self.require(at, &[key("spec"), key("createdBy")], Kind::User, u);
                }
                self.bindings(at, "bindings", &t.bindings);
            }
            Spec::RbacDefinition(r) => {
                for (i, s) in r.subjects.iter().enumerate() {
                    let path = [key("spec"), key("subjects"), Seg::Index(i), key("name")];
                    match s.kind {
                        SubjectKind::User => drop(self.require(at, &path, Kind::User, &s.name)),
                        SubjectKind::Group => drop(self.require(at, &path, Kind::Group, &s.name)),
                        SubjectKind::McpToken => {
                            let project = s.project.as_deref().or(at.res.metadata.project.as_deref());
                            let found = project.and_then(|p| self.index.get(&ResourceKey::new(Kind::McpToken, Some(p), &s.name)));
                            if found.is_none() {
                                let msg = match project {
                                    Some(p) => format!("McpToken `{}` not found in project `{p}`", s.name),
                                    None => "an McpToken subject needs `project` (or the definition's metadata.project)".to_string(),
                                };
                                let pos = at.pos_segs(&path);
                                self.err_at(at, pos, msg);
                            }
                        }
                    }
                }
                self.bindings(at, "roleBindings", &r.role_bindings);
            }
        }
    }

    fn url(&mut self, at: &At<'_>, path: &[&str], u: &str) {
        if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 10 {
            self.err(at, path, format!("`{u}` is not an http(s) URL"));
        }
    }

    fn sampling(&mut self, at: &At<'_>, field: &str, s: &Sampling) {
        let checks = [
            ("temperature", s.temperature, 0.0, 2.0),
            ("topP", s.top_p, 0.0, 1.0),
            ("presencePenalty", s.presence_penalty, -2.0, 2.0),
            ("frequencyPenalty", s.frequency_penalty, -2.0, 2.0),
        ];
        for (name, value, lo, hi) in checks {
            if let Some(v) = value {
                if !(lo..=hi).contains(&v) {
                    self.err(at, &["spec", field, name], format!("{name} {v} is outside {lo} to {hi}"));
                }
            }
        }
        if let Err((k, why)) = crate::agent::check_extra(&s.extra) {
            let path: Vec<&str> = if k.is_empty() { vec!["spec", field, "extra"] } else { vec!["spec", field, "extra", &k] };
            self.err(at, &path, why);
        }
    }

    /// `User.spec.tokens`: names unique DNS labels, digests well formed, prefixes short and of
    /// the user-token kind (an `mcpctl_pat_` token here would be a project token acting as a user).
    fn user_tokens(&mut self, at: &At<'_>, tokens: &[UserToken]) {
        let mut names = HashSet::new();
        for (i, t) in tokens.iter().enumerate() {
            let field = |leaf: &str| [key("spec"), key("tokens"), Seg::Index(i), key(leaf)];
            if !is_dns_label(&t.name) {
                let pos = at.pos_segs(&field("name"));
                self.err_at(at, pos, format!("token name `{}` is not a DNS-1123 label", t.name));
            } else if !names.insert(t.name.as_str()) {
                let pos = at.pos_segs(&field("name"));
                self.err_at(at, pos, format!("token `{}` listed twice in this user", t.name));
            }
            if !crate::token::is_hash(&t.hash) {
                let pos = at.pos_segs(&field("hash"));
                self.err_at(at, pos, "hash must be `sha256:` followed by 64 lower-case hex digits (the token itself never goes in git)");
            }
            if !t.prefix.starts_with(crate::token::USER_TOKEN_PREFIX) || t.prefix.len() > crate::token::MAX_PREFIX_LEN {
                let pos = at.pos_segs(&field("prefix"));
                let max = crate::token::MAX_PREFIX_LEN;
                self.err_at(
                    at,
                    pos,
                    format!("prefix must start with `mcpctl_usr_` and be at most {max} characters (the token's first characters)"),
                );
            }
        }
    }

    fn bindings(&mut self, at: &At<'_>, field: &str, bindings: &[RoleBinding]) {
        for (i, b) in bindings.iter().enumerate() {
            let base = [key("spec"), key(field), Seg::Index(i)];
            let here = |leaf: &str| {
                let mut p = base.to_vec();
                p.push(key(leaf));
                p
            };
            match (&b.resource, &b.action) {
                (Some(_), Some(_)) | (None, None) => {
                    let pos = at.pos_segs(&base);
                    self.err_at(at, pos, "a binding has either `resource` or `action`");
                }
                (None, Some(a)) => {
                    if b.role != Role::Run {
                        let pos = at.pos_segs(&here("role"));
                        self.err_at(at, pos, "`action` bindings take `role: run`");
                    }
                    if !rbac::ACTIONS.contains(&a.as_str()) {
                        let hint = did_you_mean(a, rbac::ACTIONS.iter().copied());
                        let pos = at.pos_segs(&here("action"));
                        self.err_at(at, pos, format!("unknown action `{a}`; known: {}{hint}", rbac::ACTIONS.join(", ")));
                    }
                    if b.name.is_some() {
                        let pos = at.pos_segs(&here("name"));
                        self.err_at(at, pos, "`name` goes with `resource`, not `action`");
                    }
                }
                (Some(r), None) => {
                    if r != "*" && !Kind::ALL.iter().any(|k| k.plural() == r) {
                        let hint = did_you_mean(r, Kind::ALL.iter().map(|k| k.plural()));
                        let pos = at.pos_segs(&here("resource"));
                        self.err_at(at, pos, format!("unknown resource `{r}` (use a plural kind such as `servers`, or `*`){hint}"));
                    }
                }
            }
        }
    }

    fn prompt(&mut self, at: &At<'_>, p: &PromptSpec) {
        let need = |field: &str| format!("`scope: {}` needs `{field}`", serde_json::to_value(p.scope).unwrap().as_str().unwrap_or(""));
        match p.scope {
            PromptScope::Project => {
                for f in ["agent", "personality"] {
                    let set = if f == "agent" { p.agent.is_some() } else { p.personality.is_some() };
                    if set {
                        self.err(at, &["spec", f], format!("`{f}` is only for agent or personality scope"));
                    }
                }
            }
            PromptScope::Agent => {
                if p.personality.is_some() {
                    self.err(at, &["spec", "personality"], "`personality` is only for personality scope");
                }
                match &p.agent {
                    None => self.err(at, &["spec", "scope"], need("agent")),
                    Some(a) => drop(self.require(at, &[key("spec"), key("agent")], Kind::Agent, a)),
                }
            }
            PromptScope::Personality => {
                let agent = match &p.agent {
                    None => {
                        self.err(at, &["spec", "scope"], need("agent"));
                        None
                    }
                    Some(a) => self.require(at, &[key("spec"), key("agent")], Kind::Agent, a).map(|_| a.clone()),
                };
                match &p.personality {
                    None => self.err(at, &["spec", "scope"], need("personality")),
                    Some(name) => {
                        let path = [key("spec"), key("personality")];
                        if let Some(Resource { spec: Spec::Personality(ps), .. }) = self.require(at, &path, Kind::Personality, name) {
                            if let Some(a) = agent.filter(|a| *a != ps.agent) {
                                let pos = at.pos_segs(&path);
                                self.err_at(at, pos, format!("Personality `{name}` belongs to agent `{}`, not to agent `{a}`", ps.agent));
                            }
                        }
                    }
                }
            }
        }
    }

    fn template(&mut self, at: &At<'_>, t: &TemplateSpec) {
        let mut names = HashSet::new();
        for (i, p) in t.parameters.iter().enumerate() {
            if !names.insert(p.name.as_str()) {
                let pos = at.pos_segs(&[key("spec"), key("parameters"), Seg::Index(i), key("name")]);
                self.err_at(at, pos, format!("parameter `{}` declared twice", p.name));
            }
        }
        if t.server.from_template.is_some() {
            self.err(at, &["spec", "server", "fromTemplate"], "a template cannot instantiate another template");
        }
        let body = serde_json::to_string(&t.server).unwrap_or_default();
        for used in crate::template::placeholders(&body) {
            if !names.contains(used.as_str()) {
                let hint = did_you_mean(&used, names.iter().copied());
                self.err(at, &["spec", "server"], format!("`{{{{{used}}}}}` is not a declared parameter{hint}"));
            }
        }
        self.server(at, &t.server, &[key("spec"), key("server")]);
    }

    fn server(&mut self, at: &At<'_>, s: &ServerSpec, base: &[Seg]) {
        let p = |leaf: &str| {
            let mut v = base.to_vec();
            v.push(key(leaf));
            v
        };
        let sources: Vec<&str> = [
            ("command", s.command.is_some()),
            ("packageName", s.package_name.is_some()),
            ("image", s.image.is_some()),
            ("url", s.url.is_some()),
            ("fromTemplate", s.from_template.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, set)| set.then_some(n))
        .collect();
        match sources.len() {
            1 => {}
            0 => {
                let pos = at.pos_segs(base);
                self.err_at(at, pos, "set one of `command`, `packageName`, `image`, `url` or `fromTemplate`");
            }
            _ => {
                let pos = at.pos_segs(&p(sources[1]));
                self.err_at(at, pos, format!("set only one of {}", sources.join(", ")));
            }
        }
        let transport = s.effective_transport();
        if sources.len() == 1 && s.url.is_some() && transport == Transport::Stdio {
            let pos = at.pos_segs(&p("transport"));
            self.err_at(at, pos, "a `url` server uses `transport: http` or `sse`");
        }
        if sources.len() == 1 && (s.command.is_some() || s.package_name.is_some()) && transport != Transport::Stdio {
            let pos = at.pos_segs(&p("transport"));
            self.err_at(at, pos, "`command` and `packageName` servers use `transport: stdio`");
        }
        if s.runner.is_some() && s.package_name.is_none() {
            let pos = at.pos_segs(&p("runner"));
            self.err_at(at, pos, "`runner` only applies to `packageName`");
        }
        if s.url.is_some() && !s.args.is_empty() {
            let pos = at.pos_segs(&p("args"));
            self.err_at(at, pos, "`args` do not apply to a `url` server");
        }
        if let Some(u) = &s.url {
            if !u.contains("{{") {
                let pos = at.pos_segs(&p("url"));
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    self.err_at(at, pos, format!("`{u}` is not an http(s) URL"));
                }
            }
        }
        if s.timeout_seconds == Some(0) {
            let pos = at.pos_segs(&p("timeoutSeconds"));
            self.err_at(at, pos, "timeoutSeconds must be at least 1");
        }
        let mut env_names = HashSet::new();
        for (i, e) in s.env.iter().enumerate() {
            let mut ep = p("env");
            ep.push(Seg::Index(i));
            let leaf = |l: &str| {
                let mut v = ep.clone();
                v.push(key(l));
                v
            };
            if !is_env_name(&e.name) {
                let pos = at.pos_segs(&leaf("name"));
                self.err_at(at, pos, format!("`{}` is not a valid environment variable name", e.name));
            } else if !env_names.insert(e.name.as_str()) {
                let pos = at.pos_segs(&leaf("name"));
                self.err_at(at, pos, format!("environment variable `{}` set twice", e.name));
            }
            match (&e.value, &e.value_from) {
                (Some(_), Some(_)) | (None, None) => {
                    let pos = at.pos_segs(&ep);
                    self.err_at(at, pos, "set either `value` or `valueFrom`");
                }
                (None, Some(vf)) => {
                    let mut rp = leaf("valueFrom");
                    rp.push(key("secretRef"));
                    self.require_secret_key(at, &rp, &vf.secret_ref);
                }
                _ => {}
            }
        }
        if let Some(ti) = &s.from_template {
            let mut tp = p("fromTemplate");
            tp.push(key("name"));
            if let Some(Resource { spec: Spec::Template(t), .. }) = self.require(at, &tp, Kind::Template, &ti.name) {
                for param in &t.parameters {
                    if param.required && param.default.is_none() && !ti.parameters.contains_key(&param.name) {
                        let pos = at.pos_segs(&tp);
                        self.err_at(at, pos, format!("template `{}` needs parameter `{}`", ti.name, param.name));
                    }
                }
                for given in ti.parameters.keys() {
                    if !t.parameters.iter().any(|tp| tp.name == *given) {
                        let hint = did_you_mean(given, t.parameters.iter().map(|p| p.name.as_str()));
                        let mut gp = p("fromTemplate");
                        gp.extend([key("parameters"), key(given)]);
                        let pos = at.pos_segs(&gp);
                        self.err_at(at, pos, format!("template `{}` has no parameter `{given}`{hint}", ti.name));
                    }
                }
            }
        }
    }

    /// Type of the backend holding `s`: the one it names, else the default one.
    fn backend_type_of(&self, s: &SecretSpec) -> Option<SecretBackendType> {
        self.resources.iter().find_map(|r| match &r.spec {
            Spec::SecretBackend(b) if s.backend.as_deref().map_or(b.is_default, |n| n == r.metadata.name) => Some(b.backend_type),
            _ => None,
        })
    }

    fn default_backend(&mut self) {
        let backends: Vec<&Resource> = self.resources.iter().filter(|r| r.kind() == Kind::SecretBackend).collect();
        let defaults: Vec<&&Resource> = backends.iter().filter(|r| matches!(&r.spec, Spec::SecretBackend(b) if b.is_default)).collect();
        if !backends.is_empty() && defaults.is_empty() {
            let at = At { res: backends[0] };
            self.err(&at, &["spec"], "no SecretBackend has `isDefault: true`; exactly one must");
        }
        if defaults.len() > 1 {
            let first = defaults[0].source().unwrap_or_default();
            for r in &defaults[1..] {
                let at = At { res: r };
                self.err(
                    &at,
                    &["spec", "isDefault"],
                    format!("a second default SecretBackend (the first is at {first}); exactly one may be the default"),
                );
            }
        }
    }
}

/// Load and validate files in one go.
///
/// # Errors
/// All decoding and validation problems, sorted by position.
pub fn check(files: &[crate::load::SourceFile]) -> Result<DesiredState, Diagnostics> {
    finish(crate::load::load(files))
}

/// [`check`], decoding only the files `cache` does not already hold (see
/// [`crate::load::FileCache`]); the result is the same as [`check`]'s. The whole state is
/// validated again: references cross files, so any change can affect any resource.
///
/// # Errors
/// As [`check`].
pub fn check_cached(files: &[crate::load::SourceFile], cache: &mut crate::load::FileCache) -> Result<DesiredState, Diagnostics> {
    finish(crate::load::load_cached(files, cache))
}

/// Validate what a load decoded (see [`crate::load::load_cached`]): the second half of
/// [`check`], for a caller that does something with its cache between the two.
///
/// # Errors
/// As [`check`].
pub fn check_loaded(loaded: crate::load::Loaded) -> Result<DesiredState, Diagnostics> {
    finish(loaded)
}

fn finish(loaded: crate::load::Loaded) -> Result<DesiredState, Diagnostics> {
    let mut diags = loaded.diagnostics;
    match validate_with(loaded.resources, &loaded.broken, loaded.hashes) {
        Ok(state) if diags.is_empty() => Ok(state),
        Ok(_) => Err(Diagnostics::sorted(diags)),
        Err(more) => {
            diags.extend(more.0);
            Err(Diagnostics::sorted(diags))
        }
    }
}
