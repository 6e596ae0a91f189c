//! One function per subcommand. Each reads what it needs, calls the reconciler, and hands the
//! result to `render`.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use clap::CommandFactory;

use reconciler::{plan::StoredResource, DeployMeta, Plan, Store};
use schema::{DesiredState, Kind, Resource};

use crate::args::*;
use crate::render;
use crate::CliError;

type Result<T = ()> = std::result::Result<T, CliError>;

pub async fn run(cli: Cli) -> Result {
    let g = &cli.global;
    match cli.command {
        Command::Validate(a) => validate(g, a),
        Command::Plan(a) => plan(g, a).await,
        Command::Apply(a) => apply(g, a).await,
        Command::Get(a) => get(g, a).await,
        Command::Describe(a) => describe(g, a).await,
        Command::Reconcile(a) => reconcile(g, a).await,
        Command::History(a) => history(g, a).await,
        Command::Serve(a) => serve(g, a).await,
        Command::Gateway(a) => gateway_only(g, a).await,
        Command::Test(TestCommand::Mcp(a)) => crate::probe::run(a).await,
        Command::Logs(a) => logs(a),
        Command::Status(a) => status(g, a).await,
        Command::Create(a) => crate::authoring::create(g, a),
        Command::Edit(a) => crate::authoring::edit(g, a),
        Command::Delete(a) => crate::authoring::delete(g, a),
        Command::Push(a) => push(g, a).await,
        Command::Rollback(a) => rollback(g, a),
        Command::Schema => {
            let schema = schema::json_schema::document_schema();
            let text = serde_json::to_string_pretty(&schema).context("serializing the schema")?;
            writeln!(anstream::stdout(), "{text}").context("writing output")?;
            Ok(())
        }
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "mcpctl", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// Read and validate the repo; print problems and fail if there are any.
pub(crate) fn load_repo(repo: &Path) -> Result<DesiredState> {
    let files = reconciler::read_dir(repo).with_context(|| format!("reading repo {}", repo.display()))?;
    schema::check(&files).map_err(|diags| {
        render::diagnostics(&diags);
        CliError::Invalid(diags.len())
    })
}

fn default_database_url() -> anyhow::Result<String> {
    let dir = dirs::data_dir().context("no data directory for this user; pass --database-url")?;
    Ok(reconciler::store::sqlite_url(&dir.join("mcpctl").join("mcpctl.db")))
}

async fn open_store(g: &Global) -> anyhow::Result<Store> {
    let url = match &g.database_url {
        Some(u) => u.clone(),
        None => default_database_url()?,
    };
    Ok(Store::connect(&url).await?)
}

fn actor() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    format!("{user} (mcpctl cli)")
}

fn validate(g: &Global, a: ValidateArgs) -> Result {
    let files = reconciler::read_dir(&g.repo).with_context(|| format!("reading repo {}", g.repo.display()))?;
    match schema::check(&files) {
        Ok(state) => {
            let mut out = anstream::stdout();
            if a.output == TextOrJson::Json {
                writeln!(out, "{}", serde_json::json!({"valid": true, "resources": state.len(), "files": files.len(), "errors": []})).context("writing output")?;
            } else {
                render::ok_line(&format!("{} resources in {} files are valid", state.len(), files.len()));
            }
            Ok(())
        }
        Err(diags) => {
            if a.output == TextOrJson::Json {
                writeln!(anstream::stdout(), "{}", serde_json::json!({"valid": false, "errors": diags})).context("writing output")?;
            } else {
                render::diagnostics(&diags);
            }
            Err(CliError::Invalid(diags.len()))
        }
    }
}

async fn make_plan(g: &Global) -> Result<(Plan, Store)> {
    let desired = load_repo(&g.repo)?;
    let store = open_store(g).await?;
    let stored = store.resources().await.context("reading the store")?;
    let revision = format!("sha256:{}", desired.content_hash());
    Ok((reconciler::plan(&desired, &stored, &revision), store))
}

async fn plan(g: &Global, a: PlanArgs) -> Result {
    let (plan, _) = make_plan(g).await?;
    if let Some(path) = &a.out {
        let json = serde_json::to_string_pretty(&plan).context("serializing the plan")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = anstream::stdout();
    match a.format {
        PlanFormat::Text => render::plan_text(&mut out, &plan),
        PlanFormat::Markdown => render::plan_markdown(&mut out, &plan),
        PlanFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&plan).expect("plan serializes")),
    }
    .context("writing output")?;
    if let Some(path) = &a.out {
        eprintln!("Saved the plan to {}; apply it with `mcpctl apply {}`.", path.display(), path.display());
    }
    if a.detailed_exitcode && !plan.is_empty() {
        return Err(CliError::ChangesPresent);
    }
    Ok(())
}

/// Read a saved plan and check every body in it still decodes.
fn read_plan(path: &Path) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let plan: Plan = serde_json::from_str(&text).with_context(|| format!("{} is not a plan written by `mcpctl plan -o`", path.display()))?;
    if plan.format_version != reconciler::plan::FORMAT_VERSION {
        bail!("{}: plan format {} is not supported (this mcpctl writes {})", path.display(), plan.format_version, reconciler::plan::FORMAT_VERSION);
    }
    for c in &plan.changes {
        if let Some(body) = &c.desired {
            let res = Resource::from_body(&body.to_string()).with_context(|| format!("{}: change {}", path.display(), c.key()))?;
            if res.key() != c.key() {
                bail!("{}: change {} carries the body of {}", path.display(), c.key(), res.key());
            }
        }
    }
    Ok(plan)
}

async fn apply(g: &Global, a: ApplyArgs) -> Result {
    let (plan, store) = match &a.plan {
        Some(path) => (read_plan(path)?, open_store(g).await?),
        None => make_plan(g).await?,
    };
    let mut out = anstream::stdout();
    if !a.quiet && !plan.is_empty() {
        render::plan_text(&mut out, &plan).context("writing output")?;
        writeln!(out).context("writing output")?;
    }
    let bar = render::progress(plan.changes.len());
    let meta = DeployMeta { revision: plan.revision.clone(), actor: actor(), message: None, commit: None };
    let result = store.apply(&plan, &meta, &|done, _| bar.set_position(done as u64)).await;
    bar.finish_and_clear();
    let deploy = result.context("apply failed; nothing was changed")?;
    render::apply_done(&mut out, &plan, &deploy).context("writing output")?;
    Ok(())
}

fn parse_kind(s: &str) -> anyhow::Result<Kind> {
    Ok(s.parse::<Kind>()?)
}

async fn select(store: &Store, kind: Option<Kind>, name: Option<&str>, project: Option<&str>) -> anyhow::Result<Vec<(StoredResource, Resource)>> {
    let rows = match kind {
        Some(k) => store.resources_of(k, project).await?,
        None => {
            let mut all = store.resources().await?;
            if let Some(p) = project {
                all.retain(|r| r.key.project == p);
            }
            all.sort_by(|a, b| a.key.cmp(&b.key));
            all
        }
    };
    let mut out = Vec::new();
    for row in rows {
        if name.is_some_and(|n| n != row.key.name) {
            continue;
        }
        let res = Resource::from_body(&row.body).with_context(|| format!("decoding stored {}", row.key))?;
        out.push((row, res));
    }
    Ok(out)
}

async fn get(g: &Global, a: GetArgs) -> Result {
    if matches!(a.kind.to_ascii_lowercase().as_str(), "auditevents" | "auditevent" | "audit") {
        return audit_events(g, a).await;
    }
    let kind = if a.kind.eq_ignore_ascii_case("all") { None } else { Some(parse_kind(&a.kind)?) };
    let store = open_store(g).await?;
    let items = select(&store, kind, a.name.as_deref(), a.project.as_deref()).await?;
    if let (Some(k), Some(n), true) = (kind, &a.name, items.is_empty()) {
        return Err(anyhow::anyhow!("{} `{n}` not found{}", k, a.project.as_ref().map(|p| format!(" in project `{p}`")).unwrap_or_default()).into());
    }
    let mut out = anstream::stdout();
    match a.output {
        GetFormat::Table => render::table(&mut out, kind, &items),
        GetFormat::Yaml => items.iter().try_for_each(|(_, r)| write!(out, "{}", schema::emit::yaml_document(&r.to_json()))),
        GetFormat::Json => {
            let list: Vec<serde_json::Value> = items.iter().map(|(_, r)| r.to_json()).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&list).expect("json"))
        }
    }
    .context("writing output")?;
    Ok(())
}

async fn describe(g: &Global, a: DescribeArgs) -> Result {
    let kind = parse_kind(&a.kind)?;
    let store = open_store(g).await?;
    let items = select(&store, Some(kind), Some(&a.name), a.project.as_deref()).await?;
    let (row, res) = match items.len() {
        0 => return Err(anyhow::anyhow!("{kind} `{}` not found", a.name).into()),
        1 => items.into_iter().next().expect("one item"),
        _ => return Err(anyhow::anyhow!("{kind} `{}` exists in several projects; pass -p PROJECT", a.name).into()),
    };
    let related = select(&store, None, None, None).await?;
    render::describe(&mut anstream::stdout(), &row, &res, &related).context("writing output")?;
    Ok(())
}

/// Build the reconciler of `reconcile` and `serve`; runtimes only for a long-running loop.
async fn build_reconciler(g: &Global, a: &LoopArgs, runtimes: Option<Option<reconciler::runtime::local::Attach>>) -> anyhow::Result<reconciler::Reconciler> {
    use reconciler::{Reconciler, RepoSource, Settings};
    let store = open_store(g).await?;
    let cache_dir = match a.cache_dir.clone() {
        Some(d) => d,
        None => dirs::cache_dir().context("no cache directory; pass --cache-dir")?.join("mcpctl").join("repos"),
    };
    let allowed_signers = match &a.allowed_signers {
        Some(f) => Some(reconciler::signature::AllowedSigners::load(f).context("loading --allowed-signers")?),
        None => None,
    };
    let source = RepoSource::parse(&g.repo.to_string_lossy());
    let settings = Settings { source, branch: a.branch.clone(), cache_dir, interval: a.interval, self_heal: !a.no_self_heal, allowed_signers };
    let mut r = Reconciler::new(store, settings).await.context("starting the reconciler")?;
    let Some(attach) = runtimes else { return Ok(r) };
    if a.runtime != RuntimeKind::None {
        let mut local = reconciler::runtime::LocalRuntime::new(log_dir()?).with_secrets(secret_resolver(a)?);
        if let Some(attach) = attach {
            local = local.with_attach(attach);
        }
        r = r.with_runtime(reconciler::runtime::Runtime::Local(local));
    }
    if a.runtime == RuntimeKind::Kubernetes {
        let client = kube::Client::try_default().await.context("connecting to Kubernetes (kubeconfig or in-cluster)")?;
        let kube_rt = reconciler::runtime::KubeRuntime::new(client, a.namespace.clone()).with_secrets(secret_resolver(a)?);
        r = r.with_runtime(reconciler::runtime::Runtime::Kubernetes(kube_rt));
    }
    Ok(r)
}

async fn reconcile(g: &Global, ra: ReconcileArgs) -> Result {
    use reconciler::Outcome;
    let a = &ra.lp;
    let mut r = build_reconciler(g, a, (!ra.once).then_some(None)).await?;
    if ra.once {
        let outcome = r.reconcile().await.context("reconcile failed; the store keeps the last good state")?;
        let mut out = anstream::stdout();
        match &outcome {
            Outcome::Deployed { sha, summary } => writeln!(out, "deployed {} ({summary})", &sha[..12]),
            Outcome::Invalid { sha, errors } => {
                writeln!(out, "commit {} is invalid; nothing changed:", &sha[..12]).context("writing output")?;
                return Err(anyhow::anyhow!("{errors}").into());
            }
            Outcome::UpToDate { sha: Some(sha) } => writeln!(out, "up to date at {}", &sha[..12]),
            Outcome::UpToDate { sha: None } => writeln!(out, "branch `{}` has no commit yet", a.branch),
            Outcome::Drift { sha, summary, reverted } => writeln!(out, "drift from {} ({summary}){}", &sha[..12], if *reverted { ", reverted" } else { ", reported only" }),
        }
        .context("writing output")?;
        return Ok(());
    }
    eprintln!("reconciling {} (branch {}, every {}, self-heal {}); Ctrl-C stops", g.repo.display(), a.branch, humantime::format_duration(a.interval), if a.no_self_heal { "off" } else { "on" });
    let (_handle, pokes) = reconciler::controller::channel();
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    r.run(pokes, shutdown).await.context("reconcile loop")?;
    Ok(())
}

async fn history(g: &Global, a: HistoryArgs) -> Result {
    let store = open_store(g).await?;
    let deploys = store.deploys(a.limit).await.context("reading deploys")?;
    let mut out = anstream::stdout();
    match a.output {
        TextOrJson::Json => writeln!(out, "{}", serde_json::to_string_pretty(&deploys).expect("json")),
        TextOrJson::Text => render::history(&mut out, &deploys),
    }
    .context("writing output")?;
    Ok(())
}

async fn status(g: &Global, a: StatusArgs) -> Result {
    let store = open_store(g).await?;
    let last = store.deploys(1).await.context("reading deploys")?.into_iter().next();
    let good = store.last_good_deploy().await.context("reading deploys")?;
    let drift = store.drift().await.context("reading drift")?;
    let servers: Vec<serde_json::Value> = store
        .server_status()
        .await
        .context("reading server status")?
        .into_iter()
        .map(|(runtime, server, state, updated)| serde_json::json!({"runtime": runtime, "server": server, "status": state, "updatedAt": updated}))
        .collect();
    let status = serde_json::json!({
        "deployed": good.as_ref().map(|d| &d.revision),
        "deployedAt": good.as_ref().map(|d| &d.finished_at),
        "lastAttempted": last.as_ref().map(|d| &d.revision),
        "lastOutcome": last.as_ref().map(|d| &d.outcome),
        "lastError": last.as_ref().and_then(|d| d.error.as_ref()),
        "drift": if drift.is_empty() { None } else { Some(&drift) },
        "servers": servers,
    });
    let mut out = anstream::stdout();
    match a.output {
        TextOrJson::Json => writeln!(out, "{}", serde_json::to_string_pretty(&status).expect("json")),
        TextOrJson::Text => render::status(&mut out, &status),
    }
    .context("writing output")?;
    Ok(())
}

async fn push(g: &Global, a: PushArgs) -> Result {
    let desired = load_repo(&g.repo)?;
    // Show what the push will deploy, when the target store is reachable.
    if let Ok(store) = open_store(g).await {
        if let Ok(stored) = store.resources().await {
            let p = reconciler::plan(&desired, &stored, "push");
            render::plan_text(&mut anstream::stdout(), &p).context("writing output")?;
        }
    }
    match reconciler::publish::commit_all(&g.repo, &a.message) {
        Ok(sha) => render::ok_line(&format!("committed {}", &sha[..12])),
        Err(reconciler::publish::PublishError::NothingToCommit) => {}
        Err(e) => return Err(anyhow::Error::from(e).context("commit failed").into()),
    }
    let branch = reconciler::publish::push(&g.repo).context("push failed")?;
    render::ok_line(&format!("pushed {branch} to origin"));
    Ok(())
}

fn rollback(g: &Global, a: RollbackArgs) -> Result {
    let sha = reconciler::publish::rollback(&g.repo, &a.sha).context("rollback failed")?;
    render::ok_line(&format!("committed {} restoring the tree of {}", &sha[..12], a.sha));
    if !a.no_push {
        let branch = reconciler::publish::push(&g.repo).context("push failed")?;
        render::ok_line(&format!("pushed {branch} to origin"));
    }
    Ok(())
}

fn log_dir() -> anyhow::Result<std::path::PathBuf> {
    if let Ok(d) = std::env::var("MCPCTL_LOG_DIR") {
        return Ok(d.into());
    }
    Ok(dirs::data_dir().context("no data directory; set MCPCTL_LOG_DIR")?.join("mcpctl").join("logs"))
}

fn logs(a: LogsArgs) -> Result {
    let path = reconciler::runtime::LocalRuntime::log_path(&log_dir()?, &a.server.replace('/', "_"));
    let text = std::fs::read_to_string(&path).with_context(|| format!("no logs for `{}` ({})", a.server, path.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let start = a.tail.map_or(0, |n| lines.len().saturating_sub(n));
    let mut out = anstream::stdout();
    for l in &lines[start..] {
        writeln!(out, "{l}").context("writing output")?;
    }
    Ok(())
}

fn secret_resolver(a: &LoopArgs) -> anyhow::Result<reconciler::secrets::SecretResolver> {
    Ok(match &a.age_identity {
        Some(f) => reconciler::secrets::SecretResolver::from_file(f).context("loading --age-identity")?,
        None => reconciler::secrets::SecretResolver::none(),
    })
}

/// Gateway options from the command line.
fn gateway_options(h: &HttpArgs) -> anyhow::Result<gateway::Options> {
    let metrics_token = match &h.metrics_token_file {
        Some(f) => {
            let t = std::fs::read_to_string(f).with_context(|| format!("reading --metrics-token-file {}", f.display()))?.trim().to_string();
            if t.is_empty() {
                bail!("--metrics-token-file {} is empty: put the bearer token /metrics requires in it", f.display());
            }
            Some(t)
        }
        None => None,
    };
    let mut mcp = gateway::McpSettings {
        public_url: h.public_url.clone(),
        max_body_bytes: h.max_body_bytes,
        body_read_timeout: h.body_read_timeout,
        rate_limit: h.rate_limit.0,
        anonymous_rate_limit: h.anonymous_rate_limit.0,
        max_sessions_per_token: h.max_sessions_per_token as usize,
        session_idle_timeout: h.session_idle_timeout,
        ..Default::default()
    };
    mcp.allowed_origins.extend(h.allowed_origins.iter().cloned());
    if h.allowed_hosts.iter().any(|x| x == "*") {
        mcp.allowed_hosts.clear();
    } else if !h.allowed_hosts.is_empty() {
        mcp.allowed_hosts = h.allowed_hosts.clone();
    }
    Ok(gateway::Options { mcp, metrics_token, audit_retention: h.audit_retention.0, ..Default::default() })
}

/// Print what a gateway serves.
fn print_urls(addr: std::net::SocketAddr, projects: &[String], webhook: bool) -> anyhow::Result<()> {
    let mut out = anstream::stdout();
    writeln!(out, "  MCP endpoints (http://{addr}/projects/<project>/mcp once deployed):")?;
    for p in projects {
        writeln!(out, "    {p}: http://{addr}/projects/{p}/mcp")?;
    }
    writeln!(out, "  REST API: http://{addr}/api/v1/   OpenAPI: http://{addr}/api/openapi.json")?;
    writeln!(out, "  health: http://{addr}/healthz, http://{addr}/readyz   metrics: http://{addr}/metrics")?;
    if webhook {
        writeln!(out, "  git webhook: POST http://{addr}/api/v1/hooks/git")?;
    }
    writeln!(out, "listening on http://{addr}")?;
    out.flush()?;
    Ok(())
}

fn sorted_projects(state: &gateway::AppState) -> Vec<String> {
    let mut v: Vec<String> = state.catalog().projects.keys().cloned().collect();
    v.sort();
    v
}

async fn serve(g: &Global, a: ServeArgs) -> Result {
    let store = open_store(g).await?;
    let webhook_secret = match &a.webhook_secret_file {
        Some(f) => Some(std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?.trim().to_string()),
        None => None,
    };
    let (handle, pokes) = reconciler::controller::channel();
    let mut opts = gateway_options(&a.http)?;
    opts.poke = Some(handle);
    opts.webhook_secret = webhook_secret.clone();
    opts.reach = gateway::Reach { local_stdio: a.lp.runtime != RuntimeKind::None, kube_namespace: (a.lp.runtime == RuntimeKind::Kubernetes).then(|| a.lp.namespace.clone()) };
    let state = gateway::AppState::with_options(store, opts);
    let deployed = std::sync::Arc::new(tokio::sync::Notify::new());
    let notify = deployed.clone();
    let r = build_reconciler(g, &a.lp, Some(Some(state.attach()))).await?.on_change(move || notify.notify_one());
    let listener = tokio::net::TcpListener::bind(a.http.listen).await.with_context(|| format!("listening on {}", a.http.listen))?;
    let addr = listener.local_addr().context("local address")?;
    state.reload().await.context("loading the deployed state")?;
    writeln!(anstream::stdout(), "mcpctl serving {} (branch {})", g.repo.display(), a.lp.branch).context("writing output")?;
    print_urls(addr, &sorted_projects(&state), webhook_secret.is_some()).context("writing output")?;
    tokio::spawn(gateway::follow(state.clone(), Some(deployed), std::time::Duration::from_secs(30)));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.changed().await;
    };
    let gw = tokio::spawn(gateway::serve(listener, state, stopped(stop_rx.clone())));
    let rc = tokio::spawn(r.run(pokes, stopped(stop_rx)));
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    rc.await.context("reconciler task")?.context("reconcile loop")?;
    gw.await.context("gateway task")?.context("gateway")?;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

async fn gateway_only(g: &Global, a: GatewayArgs) -> Result {
    let store = open_store(g).await?;
    let mut opts = gateway_options(&a.http)?;
    opts.reach = gateway::Reach { local_stdio: false, kube_namespace: a.kube_namespace.clone() };
    let state = gateway::AppState::with_options(store, opts);
    state.reload().await.context("loading the deployed state")?;
    let listener = tokio::net::TcpListener::bind(a.http.listen).await.with_context(|| format!("listening on {}", a.http.listen))?;
    let addr = listener.local_addr().context("local address")?;
    writeln!(anstream::stdout(), "mcpctl gateway (following the database every {})", humantime::format_duration(a.poll)).context("writing output")?;
    print_urls(addr, &sorted_projects(&state), false).context("writing output")?;
    tokio::spawn(gateway::follow(state.clone(), None, a.poll));
    let shutdown = shutdown_signal();
    gateway::serve(listener, state, shutdown).await.context("gateway")?;
    Ok(())
}

async fn audit_events(g: &Global, a: GetArgs) -> Result {
    let since = match &a.since {
        None => None,
        Some(s) => Some(match humantime::parse_duration(s) {
            Ok(d) => (chrono::Utc::now() - chrono::Duration::from_std(d).context("--since is too long")?).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            Err(_) => chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| anyhow::anyhow!("--since `{s}`: expected a duration (1h, 30m) or an RFC 3339 time"))?
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }),
    };
    let store = open_store(g).await?;
    let filter = reconciler::audit::AuditFilter { project: a.project.clone(), token: a.token.clone(), since, limit: a.limit };
    let events = store.audit_events(&filter).await.context("reading the audit log")?;
    let mut out = anstream::stdout();
    match a.output {
        GetFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&events).expect("json")),
        GetFormat::Yaml => write!(out, "{}", schema::emit::yaml_document(&serde_json::to_value(&events).expect("json"))),
        GetFormat::Table => render::audit(&mut out, &events),
    }
    .context("writing output")?;
    Ok(())
}
