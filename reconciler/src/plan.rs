//! The plan: desired state vs stored state → ordered creates, updates and deletes with field-level
//! diffs. A pure function: no I/O, so it is property-tested and benchmarked alone.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use schema::spec::SecretKeyRef;
use schema::{is_sensitive, DesiredState, Kind, Resource, ResourceKey, Spec};

/// Version of the JSON plan format (`mcpctl plan --format json`).
pub const FORMAT_VERSION: u32 = 1;

/// What a stored row holds, as far as planning cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResource {
    pub key: ResourceKey,
    /// Canonical JSON body.
    pub body: String,
    /// SHA-256 of `body` (recomputed on read, so an edited body cannot hide behind its hash).
    pub hash: String,
    pub source: Option<String>,
    pub revision: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// One changed field. Sensitive values are never carried: `before`/`after` are `null` and
/// `sensitive` is true.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Dotted path, e.g. `spec.env[0].value`.
    pub path: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    #[serde(default)]
    pub sensitive: bool,
}

/// One resource to change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub action: Action,
    pub kind: Kind,
    pub project: Option<String>,
    pub name: String,
    pub fields: Vec<FieldChange>,
    /// The canonical body to write (creates and updates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<Value>,
    /// `file:line:col` of the desired resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What a changed Secret affects, one line per key: "value of api-keys/openai changed →
    /// restarts servers fetch, search; agents assistant use it". Never a value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<String>,
}

impl Change {
    pub fn key(&self) -> ResourceKey {
        ResourceKey::new(self.kind, self.project.as_deref(), &self.name)
    }
}

/// Counts of a plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Summary {
    pub fn is_empty(&self) -> bool {
        self.add + self.change + self.destroy == 0
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} to add, {} to change, {} to destroy", self.add, self.change, self.destroy)
    }
}

/// A complete plan; serialized as the stable JSON plan format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub format_version: u32,
    /// Commit sha, or `sha256:<content hash>` for a directory.
    pub revision: String,
    /// Fingerprint of the store the plan was computed against; apply refuses if it moved.
    pub base_fingerprint: String,
    pub summary: Summary,
    pub changes: Vec<Change>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether applying this plan to a store of `stored` resources leaves it empty: every stored
    /// resource deleted and nothing created. The mass-deletion guard of `apply` and the
    /// reconciler refuses that unless allowed explicitly.
    pub fn empties_store(&self, stored: usize) -> bool {
        stored > 0 && self.changes.iter().all(|c| c.action == Action::Delete) && self.changes.len() == stored
    }
}

/// What planning needs to know of every stored row: its key and the hash of its body.
pub trait StoredRow {
    fn key(&self) -> &ResourceKey;
    /// SHA-256 of the row's body, hex, computed from the body as read.
    fn hash(&self) -> &str;
}

impl StoredRow for StoredResource {
    fn key(&self) -> &ResourceKey {
        &self.key
    }
    fn hash(&self) -> &str {
        &self.hash
    }
}

/// A stored row as far as an unchanged resource matters: its key and body hash, without the
/// body. [`plan_hashed`] plans against these and needs bodies only for the rows it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHash {
    pub key: ResourceKey,
    /// SHA-256 of the row's body, hex (recomputed on read, as [`StoredResource::hash`]).
    pub hash: String,
}

impl StoredRow for StoredHash {
    fn key(&self) -> &ResourceKey {
        &self.key
    }
    fn hash(&self) -> &str {
        &self.hash
    }
}

/// Fingerprint of a stored state: SHA-256 over every key and body hash, in key order.
pub fn fingerprint<R: StoredRow>(stored: &[R]) -> String {
    fingerprint_sorted(sorted_rows(stored))
}

/// [`fingerprint`] of (key, body hash) pairs in any order.
pub fn fingerprint_of(mut rows: Vec<(ResourceKey, String)>) -> String {
    rows.sort_unstable();
    fingerprint_sorted(rows.iter().map(|(k, h)| (k, h.as_str())))
}

/// The fingerprint hash over pairs already in key order (keys are unique, so the order of the
/// pairs is the order of their keys).
fn fingerprint_sorted<'a>(rows: impl IntoIterator<Item = (&'a ResourceKey, &'a str)>) -> String {
    let mut h = Sha256::new();
    for (k, hash) in rows {
        // The bytes of `format!("{k}\0{hash}\n")`, without formatting.
        h.update(k.kind.as_str().as_bytes());
        h.update(b"/");
        if let Some(p) = k.project() {
            h.update(p.as_bytes());
            h.update(b"/");
        }
        h.update(k.name.as_bytes());
        h.update(b"\0");
        h.update(hash.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// SHA-256 of a body, hex.
pub fn body_hash(body: &str) -> String {
    schema::resource::body_hash(body)
}

/// Compute the plan that turns `stored` into `desired`.
///
/// # Guarantees
/// Creates and updates come in dependency order (`Kind` order, then project and name); deletes
/// follow, in reverse order. Planning a state against itself yields no changes.
pub fn plan(desired: &DesiredState, stored: &[StoredResource], revision: &str) -> Plan {
    let by_key: HashMap<&ResourceKey, &StoredResource> = stored.iter().map(|s| (&s.key, s)).collect();
    plan_rows(desired, stored, |k| by_key.get(k).copied(), revision)
}

/// The keys of the stored rows whose bodies [`plan_hashed`] needs: those the plan of `desired`
/// against `stored` updates or deletes. For a reader that fetches only those bodies.
pub fn changed_keys(desired: &DesiredState, stored: &[StoredHash]) -> Vec<ResourceKey> {
    let mut keys = Vec::new();
    pair_up(desired, &sorted_rows(stored), |pair| match pair {
        Pair::Both(_, want, have) if want != have => keys.push(pair.key()),
        Pair::Stored(_) => keys.push(pair.key()),
        _ => {}
    });
    keys
}

/// [`plan`] against the stored rows' keys and hashes, with the full rows of
/// [`changed_keys`] in `changed` (any order; rows of other keys are ignored).
///
/// # Guarantees
/// The plan [`plan`] makes against the full rows, when `stored` and `changed` were read from
/// the same state of the store (one transaction): same changes, same order, same fingerprint.
/// A changed key missing from `changed` (which that read rules out) plans as a body that does
/// not decode: the change is still there, its field diff is against nothing.
pub fn plan_hashed(desired: &DesiredState, stored: &[StoredHash], changed: &[StoredResource], revision: &str) -> Plan {
    let by_key: HashMap<&ResourceKey, &StoredResource> = changed.iter().map(|s| (&s.key, s)).collect();
    plan_rows(desired, stored, |k| by_key.get(k).copied(), revision)
}

/// (key, body hash) of every stored row, in key order.
fn sorted_rows<R: StoredRow>(stored: &[R]) -> Vec<(&ResourceKey, &str)> {
    let mut rows: Vec<(&ResourceKey, &str)> = stored.iter().map(|s| (s.key(), s.hash())).collect();
    rows.sort_unstable();
    rows
}

/// A desired resource and a stored row of the same key, or either alone.
enum Pair<'a> {
    /// Desired; nothing stored.
    Desired(&'a Resource),
    /// Stored only.
    Stored(&'a ResourceKey),
    /// Both: the resource, its hash, the stored row's hash.
    Both(&'a Resource, &'a str, &'a str),
}

impl Pair<'_> {
    fn key(&self) -> ResourceKey {
        match self {
            Pair::Desired(r) | Pair::Both(r, _, _) => r.key(),
            Pair::Stored(k) => (*k).clone(),
        }
    }
}

/// `each` of the desired resources and the stored `rows` (in key order) paired by key, in key
/// order. Desired resources are in key order too, so this is one walk over both: no map, and no
/// key built for a resource.
fn pair_up<'a>(desired: &'a DesiredState, rows: &[(&'a ResourceKey, &'a str)], mut each: impl FnMut(Pair<'a>)) {
    let mut rest = rows.iter().copied().peekable();
    for (res, hash) in desired.resources().iter().zip(desired.hashes()) {
        let parts = res.key_parts();
        while let Some((k, _)) = rest.next_if(|(k, _)| k.parts() < parts) {
            each(Pair::Stored(k));
        }
        match rest.next_if(|(k, _)| k.parts() == parts) {
            Some((_, have)) => each(Pair::Both(res, hash, have)),
            None => each(Pair::Desired(res)),
        }
    }
    rest.for_each(|(k, _)| each(Pair::Stored(k)));
}

/// The plan, from every stored row's key and hash plus `full`, the whole row of a key that the
/// plan updates or deletes.
fn plan_rows<'a, R: StoredRow>(
    desired: &DesiredState,
    stored: &[R],
    full: impl Fn(&ResourceKey) -> Option<&'a StoredResource>,
    revision: &str,
) -> Plan {
    let rows = sorted_rows(stored);
    let mut changes = Vec::new();
    let mut summary = Summary::default();
    let mut deletes: Vec<&ResourceKey> = Vec::new();
    pair_up(desired, &rows, |pair| {
        let (res, action) = match pair {
            Pair::Stored(k) => return deletes.push(k),
            Pair::Both(_, want, have) if want == have => return,
            Pair::Both(res, _, _) => (res, Action::Update),
            Pair::Desired(res) => (res, Action::Create),
        };
        let key = res.key();
        // Only changed resources pay for a JSON tree: the unchanged ones were settled by hash.
        let after: Value = res.to_json();
        let before = match action {
            Action::Update => full(&key).and_then(|s| serde_json::from_str(&s.body).ok()).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        let fields = field_changes(key.kind, &before, &after);
        let effects = if key.kind == Kind::Secret && action == Action::Update { secret_effects(desired, res, &fields) } else { Vec::new() };
        if action == Action::Create {
            summary.add += 1;
        } else {
            summary.change += 1;
        }
        changes.push(Change {
            action,
            kind: key.kind,
            project: key.project().map(str::to_string),
            name: key.name.clone(),
            fields,
            effects,
            desired: Some(after),
            source: res.source(),
        });
    });
    // Deletes in reverse key order.
    for key in deletes.into_iter().rev() {
        summary.destroy += 1;
        let row = full(key);
        let before: Value = row.and_then(|s| serde_json::from_str(&s.body).ok()).unwrap_or(Value::Null);
        changes.push(Change {
            action: Action::Delete,
            kind: key.kind,
            project: key.project().map(str::to_string),
            name: key.name.clone(),
            fields: field_changes(key.kind, &before, &Value::Null),
            desired: None,
            source: row.and_then(|s| s.source.clone()),
            effects: Vec::new(),
        });
    }
    Plan { format_version: FORMAT_VERSION, revision: revision.to_string(), base_fingerprint: fingerprint_sorted(rows), summary, changes }
}

/// Leaf values of a JSON document by dotted path (`spec.env[0].name`).
pub fn flatten(v: &Value) -> BTreeMap<String, Value> {
    fn go(prefix: String, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(o) if !o.is_empty() => {
                for (k, x) in o {
                    let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    go(p, x, out);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                for (i, x) in a.iter().enumerate() {
                    go(format!("{prefix}[{i}]"), x, out);
                }
            }
            Value::Null if prefix.is_empty() => {}
            _ => {
                out.insert(prefix, v.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    go(String::new(), v, &mut out);
    out
}

/// Field-level differences between two bodies; `apiVersion` and `kind` are left out.
pub fn field_changes(kind: Kind, before: &Value, after: &Value) -> Vec<FieldChange> {
    let a = flatten(before);
    let b = flatten(after);
    let mut paths: Vec<&String> = a.keys().chain(b.keys()).filter(|p| *p != "apiVersion" && *p != "kind").collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|p| {
            let (x, y) = (a.get(p), b.get(p));
            if x == y {
                return None;
            }
            let sensitive = is_sensitive(kind, p);
            Some(FieldChange {
                path: p.clone(),
                before: if sensitive { None } else { x.cloned() },
                after: if sensitive { None } else { y.cloned() },
                sensitive,
            })
        })
        .collect()
}

/// Display name of a resource: `name`, or `project/name` in a project.
fn display(r: &Resource) -> String {
    match &r.metadata.project {
        Some(p) => format!("{p}/{}", r.metadata.name),
        None => r.metadata.name.clone(),
    }
}

/// Whether `r`, referenced from `from`, means key `key` of `secret`.
fn refers(state: &DesiredState, from: Option<&str>, r: &SecretKeyRef, secret: &Resource, key: &str) -> bool {
    r.key == key && state.resolve(Kind::Secret, &r.name, from).is_some_and(|s| s.key() == secret.key())
}

/// One line per changed key of an updated Secret: which servers restart (their env takes the
/// value) and which agents use it (through an LLM's `apiKey`, or a restarted server of their
/// project). A change of `backend`/`externalRef` counts as a change of every key.
fn secret_effects(state: &DesiredState, secret: &Resource, fields: &[FieldChange]) -> Vec<String> {
    let Spec::Secret(spec) = &secret.spec else { return Vec::new() };
    let moved = fields.iter().any(|f| f.path == "spec.externalRef" || f.path == "spec.backend");
    let refs: Vec<(&Resource, Option<&str>, SecretKeyRef)> =
        state.resources().iter().flat_map(|r| refs_of(r).into_iter().map(move |(from, x)| (r, from, x))).collect();
    let mut keys: Vec<String> = fields
        .iter()
        .filter_map(|f| f.path.strip_prefix("spec.data."))
        .filter(|k| spec.data.contains_key(*k))
        .map(str::to_string)
        .collect();
    if moved {
        // Every key in use: an external secret's keys are known only from its users.
        keys.extend(spec.data.keys().cloned());
        keys.extend(
            refs.iter()
                .filter(|(_, from, x)| state.resolve(Kind::Secret, &x.name, *from).is_some_and(|s| s.key() == secret.key()))
                .map(|(_, _, x)| x.key.clone()),
        );
    }
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let users: Vec<&Resource> = refs.iter().filter(|(_, from, x)| refers(state, *from, x, secret, &key)).map(|(r, _, _)| *r).collect();
        let servers: Vec<&Resource> = users.iter().copied().filter(|r| r.kind() == Kind::Server).collect();
        let llms: Vec<&Resource> = users.iter().copied().filter(|r| r.kind() == Kind::Llm).collect();
        let mut agents: Vec<String> = state
            .of_kind(Kind::Agent)
            .filter(|a| {
                let Spec::Agent(ag) = &a.spec else { return false };
                let via_llm = state.resolve(Kind::Llm, &ag.llm, a.metadata.project.as_deref()).is_some_and(|l| llms.iter().any(|x| x.key() == l.key()));
                let via_server = a.metadata.project.as_deref().and_then(|p| state.resolve(Kind::Project, p, None)).is_some_and(|p| {
                    matches!(&p.spec, Spec::Project(ps) if ps.servers.iter().any(|n| servers.iter().any(|s| s.metadata.name == *n && s.metadata.project.as_deref().is_none_or(|sp| Some(sp) == a.metadata.project.as_deref()))))
                });
                via_llm || via_server
            })
            .map(display)
            .collect();
        agents.sort();
        let mut line = format!("{} of {}/{key} changed", if moved { "source" } else { "value" }, display(secret));
        let names = |v: &[&Resource]| v.iter().map(|r| display(r)).collect::<Vec<_>>().join(", ");
        let mut parts = Vec::new();
        if !servers.is_empty() {
            parts.push(format!("restarts {} {}", if servers.len() == 1 { "server" } else { "servers" }, names(&servers)));
        }
        if !llms.is_empty() {
            parts.push(format!(
                "{} {} {} it",
                if llms.len() == 1 { "LLM" } else { "LLMs" },
                names(&llms),
                if llms.len() == 1 { "uses" } else { "use" }
            ));
        }
        if !agents.is_empty() {
            parts.push(format!(
                "{} {} {} it",
                if agents.len() == 1 { "agent" } else { "agents" },
                agents.join(", "),
                if agents.len() == 1 { "uses" } else { "use" }
            ));
        }
        if parts.is_empty() {
            line.push_str(" → used by nothing");
        } else {
            line.push_str(" → ");
            line.push_str(&parts.join("; "));
        }
        out.push(line);
    }
    out
}

/// The secret references of a resource, each with the project it resolves from.
fn refs_of(r: &Resource) -> Vec<(Option<&str>, SecretKeyRef)> {
    let from = r.metadata.project.as_deref();
    match &r.spec {
        Spec::Server(s) => s.env.iter().filter_map(|e| e.value_from.as_ref()).map(|v| (from, v.secret_ref.clone())).collect(),
        Spec::Llm(l) => l.api_key.iter().map(|k| (from, k.secret_ref.clone())).collect(),
        _ => Vec::new(),
    }
}
