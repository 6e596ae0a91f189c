//! Long-running commands: `reconcile` (follow a branch), `serve` (reconciler + gateway) and
//! `gateway` (the gateway alone, following the database).

use std::io::Write;

use anyhow::Context;

use super::logs::log_dir;
use super::{open_store, Result};
use crate::args::*;

/// Build the reconciler of `reconcile` and `serve`; runtimes only for a long-running loop.
pub(super) async fn build_reconciler(
    g: &Global,
    a: &LoopArgs,
    runtimes: Option<Option<reconciler::runtime::local::Attach>>,
    secrets: Option<reconciler::secrets::SecretResolver>,
) -> anyhow::Result<reconciler::Reconciler> {
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
    let settings = Settings {
        source,
        branch: a.branch.clone(),
        cache_dir,
        interval: a.interval,
        self_heal: !a.no_self_heal,
        allowed_signers,
        allow_empty: a.allow_empty,
    };
    let mut r =
        Reconciler::new_at(store, settings, &a.path).await.with_context(|| format!("starting the reconciler for {}", g.repo.display()))?;
    if let Some(f) = &a.age_identity {
        r = r.with_decrypt_check(reconciler::recipients::Identities::from_file(f).context("loading --age-identity")?);
    }
    let Some(attach) = runtimes else { return Ok(r) };
    // One resolver shared by the runtimes and the loop that fetches external secrets for them.
    let secrets = match secrets {
        Some(s) => s,
        None => secret_resolver(a)?,
    };
    r = r.with_secrets(secrets.clone());
    if a.runtime != RuntimeKind::None {
        let mut local = reconciler::runtime::LocalRuntime::new(log_dir()?).with_secrets(secrets.clone());
        if let Some(user) = &a.run_as {
            local = local.with_run_as(reconciler::runtime::RunAs::resolve(user)?);
        }
        if let Some(attach) = attach {
            local = local.with_attach(attach);
        }
        r = r.with_runtime(reconciler::runtime::Runtime::Local(local));
    }
    if a.runtime == RuntimeKind::Kubernetes {
        let client = kube::Client::try_default().await.context("connecting to Kubernetes (kubeconfig or in-cluster)")?;
        let kube_rt = reconciler::runtime::KubeRuntime::new(client, a.namespace.clone()).with_secrets(secrets);
        r = r.with_runtime(reconciler::runtime::Runtime::Kubernetes(kube_rt));
    }
    Ok(r)
}

pub(super) async fn reconcile(g: &Global, ra: ReconcileArgs) -> Result {
    use reconciler::Outcome;
    let a = &ra.lp;
    let mut r = build_reconciler(g, a, (!ra.once).then_some(None), None).await?;
    if ra.once {
        let outcome = r.reconcile().await.context("reconcile failed; the store keeps the last good state")?;
        let mut out = anstream::stdout();
        match &outcome {
            Outcome::Deployed { sha, summary } => writeln!(out, "deployed {} ({summary})", &sha[..12]),
            Outcome::Invalid { sha, errors } => {
                writeln!(out, "commit {} was not deployed; nothing changed:", &sha[..12]).context("writing output")?;
                return Err(anyhow::anyhow!("{errors}").into());
            }
            Outcome::UpToDate { sha: Some(sha) } => writeln!(out, "up to date at {}", &sha[..12]),
            Outcome::UpToDate { sha: None } => writeln!(out, "branch `{}` has no commit yet", a.branch),
            Outcome::Drift { sha, summary, reverted } => {
                writeln!(out, "drift from {} ({summary}){}", &sha[..12], if *reverted { ", reverted" } else { ", reported only" })
            }
        }
        .context("writing output")?;
        return Ok(());
    }
    eprintln!(
        "reconciling {} (branch {}, path `{}`, every {}, self-heal {}); Ctrl-C stops",
        g.repo.display(),
        a.branch,
        shown_path(r.path()),
        humantime::format_duration(a.interval),
        if a.no_self_heal { "off" } else { "on" }
    );
    let (_handle, pokes) = reconciler::controller::channel();
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    r.run(pokes, shutdown).await.context("reconcile loop")?;
    Ok(())
}

/// The followed directory as shown to people: `/` for the whole tree.
fn shown_path(p: &str) -> &str {
    if p.is_empty() {
        "/"
    } else {
        p
    }
}

pub(super) fn secret_resolver(a: &LoopArgs) -> anyhow::Result<reconciler::secrets::SecretResolver> {
    resolver_from(a.age_identity.as_deref())
}

fn resolver_from(age_identity: Option<&std::path::Path>) -> anyhow::Result<reconciler::secrets::SecretResolver> {
    Ok(match age_identity {
        Some(f) => reconciler::secrets::SecretResolver::from_file(f).context("loading --age-identity")?,
        None => reconciler::secrets::SecretResolver::none(),
    })
}

/// Gateway options from the command line.
pub(super) fn gateway_options(h: &HttpArgs) -> anyhow::Result<gateway::Options> {
    let metrics_token = match &h.metrics_token_file {
        Some(f) => {
            let t = std::fs::read_to_string(f).with_context(|| format!("reading --metrics-token-file {}", f.display()))?.trim().to_string();
            if t.is_empty() {
                anyhow::bail!("--metrics-token-file {} is empty: put the bearer token /metrics requires in it", f.display());
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
pub(super) fn print_urls(addr: std::net::SocketAddr, projects: &[String], webhook: bool) -> anyhow::Result<()> {
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

pub(super) fn sorted_projects(state: &gateway::AppState) -> Vec<String> {
    let mut v: Vec<String> = state.catalog().projects.keys().cloned().collect();
    v.sort();
    v
}

/// The webhook's shared secret from its file, trimmed. An empty (or blank) file is refused: a
/// secret that every request matches would let anyone trigger reconciles.
fn read_webhook_secret(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the webhook secret file {}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        anyhow::bail!("the webhook secret file {} is empty; put a long random secret in it (e.g. `openssl rand -hex 32`) or drop --webhook-secret-file", path.display());
    }
    Ok(secret.to_string())
}

pub(super) async fn serve(g: &Global, a: ServeArgs) -> Result {
    let webhook_secret = a.webhook_secret_file.as_deref().map(read_webhook_secret).transpose()?;
    let store = open_store(g).await?;
    let (handle, pokes) = reconciler::controller::channel();
    let mut opts = gateway_options(&a.http)?;
    opts.poke = Some(handle);
    opts.webhook_secret = webhook_secret.clone();
    opts.reach = gateway::Reach {
        local_stdio: a.lp.runtime != RuntimeKind::None,
        kube_namespace: (a.lp.runtime == RuntimeKind::Kubernetes).then(|| a.lp.namespace.clone()),
        attacher: None,
    };
    // Chat reads the Llms' keys through the reconciler's resolver (values fetched from backends included).
    let secrets = secret_resolver(&a.lp)?;
    opts.chat.secrets = secrets.clone();
    let state = gateway::AppState::with_options(store, opts);
    let deployed = std::sync::Arc::new(tokio::sync::Notify::new());
    let notify = deployed.clone();
    let mut r = build_reconciler(g, &a.lp, Some(Some(state.attach())), Some(secrets)).await?.on_change(move || notify.notify_one());
    let listener = tokio::net::TcpListener::bind(a.http.listen).await.with_context(|| format!("listening on {}", a.http.listen))?;
    let addr = listener.local_addr().context("local address")?;
    // Deploy the tip before printing, so the endpoints shown are the ones served; the loop goes
    // on from there (and keeps retrying if this first attempt fails).
    match r.reconcile().await {
        // Logged by the reconciler ("standby: waiting for the leader lock").
        Err(reconciler::controller::ReconcileError::Standby) => {}
        Err(e) => tracing::warn!(error = %e, "first reconcile failed; serving the last good state"),
        Ok(_) => {}
    }
    state.reload().await.context("loading the deployed state")?;
    writeln!(anstream::stdout(), "mcpctl serving {} (branch {}, path `{}`)", g.repo.display(), a.lp.branch, shown_path(r.path()))
        .context("writing output")?;
    print_urls(addr, &sorted_projects(&state), webhook_secret.is_some()).context("writing output")?;
    // Deploys of another leader on the same Postgres (this one may be a standby) wake it too.
    let store = state.store.clone();
    let woken = deployed.clone();
    tokio::spawn(async move { store.listen_deploys(woken).await });
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

/// First pause after an incomplete secret fetch before it is tried again.
const SECRET_FETCH_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Keep the held values of non-git Secrets (`openbao`, or migrated onto the plaintext backend)
/// current for chat's `Llm` keys: fetched once for each new deployed revision, woken by the
/// gateway's snapshot swap ([`gateway::AppState::reloads`]); an incomplete fetch is tried again
/// after a pause that doubles from [`SECRET_FETCH_RETRY`] up to [`SECRET_FETCH_MAX_PAUSE`] (or
/// at once on the next swap). Runs until the process ends.
async fn fetch_secrets(state: std::sync::Arc<gateway::AppState>, secrets: reconciler::secrets::SecretResolver) {
    let mut reloads = state.reloads();
    let mut done_for = None::<String>;
    let mut pause = SECRET_FETCH_RETRY;
    loop {
        let catalog = state.snapshot().catalog.clone();
        let complete = done_for.as_deref() == Some(catalog.revision.as_str()) || secrets.prefetch(&catalog.state, &state.store).await;
        if complete {
            done_for = Some(catalog.revision.clone());
            pause = SECRET_FETCH_RETRY;
            if reloads.changed().await.is_err() {
                return; // the gateway is gone
            }
        } else {
            tokio::select! {
                changed = reloads.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(pause) => pause = (pause * 2).min(SECRET_FETCH_MAX_PAUSE),
            }
        }
    }
}

/// Longest pause between two tries of an incomplete secret fetch.
const SECRET_FETCH_MAX_PAUSE: std::time::Duration = std::time::Duration::from_secs(30);

/// Ctrl-C or SIGTERM.
pub(super) async fn shutdown_signal() {
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

pub(super) async fn gateway_only(g: &Global, a: GatewayArgs) -> Result {
    let store = open_store(g).await?;
    let mut opts = gateway_options(&a.http)?;
    opts.reach = gateway::Reach { local_stdio: false, kube_namespace: a.kube_namespace.clone(), attacher: None };
    // Replicas share the database: only replies nobody has touched for a while are orphans.
    opts.chat.pending_grace = gateway::chat::STALE_AFTER;
    let secrets = resolver_from(a.age_identity.as_deref())?;
    opts.chat.secrets = secrets.clone();
    let state = gateway::AppState::with_options(store, opts);
    state.reload().await.context("loading the deployed state")?;
    if a.age_identity.is_some() {
        tokio::spawn(fetch_secrets(state.clone(), secrets));
    }
    let listener = tokio::net::TcpListener::bind(a.http.listen).await.with_context(|| format!("listening on {}", a.http.listen))?;
    let addr = listener.local_addr().context("local address")?;
    let listens = state.store.backend() == reconciler::Backend::Postgres;
    writeln!(
        anstream::stdout(),
        "mcpctl gateway (following the database every {}{})",
        humantime::format_duration(a.poll),
        if listens { " and at once on each deploy notified on `mcpctl_deploy`" } else { "" }
    )
    .context("writing output")?;
    print_urls(addr, &sorted_projects(&state), false).context("writing output")?;
    let deployed = std::sync::Arc::new(tokio::sync::Notify::new());
    let store = state.store.clone();
    let woken = deployed.clone();
    tokio::spawn(async move { store.listen_deploys(woken).await });
    tokio::spawn(gateway::follow(state.clone(), Some(deployed), a.poll));
    let shutdown = shutdown_signal();
    gateway::serve(listener, state, shutdown).await.context("gateway")?;
    Ok(())
}
