//! A resource: kind, metadata and typed spec, its identity key, and its canonical JSON body (what
//! the store keeps and the plan compares).

use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::document::{Node, Pos, Seg};
use crate::kind::Kind;
use crate::spec::*;
use crate::string_map::StringMap;

/// The only API version this build understands.
pub const API_VERSION: &str = "mcpctl.io/v1";

/// Identity and labels of a resource.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// DNS-1123 label: lower-case letters, digits and `-`, at most 63 characters.
    pub name: String,
    /// The project this resource lives in (required for Agent, Personality, Prompt, McpToken;
    /// optional for Server, Secret, RbacDefinition; not allowed on other kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub labels: StringMap,
    #[serde(default, skip_serializing_if = "StringMap::is_empty")]
    pub annotations: StringMap,
}

macro_rules! specs {
    ($($kind:ident($ty:ty)),* $(,)?) => {
        /// The typed spec of a resource, one variant per kind.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Spec { $($kind($ty)),* }

        impl Spec {
            pub fn kind(&self) -> Kind {
                match self { $(Spec::$kind(_) => Kind::$kind),* }
            }

            /// Deserialize the spec of `kind` from any deserializer (no error path).
            fn deserialize_kind<'de, D: serde::Deserializer<'de>>(kind: Kind, d: D) -> Result<Spec, D::Error> {
                Ok(match kind { $(Kind::$kind => Spec::$kind(<$ty>::deserialize(d)?)),* })
            }

            /// Deserialize the spec of `kind`, reporting the path of the first error.
            pub fn from_json(kind: Kind, value: serde_json::Value) -> Result<Spec, serde_path_to_error::Error<serde_json::Error>> {
                Ok(match kind { $(Kind::$kind => Spec::$kind(serde_path_to_error::deserialize(value)?)),* })
            }
        }

        /// JSON Schema of each kind's spec.
        pub(crate) fn spec_schema(kind: Kind, gen: &mut schemars::SchemaGenerator) -> schemars::Schema {
            match kind { $(Kind::$kind => gen.subschema_for::<$ty>()),* }
        }
    };
}

specs! {
    SecretBackend(SecretBackendSpec),
    Secret(SecretSpec),
    User(UserSpec),
    Group(GroupSpec),
    Template(TemplateSpec),
    Server(ServerSpec),
    Project(ProjectSpec),
    Llm(LlmSpec),
    Agent(AgentSpec),
    Personality(PersonalitySpec),
    Prompt(PromptSpec),
    McpToken(McpTokenSpec),
    RbacDefinition(RbacDefinitionSpec),
}

/// Identity of a resource: unique per kind within a project ("" = outside any project).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceKey {
    pub kind: Kind,
    #[serde(default)]
    pub project: String,
    pub name: String,
}

impl ResourceKey {
    pub fn new(kind: Kind, project: Option<&str>, name: &str) -> Self {
        Self { kind, project: project.unwrap_or_default().to_string(), name: name.to_string() }
    }

    pub fn project(&self) -> Option<&str> {
        (!self.project.is_empty()).then_some(self.project.as_str())
    }

    /// Kind, project ("" outside any) and name, borrowed: they compare as the key does.
    pub fn parts(&self) -> (Kind, &str, &str) {
        (self.kind, &self.project, &self.name)
    }
}

impl fmt::Display for ResourceKey {
    /// `Kind/name`, or `Kind/project/name` inside a project.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.project() {
            Some(p) => write!(f, "{}/{}/{}", self.kind, p, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// Where a resource was written: its file and where in it (for error positions found later).
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: Arc<str>,
    pub node: NodeAt,
}

impl Origin {
    /// Position of the value at `path` (e.g. `["spec", "llm"]`) inside this resource.
    pub fn pos(&self, path: &[&str]) -> Pos {
        let segs: Vec<Seg> = path.iter().map(|s| Seg::Key((*s).to_string())).collect();
        self.node.locate(&segs)
    }

    pub fn pos_segs(&self, path: &[Seg]) -> Pos {
        self.node.locate(path)
    }
}

/// A resource's YAML node, kept as its position and address in the file's text instead of the
/// node itself: a resource costs a few words here, not its whole positioned tree (about six
/// times its YAML). The position of a field deeper in it (needed only for an error) is found by
/// parsing the file's text again, once per file, when first asked.
///
/// # Guarantees
/// [`NodeAt::locate`] gives what `locate` on the node kept at decoding gave: the text is the one
/// that was decoded, parsing is deterministic and it succeeded then (within a budget no larger
/// than the one used here), and the address leads to the same node.
#[derive(Debug, Clone)]
pub struct NodeAt {
    /// Where the resource's node starts.
    pub pos: Pos,
    text: Arc<FileText>,
    addr: Addr,
}

/// How to reach a resource's node from the documents of its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Addr {
    /// Document `doc` is the resource.
    Doc(u32),
    /// Item `item` of the array of document `doc` (a JSON file holding an array).
    Item(u32, u32),
    /// Item `item` of the list of kind `group` in document `doc` (the grouped form).
    Group(u32, Kind, u32),
}

/// The text of one resource file, shared by its resources (and with the [`crate::SourceFile`] it
/// was read from: the bytes are not copied), and its tree once parsed again.
pub(crate) struct FileText {
    /// Valid UTF-8 (checked by [`FileText::new`]).
    bytes: Arc<[u8]>,
    tree: std::sync::OnceLock<Vec<Node>>,
}

impl fmt::Debug for FileText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileText({} bytes, parsed again: {})", self.bytes.len(), self.tree.get().is_some())
    }
}

impl FileText {
    /// `None` when `bytes` is not UTF-8.
    pub(crate) fn new(bytes: Arc<[u8]>) -> Option<Arc<FileText>> {
        std::str::from_utf8(&bytes).ok()?;
        Some(Arc::new(FileText { bytes, tree: std::sync::OnceLock::new() }))
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.bytes).unwrap_or_default()
    }
}

impl NodeAt {
    pub(crate) fn new(pos: Pos, text: Arc<FileText>, addr: Addr) -> Self {
        Self { pos, text, addr }
    }

    pub(crate) fn addr(&self) -> Addr {
        self.addr
    }

    /// Where the value at `path` inside the resource starts (the deepest node reached when the
    /// path leaves the tree), as [`Node::locate`] without key positions.
    pub fn locate(&self, path: &[Seg]) -> Pos {
        if path.is_empty() {
            return self.pos;
        }
        self.with_node(|n| n.locate(path, false)).unwrap_or(self.pos)
    }

    /// `f` applied to the resource's node, parsed again from the file's text (once per file);
    /// `None` when the text no longer parses to it. For editors that rewrite the file in place.
    pub fn with_node<R>(&self, f: impl FnOnce(&Node) -> R) -> Option<R> {
        let tree = self.text.tree.get_or_init(|| crate::document::parse(self.text.text()).unwrap_or_default());
        let node = match self.addr {
            Addr::Doc(d) => tree.get(d as usize),
            Addr::Item(d, i) => tree.get(d as usize).and_then(|n| n.item(i as usize)),
            Addr::Group(d, kind, i) => tree.get(d as usize).and_then(|n| n.get(kind.group_key())).and_then(|n| n.item(i as usize)),
        };
        node.map(f)
    }
}

/// One desired or stored resource.
#[derive(Debug, Clone)]
pub struct Resource {
    pub metadata: Metadata,
    pub spec: Spec,
    /// Set for resources loaded from files; `None` for resources read back from the store.
    pub origin: Option<Origin>,
}

/// The serialized shape of a resource (the canonical body).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    api_version: &'a str,
    kind: Kind,
    metadata: &'a Metadata,
    spec: &'a Spec,
}

/// Error turning a stored body back into a resource.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("stored body is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("stored body has no `{0}`")]
    Missing(&'static str),
    #[error("stored body has unknown kind `{0}`")]
    Kind(String),
    #[error("stored body does not match kind {kind}: {source}")]
    Spec { kind: Kind, source: serde_path_to_error::Error<serde_json::Error> },
}

impl Resource {
    pub fn kind(&self) -> Kind {
        self.spec.kind()
    }

    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    pub fn key(&self) -> ResourceKey {
        ResourceKey::new(self.kind(), self.metadata.project.as_deref(), &self.metadata.name)
    }

    /// [`ResourceKey::parts`] of [`Resource::key`], without building the key.
    pub fn key_parts(&self) -> (Kind, &str, &str) {
        (self.kind(), self.metadata.project.as_deref().unwrap_or(""), &self.metadata.name)
    }

    /// Canonical JSON (`apiVersion`, `kind`, `metadata`, `spec`), independent of how the YAML was
    /// written: defaults filled, maps sorted, empty fields dropped.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.envelope()).expect("resource serializes")
    }

    /// The canonical body as compact JSON text, and its SHA-256 in hex.
    pub fn body_and_hash(&self) -> (String, String) {
        let body = self.body();
        let hash = body_hash(&body);
        (body, hash)
    }

    /// The canonical body as compact JSON text: the text of [`Resource::to_json`], serialized
    /// directly (serde_json keeps struct field order and sorts the maps either way, so the
    /// bytes are the same without building the `Value` tree first).
    pub fn body(&self) -> String {
        serde_json::to_string(&self.envelope()).expect("resource serializes")
    }

    /// SHA-256 in hex of the canonical body, streamed into the hasher: no body is built.
    pub fn hash(&self) -> String {
        /// `io::Write` into a SHA-256.
        struct HashWriter(Sha256);
        impl std::io::Write for HashWriter {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.update(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut w = std::io::BufWriter::with_capacity(4096, HashWriter(Sha256::new()));
        serde_json::to_writer(&mut w, &self.envelope()).expect("resource serializes");
        let HashWriter(h) = w.into_inner().map_err(|_| ()).expect("hashing cannot fail");
        hex_digest(&h.finalize())
    }

    fn envelope(&self) -> Envelope<'_> {
        Envelope { api_version: API_VERSION, kind: self.kind(), metadata: &self.metadata, spec: &self.spec }
    }

    /// Parse a canonical body written by [`Resource::body_and_hash`].
    ///
    /// # Errors
    /// When the body is not JSON or does not fit its kind (e.g. written by a newer mcpctl).
    pub fn from_body(body: &str) -> Result<Resource, BodyError> {
        // Straight from the text into the types when the body is canonical (`kind` before
        // `spec`, as `body` writes it); anything else takes the way through a JSON tree, which
        // also names the path of an error.
        if let Ok(Canonical(Some(res))) = serde_json::from_str::<Canonical>(body) {
            return Ok(res);
        }
        let mut value: serde_json::Value = serde_json::from_str(body)?;
        let obj = value.as_object_mut().ok_or(BodyError::Missing("kind"))?;
        let kind_str = obj.get("kind").and_then(|k| k.as_str()).ok_or(BodyError::Missing("kind"))?;
        let kind = Kind::from_kind_field(kind_str).ok_or_else(|| BodyError::Kind(kind_str.into()))?;
        let metadata = serde_json::from_value(obj.remove("metadata").ok_or(BodyError::Missing("metadata"))?)?;
        let spec_json = obj.remove("spec").unwrap_or(serde_json::Value::Object(Default::default()));
        let spec = Spec::from_json(kind, spec_json).map_err(|source| BodyError::Spec { kind, source })?;
        Ok(Resource { metadata, spec, origin: None })
    }

    /// `file:line:col` of the resource, when it came from a file.
    pub fn source(&self) -> Option<String> {
        self.origin.as_ref().map(|o| format!("{}:{}", o.file, o.node.pos))
    }
}

/// A canonical body decoded in one pass: `None` when its layout is not the canonical one.
struct Canonical(Option<Resource>);

impl<'de> Deserialize<'de> for Canonical {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        struct SpecOf(Kind);
        impl<'de> serde::de::DeserializeSeed<'de> for SpecOf {
            type Value = Spec;
            fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Spec, D::Error> {
                Spec::deserialize_kind(self.0, d)
            }
        }
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Canonical;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a canonical resource body")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Canonical, A::Error> {
                let (mut kind, mut metadata, mut spec) = (None, None, None);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "apiVersion" => drop(map.next_value::<serde::de::IgnoredAny>()?),
                        "kind" => {
                            let k: std::borrow::Cow<'de, str> = map.next_value()?;
                            match Kind::from_kind_field(&k) {
                                Some(k) => kind = Some(k),
                                None => return Ok(Canonical(None)),
                            }
                        }
                        "metadata" => metadata = Some(map.next_value::<Metadata>()?),
                        "spec" => match kind {
                            Some(k) => spec = Some(map.next_value_seed(SpecOf(k))?),
                            None => return Ok(Canonical(None)),
                        },
                        _ => return Ok(Canonical(None)),
                    }
                }
                Ok(Canonical(match (kind, metadata, spec) {
                    (Some(_), Some(metadata), Some(spec)) => Some(Resource { metadata, spec, origin: None }),
                    _ => None,
                }))
            }
        }
        d.deserialize_map(V)
    }
}

/// SHA-256 in hex of a canonical body's text: [`Resource::hash`] of the resource it encodes.
pub fn body_hash(body: &str) -> String {
    hex_digest(&Sha256::digest(body.as_bytes()))
}

/// A SHA-256 digest in lower-case hex (as `hex::encode`, without its per-character iterator:
/// every resource's hash is made this way).
pub fn hex_digest(digest: &[u8]) -> String {
    let mut out = [0u8; 64];
    hex::encode_to_slice(digest, &mut out).expect("a SHA-256 digest is 32 bytes");
    String::from_utf8(out.to_vec()).expect("hex is ASCII")
}

/// Fields whose values are secret: never printed, diffed only as "(sensitive value changed)".
/// Paths are JSON-pointer-like with `*` for any key.
pub fn is_sensitive(kind: Kind, path: &str) -> bool {
    kind == Kind::Secret && path.starts_with("spec.data.")
}
