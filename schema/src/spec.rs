//! The `spec` of every kind, as users write it. Strict: unknown fields are rejected. Defaults live
//! here and nowhere else. Doc comments become the JSON Schema descriptions and the field reference
//! in `docs/resources.md`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn is_false(b: &bool) -> bool {
    !*b
}
fn yes() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_true(b: &bool) -> bool {
    *b
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}
fn one() -> u32 {
    1
}
fn is_one(n: &u32) -> bool {
    *n == 1
}

/// A project: one MCP endpoint (`/projects/<name>/mcp`) exposing a set of servers.
///
/// The prompts a project carries are the `Prompt`s in it (`metadata.project`) with
/// `scope: project`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProjectSpec {
    /// Human-readable description, shown to MCP clients as the server instructions' title.
    /// Free text, shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Servers this project exposes (names of `Server`s, global or in this project).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// Gated sessions: a new session sees only `begin_session` and the prompts until it calls it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub gated: bool,
    /// Instructions returned by `begin_session` (gated projects) and in `initialize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Serve this project without authentication. Off unless set explicitly.
    #[serde(default, skip_serializing_if = "is_false")]
    pub public: bool,
    /// Name tools and prompts `<server>__<name>` (default). `false` exposes a single-server
    /// project's tools under their own names; only allowed with exactly one server.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub prefix_tools: bool,
    /// How `begin_session` chooses the project prompts relevant to the `task` a session names
    /// (gated projects). Without it: local BM25 ranking, at most 3 prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateSpec>,
}

/// Prompt selection of `begin_session` (see docs/personalities.md, "Prompt intelligence").
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GateSpec {
    /// An `Llm` that picks the prompts for the task; when it fails (unreachable, timeout, an
    /// answer naming no prompt) the local BM25 ranking is used. Without it: BM25 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm: Option<String>,
    /// Most prompts returned with the instructions (default 3, at least 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prompts: Option<u32>,
}

impl GateSpec {
    /// Prompts returned when `maxPrompts` is not set.
    pub const DEFAULT_MAX_PROMPTS: u32 = 3;

    /// `maxPrompts` once the default applies.
    pub fn max_prompts(&self) -> usize {
        self.max_prompts.unwrap_or(Self::DEFAULT_MAX_PROMPTS) as usize
    }
}

/// How the gateway talks to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// JSON-RPC over the process's stdin/stdout.
    Stdio,
    /// MCP Streamable HTTP.
    Http,
    /// The legacy HTTP+SSE transport (2024-11-05).
    Sse,
}

/// Which package runner starts a `packageName` server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Runner {
    /// `npx -y <package>` (npm registry).
    #[default]
    Npx,
    /// `uvx <package>` (PyPI).
    Uvx,
}

/// A reference to one key of a `Secret`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the `Secret` (in the referrer's project, else global).
    pub name: String,
    /// Key inside the secret's `data`.
    pub key: String,
}

/// Where a value comes from when it is not written inline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValueFrom {
    pub secret_ref: SecretKeyRef,
}

/// An environment variable: either `value` or `valueFrom`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvVar {
    /// Variable name (`[A-Za-z_][A-Za-z0-9_]*`).
    pub name: String,
    /// Literal value. Anything written here is visible in git: use `valueFrom` for credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Value taken from a secret key at start; never stored in plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

/// Compute resources for container runtimes (Kubernetes quantities).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Resources {
    /// CPU limit, e.g. `500m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Memory limit, e.g. `256Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// Health checking: an MCP `ping` (stdio) or an HTTP request (url servers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheck {
    /// Seconds between checks (default 30).
    #[serde(default = "HealthCheck::default_interval")]
    pub interval_seconds: u32,
    /// Seconds before a check counts as failed (default 5).
    #[serde(default = "HealthCheck::default_timeout")]
    pub timeout_seconds: u32,
    /// Consecutive failures before the server is restarted / marked unhealthy (default 3).
    #[serde(default = "HealthCheck::default_failures")]
    pub failure_threshold: u32,
}

impl HealthCheck {
    fn default_interval() -> u32 {
        30
    }
    fn default_timeout() -> u32 {
        5
    }
    fn default_failures() -> u32 {
        3
    }
}

/// Instantiate a `Template` with parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TemplateInstance {
    /// Name of the `Template`.
    pub name: String,
    /// Values for the template's parameters; `{{name}}` in the template is replaced.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

/// An MCP server. Exactly one of `command`, `packageName`, `image`, `url` or `fromTemplate`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerSpec {
    /// Free text, shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `stdio`, `http` or `sse`. Default: `http` for `url` servers, else `stdio`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// Executable to run (local runtime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Arguments for `command`, `packageName` or `image`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Package started by `runner` (npx or uvx), e.g. `mcp-server-time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_name: Option<String>,
    /// Package runner for `packageName` (default `npx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<Runner>,
    /// Container image (Kubernetes runtime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// URL of a remote MCP endpoint (`http`/`sse` transport).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Build this server from a `Template`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_template: Option<TemplateInstance>,
    /// Environment for the process or container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Replicas (container runtimes; default 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub replicas: u32,
    /// CPU and memory limits (container runtimes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Health checking; defaults apply when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthCheck>,
    /// Per-call timeout in seconds at the gateway (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
}

impl ServerSpec {
    /// The transport in force once defaults apply.
    pub fn effective_transport(&self) -> Transport {
        self.transport.unwrap_or(if self.url.is_some() { Transport::Http } else { Transport::Stdio })
    }
}

/// One parameter of a `Template`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TemplateParameter {
    /// Parameter name, used as `{{name}}` in the template.
    pub name: String,
    /// Free text, shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Servers must supply it when there is no `default`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// Value used when a server does not give one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// A parameterised server: `{{param}}` in any string of `server` is substituted.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TemplateSpec {
    /// Free text, shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Declared parameters; every `{{name}}` used in `server` must be one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<TemplateParameter>,
    /// The server body (it may not itself use `fromTemplate`).
    pub server: ServerSpec,
}

/// A secret: named values, each age-encrypted (ASCII armor) in git.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretSpec {
    /// Free text, shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `SecretBackend` holding the values (default: the default backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Key → age ciphertext (`-----BEGIN AGE ENCRYPTED FILE-----` …). Never printed.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    /// Path of existing values in an external backend (OpenBao: the KV v2 path under the mount,
    /// e.g. `team/openai`). Its keys are read from there at server start; `data` stays empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ref: Option<String>,
}

/// Kind of secret backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecretBackendType {
    /// Values travel in git as age ciphertext and are decrypted by mcpctl.
    Plaintext,
    /// Values live in OpenBao (Vault-compatible KV v2).
    Openbao,
}

/// OpenBao connection settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OpenBaoConfig {
    /// OpenBao address, e.g. `https://bao.internal:8200`.
    pub url: String,
    /// KV v2 mount (default `secret`).
    #[serde(default = "OpenBaoConfig::default_mount")]
    pub mount: String,
    /// Environment variable of the mcpctl process holding the OpenBao token (used when no
    /// `tokenSecretRef` is given).
    #[serde(default = "OpenBaoConfig::default_token_env")]
    pub token_env: String,
    /// The token as a key of a Secret on a `plaintext` backend (the trust root): decrypted with
    /// the installation's identity, cached in memory, read again when OpenBao answers 403.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeyRef>,
}

impl OpenBaoConfig {
    fn default_mount() -> String {
        "secret".into()
    }
    fn default_token_env() -> String {
        "BAO_TOKEN".into()
    }
}

/// Where secret values are kept. Exactly one backend is the default when any exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretBackendSpec {
    #[serde(rename = "type")]
    pub backend_type: SecretBackendType,
    #[serde(default, skip_serializing_if = "is_false")]
    /// This backend holds secrets that name no `backend`. Exactly one backend has it.
    pub is_default: bool,
    /// Free text, shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Required for `type: openbao`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openbao: Option<OpenBaoConfig>,
}

/// LLM API flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// OpenAI Chat Completions and compatible servers (LiteLLM, vLLM, Ollama…).
    Openai,
    /// Anthropic Messages API.
    Anthropic,
}

/// A secret-sourced credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretSource {
    pub secret_ref: SecretKeyRef,
}

/// An LLM endpoint agents can use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LlmSpec {
    pub provider: Provider,
    /// Model name sent to the API, e.g. `gpt-4o-mini`.
    pub model: String,
    /// Base URL (default: the provider's public API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// API key from a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretSource>,
    /// Free text, shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Request timeout in seconds (default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
}

/// Sampling parameters; unset fields fall through (personality → agent → provider default).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Sampling {
    /// 0 to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Upper bound on generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// -2 to 2 (OpenAI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// -2 to 2 (OpenAI only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// Sampling seed, where the provider supports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Extra provider parameters, sent as top-level fields of the request body (e.g. vLLM's
    /// `top_k`, Ollama's `num_ctx`, LiteLLM's `metadata`). Merged key by key like the fields
    /// above; `null` removes a key set by a lower layer. Keys the gateway sets itself (`model`,
    /// `messages`, `tools`, `stream`, the fields above, …) are refused: see
    /// [`crate::agent::check_extra`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Sampling {
    pub fn is_empty(&self) -> bool {
        *self == Sampling::default()
    }
}

/// An agent: an LLM plus a system prompt, using its project's MCP tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AgentSpec {
    /// Name of the `Llm`.
    pub llm: String,
    /// Free text, shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The agent's system prompt (personality and prompts are appended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Sampling::is_empty")]
    pub sampling: Sampling,
    /// A `Personality` of this agent used when a chat names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_personality: Option<String>,
    /// Upper bound on tool-use rounds per chat turn (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tool_iterations: Option<u32>,
}

/// A personality: a variant of one agent (extra system prompt, sampling overrides).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PersonalitySpec {
    /// The `Agent` (same project) this personality belongs to.
    pub agent: String,
    /// Free text, shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Appended to the agent's system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Sampling::is_empty")]
    pub sampling: Sampling,
}

/// Where a prompt applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PromptScope {
    /// Served by the project's MCP endpoint (`prompts/list`) and given to every agent in it.
    #[default]
    Project,
    /// Given to one agent (`agent`) whatever its personality.
    Agent,
    /// Given to one agent only when it speaks as `personality`.
    Personality,
}

/// An argument of an MCP prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PromptArgument {
    /// Argument name, used as `{{name}}` in `content`.
    pub name: String,
    /// Free text, shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Clients must supply it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
}

/// A prompt: text bound to a project, an agent, or a personality of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PromptSpec {
    /// The prompt text. `{{arg}}` is replaced by MCP prompt arguments.
    pub content: String,
    /// Free text, shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub scope: PromptScope,
    /// Required for `agent` and `personality` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Required for `personality` scope; must belong to `agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality: Option<String>,
    /// Lower comes first when several prompts apply (default 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i32,
    /// MCP prompt arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<PromptArgument>,
}

/// Who an RBAC definition applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SubjectKind {
    User,
    Group,
    McpToken,
}

/// A subject of an `RbacDefinition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Subject {
    /// `User`, `Group` or `McpToken`.
    pub kind: SubjectKind,
    /// Name of the subject resource.
    pub name: String,
    /// Project of an `McpToken` subject (default: the definition's project).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// A role a binding grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read (`get`, `describe`, list tools).
    View,
    /// Change (implies view).
    Edit,
    /// Create (implies view).
    Create,
    /// Delete (implies view).
    Delete,
    /// Use: call a server's tools, chat with an agent, or run an `action`.
    Run,
}

/// One grant: `{role, resource, name?}` or `{role: run, action}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleBinding {
    pub role: Role,
    /// Plural kind (`servers`, `agents`…) or `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// One resource by name; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A named operation (only with `role: run`), see `rbac::ACTIONS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// Grants roles to users, groups and tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RbacDefinitionSpec {
    /// Free text, shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Who gets the grants.
    pub subjects: Vec<Subject>,
    /// What they get.
    pub role_bindings: Vec<RoleBinding>,
}

/// A person.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Contact address (must contain `@`).
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Full name for display.
    pub display_name: Option<String>,
    /// A disabled user's grants and tokens stop working (401 from the deploy that disables it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// Login tokens (`mcpctl_usr_…`) of this user, for `mcpctl login` and the REST API: only
    /// their SHA-256 is stored. Minted by `mcpctl create usertoken NAME --user USER`; revoked by
    /// `revoked: true` or by removing the entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<UserToken>,
}

/// One login token of a `User`. Unlike an `McpToken` it belongs to no project and carries no
/// grants of its own: it acts as the user, with the user's and their groups' grants (a
/// project-scoped `RbacDefinition` applies in its project only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserToken {
    /// Names the token within its user (DNS-1123 label, unique per user), e.g. `laptop`.
    pub name: String,
    /// `sha256:<64 hex>` of the raw token (unique across every user and McpToken).
    pub hash: String,
    /// The token's first characters (`mcpctl_usr_` + a few), to recognise it in logs.
    pub prefix: String,
    /// Free text, shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// RFC 3339 expiry; none = does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// A revoked token is refused (401) from the deploy that revokes it on.
    #[serde(default, skip_serializing_if = "is_false")]
    pub revoked: bool,
}

/// A set of users.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupSpec {
    /// Free text, shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Names of `User`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
}

/// A bearer token for one project's MCP endpoint. Only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpTokenSpec {
    /// `sha256:<64 hex>` of the raw token.
    pub hash: String,
    /// The token's first characters (`mcpctl_pat_` + a few), to recognise it in logs.
    pub prefix: String,
    /// Free text, shown by `describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The `User` the token acts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// RFC 3339 expiry; none = does not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// A revoked token is refused (401) from the next cache expiry on.
    #[serde(default, skip_serializing_if = "is_false")]
    pub revoked: bool,
    /// Grants of the token itself (besides `RbacDefinition`s naming it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<RoleBinding>,
    /// The `User` who minted the token (`mcpctl create mcptoken --as`). Its `bindings` must lie
    /// within that user's effective permissions in the token's project (`mcpctl validate`
    /// refuses an escalation; see docs/rbac.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// RFC 3339 time the token was minted (informational; shown by `get mcptokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}
