//! Command-line arguments (clap). Cheap to parse; nothing here touches the disk.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// GitOps for Model Context Protocol infrastructure.
///
/// The repo (current directory, or -C DIR) holds the desired state as YAML; `plan` shows what
/// would change in the runtime database and `apply` makes it so, atomically.
///
/// Exit codes: 0 success (or no changes), 1 error (invalid input, database failure, or a
/// refusal: an apply that would empty the store, a commit not deployed, a read command without a
/// database, a rollback over uncommitted edits), 2 changes present (`plan --detailed-exitcode`).
#[derive(Debug, Parser)]
#[command(name = "mcpctl", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Repo directory holding the YAML (like `git -C`).
    #[arg(short = 'C', long = "repo", global = true, value_name = "DIR", default_value = ".")]
    pub repo: PathBuf,
    /// Runtime database: sqlite://PATH or postgres://… (default: SQLite under the data dir).
    #[arg(long, global = true, env = "MCPCTL_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Color output.
    #[arg(long, global = true, value_enum, default_value_t = ColorMode::Auto)]
    pub color: ColorMode,
    /// Read through this gateway's REST API instead of the database (`get`, `describe`,
    /// `status`, `history`); the token comes from $MCPCTL_TOKEN or the login context of that URL.
    #[arg(long = "server", id = "remote_server", global = true, env = "MCPCTL_URL", value_name = "URL")]
    pub server: Option<String>,
    /// Use this login context (`mcpctl config get-contexts`) instead of the current one.
    #[arg(long, global = true, env = "MCPCTL_CONTEXT", value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorMode {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the repo: YAML syntax, types, names and references. Exit 1 on any error.
    ///
    /// Hostile files are errors, never crashes or silent skips: a file over 8 MiB (refused by its
    /// size before it is read), collections nested deeper than 64 levels, a file whose parsed
    /// tree would exceed 64 MiB (aliases expanded), a symbolic link named like a resource file or
    /// leaving the repo, a FIFO, a repo past 64 MiB of resource files, 256 MiB of trees, 32
    /// directory levels or 100 000 entries, and two McpTokens with one hash are each reported as
    /// `path:line:col: message` (docs/security.md).
    Validate(ValidateArgs),
    /// Show what `apply` would change in the runtime database.
    Plan(PlanArgs),
    /// Apply the repo (or a saved plan) to the runtime database in one transaction. On a terminal
    /// the plan is shown and confirmed first (--auto-approve skips that); a result that deletes
    /// every stored resource is refused unless --allow-empty.
    Apply(ApplyArgs),
    /// List resources from the runtime database.
    Get(GetArgs),
    /// Show one resource in detail.
    Describe(DescribeArgs),
    /// Follow a git branch: every new commit is validated, planned and applied; drift is
    /// reverted. The repo (`--repo`) may be a local path (watched) or a URL (polled, pokable).
    /// On Postgres one reconciler leads (an advisory lock); others wait as standbys and take
    /// over when it dies (docs/scale-out.md).
    Reconcile(ReconcileArgs),
    /// Print the captured stderr of a server run by the local runtime.
    Logs(LogsArgs),
    /// Run the reconciler and the gateway in one process (embedded default: SQLite, local
    /// runtime), printing the URLs it serves.
    Serve(ServeArgs),
    /// Run the gateway alone, following the database a reconciler writes (scaled deploys:
    /// several gateways sharing Postgres with one `mcpctl reconcile`). On Postgres each deploy
    /// is picked up at once (LISTEN/NOTIFY), polling being the fallback.
    Gateway(GatewayArgs),
    /// Test a running endpoint.
    #[command(subcommand)]
    Test(TestCommand),
    /// A terminal MCP client: browse and call tools, prompts and resources through forms built
    /// from their schemas, inspect every JSON-RPC message (save it as a .jsonl transcript), and
    /// follow the project's audit events live. Keyboard only (works over SSH); `?` lists the keys.
    Console(ConsoleArgs),
    /// List deploys, newest first.
    History(HistoryArgs),
    /// Show the deployed revision, the last attempted one, drift and the last error.
    Status(StatusArgs),
    /// Write a new resource file into the repo (`<plural>/<name>.yaml`, or
    /// `projects/<project>/<plural>/<name>.yaml`); refused if the repo would become invalid.
    Create(CreateArgs),
    /// Open a resource's file in $EDITOR; the edit is kept only if the repo stays valid.
    Edit(TargetArgs),
    /// Remove a resource's file from the repo (a file holding only that resource).
    Delete(TargetArgs),
    /// Validate, show the plan, commit and push to `origin`. Stages new resource files (.yaml,
    /// .yml, .json) and changes to tracked files; never a file holding a private key
    /// (AGE-SECRET-KEY-, PRIVATE KEY header). What is left out is listed.
    Push(PushArgs),
    /// Commit the tree of an earlier commit on top of the branch and push it (history is kept).
    /// Refused when the work tree has uncommitted changes it would discard, unless --force.
    Rollback(RollbackArgs),
    /// Move data between places, e.g. Secrets between SecretBackends.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Author and read secrets: encrypt values to the repo's recipients
    /// (`.mcpctl/recipients.txt`), reveal, rotate, manage recipients, scan for leaked credentials.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Chat with an agent through the gateway: one message (-m), streamed to stdout, or an
    /// interactive session (line editing, history; `/help` lists its commands). The thread id is
    /// printed on stderr as `(thread: ID)`; `--thread ID` continues it. Exit 1 on any error
    /// (unknown agent or personality, the model failing, no gateway).
    Chat(ChatArgs),
    /// Log in to a gateway: check a token with `GET /api/v1/whoami` and keep it as the current
    /// context in the config file (`$MCPCTL_CONFIG`, default ~/.config/mcpctl/config.yaml, mode
    /// 0600). Read commands then go through that gateway. The token comes from --token,
    /// $MCPCTL_TOKEN, or a prompt without echo on a terminal.
    Login(LoginArgs),
    /// Show and switch login contexts (kubectl-style).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Revoke a token in the repo (`spec.revoked: true`): refused (401) from the deploy of that
    /// commit on.
    Revoke(RevokeArgs),
    /// Ask the RBAC engine about the repo's desired state: `can-i`, `who-can` (docs/rbac.md).
    #[command(subcommand)]
    Rbac(RbacCommand),
    /// Back up the runtime data (deploy history, audit events, chat threads and messages, gate
    /// openings, token last use, migrated Secrets' locations and sealed values, the deployed
    /// snapshot) as a versioned archive of JSON lines, read in one consistent snapshot while the
    /// gateway keeps serving. Desired state needs none: it is git. Exit 1 on any error.
    Backup(BackupArgs),
    /// Restore an archive written by `mcpctl backup` into the database (SQLite or Postgres,
    /// created and migrated if needed), in one transaction: a bad line (named by its number), a
    /// cut archive or a newer format changes nothing. Rows already present are kept, so restoring
    /// twice is harmless. SQLite → Postgres: `backup` from one, `restore` into the other.
    Restore(RestoreArgs),
    /// Print the JSON Schema of resource documents (for editors).
    Schema,
    /// Print a generated reference page as markdown: `cli` (docs/reference/cli.md, from these
    /// commands' definitions) or `resources` (docs/reference/resources.md, from the JSON Schema).
    #[command(hide = true)]
    Reference {
        #[arg(value_enum)]
        page: ReferencePage,
    },
    /// Print a shell completion script.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The generated pages of `mcpctl reference`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReferencePage {
    Cli,
    Resources,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Write the archive to FILE (written to FILE.partial, renamed when complete); default (or
    /// `-`): stdout.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// How to print the summary (on stderr when the archive goes to stdout).
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    pub format: TextOrJson,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The archive (`-` reads stdin, e.g. `gunzip -c backup.jsonl.gz | mcpctl restore -`).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Output format of the summary.
    #[arg(short, long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub lp: LoopArgs,
    /// Reconcile once and exit (exit 1 if the commit was invalid or the fetch failed).
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub lp: LoopArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    /// File holding the shared secret of the git webhook (`POST /api/v1/hooks/git`); off without it.
    #[arg(long, env = "MCPCTL_WEBHOOK_SECRET_FILE", value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
}

/// How the gateway listens and whom it lets in.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Address the gateway listens on (port 0 picks a free port; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Accepted `Host` header of MCP requests (DNS-rebinding protection; repeatable). Default:
    /// localhost, 127.0.0.1, ::1. `*` accepts any host (behind a proxy that checks it).
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// Browser origin allowed to call MCP endpoints besides loopback pages, e.g.
    /// `https://app.example.com:443` (repeatable). Requests carrying any other `Origin` get 403.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Base URL clients reach the gateway at (advertised in RFC 9728 metadata). Default:
    /// `http://<Host header>`.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Largest MCP request body in bytes (413 above).
    #[arg(long, default_value_t = 4 * 1024 * 1024, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Time allowed to receive an MCP POST body (408 after). SSE streams are not affected.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub body_read_timeout: std::time::Duration,
    /// Requests per token on MCP endpoints, `N/s`, `N/m` or `N/h` with an optional `:BURST`
    /// (default burst: twice the per-second rate); 429 with `Retry-After` above. `off` disables.
    #[arg(long, default_value = "50/s:100", value_parser = parse_rate, value_name = "RATE")]
    pub rate_limit: RateArg,
    /// Requests of a public project's anonymous callers (all of them together, per project);
    /// unlimited unless set.
    #[arg(long, default_value = "off", value_parser = parse_rate, value_name = "RATE")]
    pub anonymous_rate_limit: RateArg,
    /// Open MCP sessions per token (anonymous callers: per project); opening one more closes the
    /// token's least recently used session.
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions_per_token: u32,
    /// An MCP session without traffic for this long is closed.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub session_idle_timeout: std::time::Duration,
    /// File holding a bearer token `/metrics` then requires (401 without it); open otherwise.
    /// `/metrics` always obeys --allowed-host.
    #[arg(long, env = "MCPCTL_METRICS_TOKEN_FILE", value_name = "FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// Delete audit events older than this, in batches, every hour; `0` or `never` keeps them.
    #[arg(long, default_value = "30d", value_parser = parse_retention, value_name = "DURATION")]
    pub audit_retention: RetentionArg,
}

/// `--rate-limit` / `--anonymous-rate-limit`: a rate, or none (`off`).
#[derive(Debug, Clone, Copy)]
pub struct RateArg(pub Option<gateway::mcp::limits::RateLimit>);

fn parse_rate(s: &str) -> Result<RateArg, String> {
    if s == "off" {
        return Ok(RateArg(None));
    }
    s.parse().map(|r| RateArg(Some(r)))
}

/// `--audit-retention`: how long audit events are kept (`None`: forever).
#[derive(Debug, Clone, Copy)]
pub struct RetentionArg(pub Option<std::time::Duration>);

fn parse_retention(s: &str) -> Result<RetentionArg, String> {
    match s {
        "0" | "never" => Ok(RetentionArg(None)),
        _ => humantime::parse_duration(s)
            .map(|d| RetentionArg(Some(d)))
            .map_err(|e| format!("`{s}`: {e} (e.g. 30d, 12h, or 0/never to keep events forever)")),
    }
}

#[derive(Debug, Args)]
pub struct GatewayArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    /// Reach image servers in this Kubernetes namespace: http/sse ones through their Services,
    /// stdio ones by attaching to their pods (kubeconfig or in-cluster credentials; needs `list`
    /// on pods and `create` on pods/attach).
    #[arg(long, value_name = "NAMESPACE")]
    pub kube_namespace: Option<String>,
    /// How often to look for a new deploy in the database (on Postgres the fallback of the
    /// `mcpctl_deploy` notification, which reloads at once).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub poll: std::time::Duration,
    /// age identity file of the installation: decrypts the API keys of the `Llm`s (chat) from
    /// their git ciphertext, and the values held for Secrets on other backends. Without it, an
    /// agent whose `Llm` has an `apiKey` answers 500 naming the `Llm`.
    #[arg(long, env = "MCPCTL_AGE_IDENTITY_FILE", value_name = "FILE")]
    pub age_identity: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Move the values of Secrets from one SecretBackend to another, one Secret at a time: read
    /// it, write it at the destination, record its new location in the runtime database, then
    /// delete it at the source (best effort; --keep-source skips it). A run that was stopped
    /// finishes on rerun and skips what already moved. Values are never printed.
    Secrets(MigrateSecretsArgs),
}

#[derive(Debug, Args)]
pub struct MigrateSecretsArgs {
    /// Backend (SecretBackend name) the Secrets live on now.
    #[arg(long, value_name = "BACKEND")]
    pub from: String,
    /// Backend to move them to.
    #[arg(long, value_name = "BACKEND")]
    pub to: String,
    /// Only these Secrets (`name` or `project/name`, comma-separated); default: every Secret on
    /// --from.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub names: Vec<String>,
    /// Leave the values at the source.
    #[arg(long)]
    pub keep_source: bool,
    /// Show what would move; read, write and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// age identity file: decrypts git values and the OpenBao token, seals values for the
    /// plaintext backend.
    #[arg(long, env = "MCPCTL_AGE_IDENTITY_FILE", value_name = "FILE")]
    pub age_identity: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TestCommand {
    /// Check an MCP endpoint like a client would: connect, initialize, list tools, optionally
    /// call one. Exit 0 pass, 1 transport or auth failure, 2 contract failure.
    Mcp(TestMcpArgs),
}

#[derive(Debug, Args)]
pub struct TestMcpArgs {
    /// Endpoint URL, e.g. `http://127.0.0.1:8080/projects/homelab/mcp`.
    pub url: String,
    /// Bearer token (`mcpctl_pat_…`).
    #[arg(long, env = "MCPCTL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Call this tool after listing.
    #[arg(long)]
    pub tool: Option<String>,
    /// Arguments of `--tool`, a JSON object.
    #[arg(long, default_value = "{}", requires = "tool")]
    pub args: String,
    /// Fail (exit 2) unless these tools are listed (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub expect_tools: Vec<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
    /// Give up after this long (e.g. `10s`).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Skip the gateway's `/healthz` check.
    #[arg(long)]
    pub no_health: bool,
}

#[derive(Debug, Args)]
pub struct LoopArgs {
    /// Branch to follow.
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// Directory inside the repository that holds the desired state (as Argo CD's
    /// `source.path`), for a URL; a local -C may simply name the folder inside its work tree.
    /// Only that directory is read; commits that do not touch it are recorded as `unchanged`.
    #[arg(long, value_name = "SUBDIR", default_value = "")]
    pub path: String,
    /// Poll and drift-check interval (e.g. `30s`, `2m`).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
    /// Only report drift; do not revert it.
    #[arg(long)]
    pub no_self_heal: bool,
    /// Deploy only commits SSH-signed by a key in this allowed-signers file
    /// (`principal [options] keytype key`, as for `ssh-keygen -Y verify`; `namespaces`,
    /// `valid-after`, `valid-before` are honoured, `cert-authority` is refused) that descend from
    /// the last deployed commit; others are refused and recorded as failed deploys.
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
    /// Deploy a commit with no resources even though resources are deployed (without it such a
    /// commit is refused and recorded as failed, so emptying the repo cannot delete everything).
    #[arg(long)]
    pub allow_empty: bool,
    /// Where servers run: `local` child processes; `kubernetes` (image servers as Deployments in
    /// --namespace, command servers still local); or `none` (only the database).
    #[arg(long, value_enum, default_value_t = RuntimeKind::Local)]
    pub runtime: RuntimeKind,
    /// age identity file used to decrypt env values from secrets (held in memory only).
    #[arg(long, env = "MCPCTL_AGE_IDENTITY_FILE", value_name = "FILE")]
    pub age_identity: Option<PathBuf>,
    /// Run local servers as this user (name or uid): its uid, gid, groups and HOME. Needs root.
    /// Keep the --age-identity file unreadable by that user (a warning says when it is not).
    #[arg(long, env = "MCPCTL_RUN_AS", value_name = "USER")]
    pub run_as: Option<String>,
    /// Namespace for the kubernetes runtime (kubeconfig or in-cluster credentials).
    #[arg(long, default_value = "mcpctl")]
    pub namespace: String,
    /// Where remote repositories are cloned (default: the user's cache dir).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    Local,
    Kubernetes,
    None,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Server name (`project/name` for a server inside a project).
    pub server: String,
    /// Only the last N lines.
    #[arg(long)]
    pub tail: Option<usize>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// How many deploys to show.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
    /// Also decrypt every Secret value with this age identity (values are dropped at once): a
    /// value it cannot decrypt is an error naming the secret and key.
    #[arg(long, env = "MCPCTL_AGE_IDENTITY_FILE", value_name = "FILE")]
    pub age_identity: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextOrJson {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// How to print the plan.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Also save the plan as JSON to FILE, for `mcpctl apply FILE`.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan between two git refs, no database: the state of REF against --head (a PR review; the
    /// markdown format adds an "Access changes" section). -C names the repository or a folder in it.
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
    /// With --base: the ref whose state is planned (default `HEAD`).
    #[arg(long, value_name = "REF", requires = "base", default_value = "HEAD")]
    pub head: String,
    /// With --base: a gateway to ask for the blast radius (tool lists, 30 days of audit); else
    /// $MCPCTL_URL.
    #[arg(long, value_name = "URL", requires = "base")]
    pub url: Option<String>,
    /// Bearer token for --url (else $MCPCTL_TOKEN).
    #[arg(long, value_name = "TOKEN", requires = "base", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved by `mcpctl plan -o FILE`; validated again, applied exactly, refused if the
    /// store moved since.
    pub plan: Option<PathBuf>,
    /// Don't print the plan before applying (it is still shown when asking).
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't ask for confirmation on a terminal (without a terminal apply never asks).
    #[arg(long)]
    pub auto_approve: bool,
    /// Apply even when the result deletes every resource in the store (an empty or wrong `-C`
    /// directory, or a plan that deletes everything); refused without it.
    #[arg(long)]
    pub allow_empty: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GetFormat {
    Table,
    Yaml,
    Json,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Kind (`servers`, `server`, `srv`, …), `all`, `auditevents` (the gateway's audit log), or
    /// `threads` (chat threads, read from the gateway).
    pub kind: String,
    /// One resource by name.
    pub name: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = GetFormat::Table)]
    pub output: GetFormat,
    /// Only resources in this project.
    #[arg(short, long)]
    pub project: Option<String>,
    /// `auditevents` only: events of this token (its resource name).
    #[arg(long)]
    pub token: Option<String>,
    /// `auditevents` only: events newer than this (`1h`, `30m`) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// `auditevents` only: at most this many events, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// `auditevents` only: after the latest events, print new ones as they happen (Ctrl-C stops):
    /// through the gateway's stream when a gateway URL is known (--url or $MCPCTL_URL, token from
    /// $MCPCTL_TOKEN), else by polling the database every second.
    #[arg(short, long)]
    pub watch: bool,
    /// `threads` only: threads of this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// `auditevents --watch` and `threads`: the gateway for this command (default: --server,
    /// $MCPCTL_URL or the login context; threads fall back to http://127.0.0.1:8080).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// `mcpctl console`.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// An MCP endpoint URL, or a project name (`<gateway>/projects/<PROJECT>/mcp`).
    #[arg(value_name = "URL|PROJECT")]
    pub target: String,
    /// Bearer token (default: $MCPCTL_TOKEN). It also opens the audit stream, which needs
    /// `{role: run, action: audit}`.
    #[arg(long)]
    pub token: Option<String>,
    /// Gateway URL for a PROJECT (default: $MCPCTL_URL, else http://127.0.0.1:8080).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Protocol generation: `auto` (server/discover, falling back to initialize), `2026-07-28`
    /// (stateless) or `2025-11-25` (session-based initialize).
    #[arg(long, default_value = "auto")]
    pub protocol: String,
    /// Do not follow the audit stream.
    #[arg(long)]
    pub no_audit: bool,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Kind (`server`, `agent`, …).
    pub kind: String,
    pub name: String,
    /// Project of the resource (for project-scoped kinds).
    #[arg(short, long)]
    pub project: Option<String>,
    /// Secrets only: print the decrypted values (read from the backend the Secret lives on, with
    /// --age-identity). Without it values are always masked.
    #[arg(long)]
    pub show_values: bool,
    /// age identity file for --show-values.
    #[arg(long, env = "MCPCTL_AGE_IDENTITY_FILE", value_name = "FILE")]
    pub age_identity: Option<PathBuf>,
    /// Agents only: preview the system blocks as this personality (default: the agent's
    /// `defaultPersonality`).
    #[arg(long, value_name = "NAME")]
    pub personality: Option<String>,
    /// `thread` only: the gateway (default: $MCPCTL_URL, else http://127.0.0.1:8080); the bearer
    /// token comes from $MCPCTL_TOKEN.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Kind (`server`, `agent`, …).
    pub kind: String,
    pub name: String,
    /// Project (required for project-scoped kinds).
    #[arg(short, long)]
    pub project: Option<String>,
    /// The spec as YAML or JSON, e.g. `{llm: gpt, systemPrompt: Be brief.}`.
    #[arg(long, value_name = "YAML")]
    pub spec: Option<String>,
    /// Server: executable to run.
    #[arg(long)]
    pub command: Option<String>,
    /// Server: argument (repeatable).
    #[arg(long = "arg", value_name = "ARG")]
    pub args: Vec<String>,
    /// Server: package run by npx or uvx.
    #[arg(long)]
    pub package: Option<String>,
    /// Server: `npx` or `uvx` for --package.
    #[arg(long)]
    pub runner: Option<String>,
    /// Server: remote MCP URL.
    #[arg(long)]
    pub url: Option<String>,
    /// Server: container image.
    #[arg(long)]
    pub image: Option<String>,
    /// Project: clone this project (its spec; servers stay references). McpTokens are never
    /// copied.
    #[arg(long, value_name = "PROJECT")]
    pub from: Option<String>,
    /// With --from: copy the project's project-scope Prompts too.
    #[arg(long)]
    pub with_prompts: bool,
    /// With --from: copy its Agents, Personalities and their Prompts too.
    #[arg(long)]
    pub with_agents: bool,
    /// Server: instantiate this Template (`fromTemplate`), its parameters from --set.
    #[arg(long, value_name = "TEMPLATE")]
    pub from_template: Option<String>,
    /// With --from-template: a parameter value, `key=value` (repeatable); only declared
    /// parameters, and every required one without a default.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// `usertoken` only: the User the login token is for.
    #[arg(long = "user", id = "token_user", value_name = "USER")]
    pub token_user: Option<String>,
    #[command(flatten)]
    pub token: TokenCreateArgs,
    #[command(flatten)]
    pub rbac: RbacCreateArgs,
}

/// `create mcptoken` flags (docs/rbac.md).
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// McpToken: a grant, `role:view,resource:servers[,name:NAME]` or `action:logs` (repeatable).
    /// Each must lie within the permissions of --as in the project.
    #[arg(long = "bind", value_name = "BINDING", value_parser = parse_binding_arg)]
    pub bind: Vec<schema::spec::RoleBinding>,
    /// McpToken: start from no bindings (`empty`) or from a snapshot of --as's permissions in the
    /// project (`clone`); --bind adds to either.
    #[arg(long, value_enum, default_value_t = RbacStart::Empty)]
    pub rbac: RbacStart,
    /// McpToken: lifetime, `30d`, `12h`, `never`, or an expiry as an RFC 3339 time or a date
    /// (`2027-01-31`).
    #[arg(long, default_value = "90d", value_name = "TTL")]
    pub ttl: String,
    /// Free text (`spec.description`), for any kind that has one.
    #[arg(long)]
    pub description: Option<String>,
    /// McpToken: the User minting it (`spec.createdBy`); its permissions bound the token's.
    #[arg(long = "as", value_name = "USER", env = "MCPCTL_USER")]
    pub as_user: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RbacStart {
    Empty,
    Clone,
}

/// `create rbac` flags.
#[derive(Debug, Args)]
pub struct RbacCreateArgs {
    /// RbacDefinition: who gets the grants, `User:alice`, `Group:admins`, `McpToken:NAME` or
    /// `McpToken:PROJECT/NAME` (repeatable).
    #[arg(long = "subject", value_name = "SUBJECT", value_parser = parse_subject_arg)]
    pub subjects: Vec<schema::spec::Subject>,
    /// RbacDefinition: a grant in the --bind syntax (repeatable).
    #[arg(long = "roleBindings", value_name = "BINDING", value_parser = parse_binding_arg)]
    pub role_bindings: Vec<schema::spec::RoleBinding>,
}

fn parse_binding_arg(s: &str) -> Result<schema::spec::RoleBinding, String> {
    schema::rbac::parse_binding(s).map_err(|e| e.to_string())
}

fn parse_subject_arg(s: &str) -> Result<schema::spec::Subject, String> {
    schema::rbac::parse_subject(s).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// Kind: `mcptoken`.
    pub kind: String,
    pub name: String,
    /// Project of the token.
    #[arg(short, long)]
    pub project: String,
}

#[derive(Debug, Subcommand)]
pub enum RbacCommand {
    /// Whether SUBJECT may VERB RESOURCE [NAME] in the repo's desired state (like `kubectl auth
    /// can-i`): prints yes or no; exit 0 yes, 1 no. VERB is a role (`view`, `edit`, `create`,
    /// `delete`, `run`), RESOURCE a plural kind; `run action NAME` asks for an action (`logs`).
    CanI(CanIArgs),
    /// Every user, group and token that may VERB RESOURCE [NAME] (-o json for a list).
    WhoCan(WhoCanArgs),
}

#[derive(Debug, Args)]
pub struct AccessQuery {
    /// `view`, `edit`, `create`, `delete` or `run`.
    pub verb: String,
    /// A plural kind (`servers`), or `action` (then NAME is the action).
    pub resource: String,
    /// One resource by name (none: the whole kind).
    pub name: Option<String>,
    /// The project the request is made in (none: global resources and actions).
    #[arg(short, long)]
    pub project: Option<String>,
}

#[derive(Debug, Args)]
pub struct CanIArgs {
    #[command(flatten)]
    pub query: AccessQuery,
    /// `User:alice`, `Group:admins`, `McpToken:NAME` (in -p PROJECT) or `McpToken:PROJECT/NAME`.
    #[arg(long = "as", value_name = "SUBJECT", value_parser = parse_subject_arg)]
    pub subject: schema::spec::Subject,
}

#[derive(Debug, Args)]
pub struct WhoCanArgs {
    #[command(flatten)]
    pub query: AccessQuery,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Kind (`server`, `agent`, …).
    pub kind: String,
    pub name: String,
    /// Project of the resource.
    #[arg(short, long)]
    pub project: Option<String>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Commit message.
    #[arg(short, long, default_value = "Update via mcpctl")]
    pub message: String,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The commit whose tree to restore.
    pub sha: String,
    /// Only commit; do not push.
    #[arg(long)]
    pub no_push: bool,
    /// Roll back even though the work tree has uncommitted changes (they are discarded).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Encrypt a value to the repo's recipients and write it as KEY of Secret NAME (the file is
    /// created if needed: `secrets/NAME.yaml`, or under `projects/PROJECT/`). The value comes from
    /// --from-literal, --from-file (verbatim) or stdin (one trailing newline dropped). Refused if
    /// the repo would become invalid; the value is never printed.
    Set(SecretSetArgs),
    /// Decrypt and print a Secret's values (KEY: that value alone) from the checkout. Needs an
    /// identity that is a recipient: holding it is what authorizes a local reveal (RBAC
    /// `{role: run, action: reveal-secrets}` governs reveals through mcpctl's services once there
    /// are users; see docs/secrets.md).
    Reveal(SecretRevealArgs),
    /// Re-encrypt every value (or those of NAMEs) to the current recipients, like
    /// `sops updatekeys`: after `recipients remove`, the removed key can no longer read them.
    Rotate(SecretRotateArgs),
    /// List, add or remove the recipients in `.mcpctl/recipients.txt`.
    #[command(subcommand)]
    Recipients(RecipientsCommand),
    /// Find plaintext credentials (provider keys, private keys, raw `mcpctl_pat_` tokens,
    /// high-entropy `env` values) in the work tree, in git history (--history) or in what is
    /// staged (--pre-commit). Prints file:line (and commit) and how to purge. Exit 0 clean, 1
    /// leaks found (or an error).
    Scan(SecretScanArgs),
}

#[derive(Debug, Args)]
pub struct SecretSetArgs {
    /// Secret name.
    pub name: String,
    /// Key inside the secret's `data`.
    pub key: String,
    /// Project of the secret (global when omitted).
    #[arg(short, long)]
    pub project: Option<String>,
    /// The value itself (visible in shell history and `ps`: prefer --from-file or stdin).
    #[arg(long, value_name = "VALUE", conflicts_with = "from_file")]
    pub from_literal: Option<String>,
    /// Read the value from FILE, verbatim.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
}

/// The identity that decrypts, for `reveal` and `rotate`.
#[derive(Debug, Args)]
pub struct IdentityArgs {
    /// age identity file (`age-keygen` output, or an unencrypted OpenSSH ed25519/RSA key).
    #[arg(long, env = "MCPCTL_AGE_IDENTITY_FILE", value_name = "FILE")]
    pub age_identity: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SecretRevealArgs {
    /// Secret name.
    pub name: String,
    /// Only this key, printed as is.
    pub key: Option<String>,
    /// Project of the secret.
    #[arg(short, long)]
    pub project: Option<String>,
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Output format (all keys): `key=value` lines or a JSON object.
    #[arg(short, long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct SecretRotateArgs {
    /// Only these secrets (`name` or `project/name`); default: every secret with values in the repo.
    pub names: Vec<String>,
    #[command(flatten)]
    pub identity: IdentityArgs,
}

#[derive(Debug, Subcommand)]
pub enum RecipientsCommand {
    /// List the recipients, and the secrets encrypted to another set (to rotate).
    List,
    /// Add a recipient: `age1…` or an SSH public key (`ssh-ed25519 AAAA… comment`, quoted).
    Add { recipient: String },
    /// Remove the recipient with this key or comment (the last one cannot be removed).
    Remove { recipient: String },
}

#[derive(Debug, Args)]
pub struct SecretScanArgs {
    /// Also scan every commit reachable from a branch or tag (each finding names the oldest).
    #[arg(long, conflicts_with = "pre_commit")]
    pub history: bool,
    /// Scan only what is staged (for `.git/hooks/pre-commit`); exit 1 refuses the commit.
    #[arg(long)]
    pub pre_commit: bool,
    /// Output format: one line per finding, or a JSON array (the advice is printed in both).
    #[arg(short, long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Base URL of the gateway, e.g. `https://gw.example.com`.
    #[arg(long)]
    pub url: String,
    /// The token (`mcpctl_usr_…` from `mcpctl create usertoken`, or an `mcpctl_pat_…`); visible
    /// in shell history and `ps`: prefer $MCPCTL_TOKEN or the prompt.
    #[arg(long, env = "MCPCTL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Name of the context to write (default `<who>@<host[:port]>`).
    #[arg(long = "context-name", value_name = "NAME")]
    pub name: Option<String>,
    /// Output format of the confirmation.
    #[arg(short, long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// List the login contexts (`*` marks the current one; tokens show as their prefix).
    GetContexts {
        #[arg(short, long, value_enum, default_value_t = TextOrJson::Text)]
        output: TextOrJson,
    },
    /// Make NAME the current context.
    UseContext { name: String },
    /// Print the current context's name (exit 1 when none is set).
    CurrentContext,
    /// Remove a context (and unset it if current).
    DeleteContext { name: String },
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// The agent to talk to.
    pub agent: String,
    /// Project of the agent (needed when several projects have an agent of that name).
    #[arg(short, long)]
    pub project: Option<String>,
    /// Send this one message and exit; without it, an interactive session.
    #[arg(short, long, value_name = "TEXT")]
    pub message: Option<String>,
    /// Wait for the whole answer instead of streaming it.
    #[arg(long)]
    pub no_stream: bool,
    /// Speak to this personality of the agent (default: its `defaultPersonality`).
    #[arg(long, value_name = "NAME")]
    pub personality: Option<String>,
    /// Continue this thread (default: a new one).
    #[arg(long, value_name = "ID")]
    pub thread: Option<String>,
    /// Extra system text for this call, appended after every other system block.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// The gateway (default: $MCPCTL_URL, else http://127.0.0.1:8080).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Bearer token for the gateway (default: $MCPCTL_TOKEN).
    #[arg(long, value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output format: streamed text, or (implies --no-stream) the gateway's JSON answer.
    #[arg(short, long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
}

/// Sampling overrides of one chat call (they win over the personality's and the agent's).
#[derive(Debug, Args)]
pub struct SamplingArgs {
    /// 0 to 2.
    #[arg(long, value_parser = clap::value_parser!(f64))]
    pub temperature: Option<f64>,
    /// 0 to 1.
    #[arg(long, value_name = "P")]
    pub top_p: Option<f64>,
    /// Upper bound on generated tokens.
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u32>,
    /// Stop sequence (repeatable).
    #[arg(long, value_name = "TEXT")]
    pub stop: Vec<String>,
    /// Sampling seed, where the provider supports one.
    #[arg(long)]
    pub seed: Option<i64>,
    /// An extra provider parameter, `KEY=VALUE` (repeatable; VALUE is read as JSON, else as a
    /// string: `--param top_k=40`, `--param 'metadata={"run":"ci"}'`). Sent as `sampling.extra`.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, serde_json::Value)>,
}

/// `KEY=VALUE` of `--param`: VALUE as JSON when it parses, else as a string.
fn parse_param(s: &str) -> Result<(String, serde_json::Value), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    if k.is_empty() {
        return Err(format!("`{s}` has no KEY"));
    }
    let value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
    Ok((k.to_string(), value))
}
