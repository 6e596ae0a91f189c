//! Read commands: `get` (resources and `auditevents`), `describe`, `history` and `status`, from
//! the database, or through a gateway when one is named (`super::gateway_reads`).

use std::io::Write;

use anyhow::Context;

use reconciler::{plan::StoredResource, Store};
use schema::{Kind, Resource};

use super::{gateway_reads, open_existing_store, Result};
use crate::args::*;
use crate::render;

pub(super) fn parse_kind(s: &str) -> anyhow::Result<Kind> {
    Ok(s.parse::<Kind>()?)
}

pub(super) async fn select(
    store: &Store,
    kind: Option<Kind>,
    name: Option<&str>,
    project: Option<&str>,
) -> anyhow::Result<Vec<(StoredResource, Resource)>> {
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

pub(super) async fn get(g: &Global, a: GetArgs) -> Result {
    if matches!(a.kind.to_ascii_lowercase().as_str(), "auditevents" | "auditevent" | "audit") {
        return audit_events(g, a).await;
    }
    if matches!(a.kind.to_ascii_lowercase().as_str(), "threads" | "thread") {
        return super::chat::get_threads(&a).await;
    }
    if let Some(r) = gateway_reads::remote(g)? {
        return gateway_reads::get(&r, a).await;
    }
    let kind = if a.kind.eq_ignore_ascii_case("all") { None } else { Some(parse_kind(&a.kind)?) };
    let store = open_existing_store(g).await?;
    let items = select(&store, kind, a.name.as_deref(), a.project.as_deref()).await?;
    if let (Some(k), Some(n), true) = (kind, &a.name, items.is_empty()) {
        return Err(anyhow::anyhow!(
            "{} `{n}` not found{}",
            k,
            a.project.as_ref().map(|p| format!(" in project `{p}`")).unwrap_or_default()
        )
        .into());
    }
    let mut out = anstream::stdout();
    if kind == Some(Kind::McpToken) && a.output != GetFormat::Yaml {
        return super::tokens::list(&mut out, &store, &items, a.output == GetFormat::Json).await;
    }
    print_resources(&mut out, kind, &items, a.output)
}

/// `get`'s output, local or remote.
pub(super) fn print_resources(out: &mut impl Write, kind: Option<Kind>, items: &[(StoredResource, Resource)], f: GetFormat) -> Result {
    match f {
        GetFormat::Table => render::table(out, kind, items),
        GetFormat::Yaml => items.iter().try_for_each(|(_, r)| write!(out, "{}", schema::emit::yaml_document(&r.to_json()))),
        GetFormat::Json => {
            let list: Vec<serde_json::Value> = items.iter().map(|(_, r)| r.to_json()).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&list).expect("json"))
        }
    }
    .context("writing output")?;
    Ok(())
}

pub(super) async fn describe(g: &Global, a: DescribeArgs) -> Result {
    if a.kind.eq_ignore_ascii_case("thread") {
        return super::chat::describe_thread(&a.name, a.url.as_deref(), a.output).await;
    }
    if a.show_values {
        gateway_reads::gate(g, "reveal-secrets", a.project.as_deref()).await?;
    } else if let Some(r) = gateway_reads::remote(g)? {
        return gateway_reads::describe(&r, a).await;
    }
    let kind = parse_kind(&a.kind)?;
    let store = open_existing_store(g).await?;
    let items = select(&store, Some(kind), Some(&a.name), a.project.as_deref()).await?;
    let (row, res) = match items.len() {
        0 => return Err(anyhow::anyhow!("{kind} `{}` not found", a.name).into()),
        1 => items.into_iter().next().expect("one item"),
        _ => return Err(anyhow::anyhow!("{kind} `{}` exists in several projects; pass -p PROJECT", a.name).into()),
    };
    let related = select(&store, None, None, None).await?;
    if a.personality.is_some() && kind != Kind::Agent {
        return Err(anyhow::anyhow!("--personality is for agents only").into());
    }
    let preview = match kind {
        Kind::Agent => {
            let state = schema::DesiredState::new(related.iter().map(|(_, r)| r.clone()).collect());
            Some(super::blocks::preview(&state, &res, a.personality.as_deref()).map_err(anyhow::Error::from)?)
        }
        _ => None,
    };
    let mut out = anstream::stdout();
    if a.output == TextOrJson::Json {
        if a.show_values {
            return Err(anyhow::anyhow!("--show-values prints text only; drop -o json").into());
        }
        let mut doc = res.to_json();
        if let Some(p) = &preview {
            doc["preview"] = p.to_json();
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&doc).expect("json")).context("writing output")?;
        return Ok(());
    }
    render::describe(&mut out, &row, &res, &related).context("writing output")?;
    if let Some(p) = &preview {
        p.write(&mut out).context("writing output")?;
    }
    if kind == Kind::Secret {
        secret_values(&store, &res, &related, &a, &mut out).await?;
    } else if a.show_values {
        return Err(anyhow::anyhow!("--show-values is for Secrets only").into());
    }
    Ok(())
}

/// Where a Secret's values live and, with `--show-values`, the values themselves, read from
/// that backend. The gate is the age identity (whoever can read it can decrypt the repo anyway)
/// and, when a login context is set, the gateway's `can-i reveal-secrets` (checked by
/// [`describe`]).
async fn secret_values(
    store: &Store,
    res: &Resource,
    all: &[(StoredResource, Resource)],
    a: &DescribeArgs,
    out: &mut impl Write,
) -> Result {
    let state = schema::DesiredState::new(all.iter().map(|(_, r)| r.clone()).collect());
    let resolver = match (&a.age_identity, a.show_values) {
        (Some(f), true) => reconciler::secrets::SecretResolver::from_file(f).context("loading --age-identity")?,
        (None, true) => {
            return Err(anyhow::anyhow!("--show-values needs the age identity (--age-identity or MCPCTL_AGE_IDENTITY_FILE)").into())
        }
        _ => reconciler::secrets::SecretResolver::none(),
    };
    let backends = reconciler::secrets::Backends::new(&state, store, &resolver).await.context("reading secret locations")?;
    let location = backends.location(res);
    let moved = store.secret_locations().await.context("reading secret locations")?.contains_key(&res.key().to_string());
    let at = match &location {
        Some(b) => format!("{b}{}", if moved { " (moved there by `mcpctl migrate secrets`)" } else { "" }),
        None => "git (no SecretBackend)".into(),
    };
    writeln!(out, "{:<10} {at}", "Location:").context("writing output")?;
    if !a.show_values {
        return Ok(());
    }
    let values = match &location {
        Some(b) => backends.read(res, b).await.map_err(anyhow::Error::from)?,
        None => {
            let schema::Spec::Secret(s) = &res.spec else { return Ok(()) };
            let mut v = std::collections::BTreeMap::new();
            for k in s.data.keys() {
                v.insert(
                    k.clone(),
                    resolver
                        .resolve(
                            &state,
                            res.metadata.project.as_deref(),
                            &schema::spec::SecretKeyRef { name: res.metadata.name.clone(), key: k.clone() },
                        )
                        .map_err(anyhow::Error::from)?,
                );
            }
            v
        }
    };
    writeln!(out, "Values:").context("writing output")?;
    for (k, v) in values {
        writeln!(out, "  {k}: {v}").context("writing output")?;
    }
    Ok(())
}

pub(super) async fn history(g: &Global, a: HistoryArgs) -> Result {
    if let Some(r) = gateway_reads::remote(g)? {
        return gateway_reads::history(&r, a).await;
    }
    let store = open_existing_store(g).await?;
    let deploys = store.deploys(a.limit).await.context("reading deploys")?;
    let mut out = anstream::stdout();
    match a.output {
        TextOrJson::Json => writeln!(out, "{}", serde_json::to_string_pretty(&deploys).expect("json")),
        TextOrJson::Text => render::history(&mut out, &deploys),
    }
    .context("writing output")?;
    Ok(())
}

pub(super) async fn status(g: &Global, a: StatusArgs) -> Result {
    if let Some(r) = gateway_reads::remote(g)? {
        return gateway_reads::status(&r, a).await;
    }
    let store = open_existing_store(g).await?;
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
    let mut status = status;
    let reconcilers = store.reconcilers().await.context("reading the reconcilers' roles")?;
    if !reconcilers.is_empty() {
        status["reconcilers"] = reconcilers.iter().map(|(name, role)| serde_json::json!({"name": name, "role": role})).collect();
    }
    print_status(&status, a.output)
}

/// `status`' output, local or remote.
pub(super) fn print_status(status: &serde_json::Value, f: TextOrJson) -> Result {
    let mut out = anstream::stdout();
    match f {
        TextOrJson::Json => writeln!(out, "{}", serde_json::to_string_pretty(status).expect("json")),
        TextOrJson::Text => render::status(&mut out, status),
    }
    .context("writing output")?;
    Ok(())
}

pub(super) async fn audit_events(g: &Global, a: GetArgs) -> Result {
    let since = match &a.since {
        None => None,
        Some(s) => Some(match humantime::parse_duration(s) {
            Ok(d) => (chrono::Utc::now() - chrono::Duration::from_std(d).context("--since is too long")?)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            Err(_) => chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| anyhow::anyhow!("--since `{s}`: expected a duration (1h, 30m) or an RFC 3339 time"))?
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }),
    };
    if a.watch {
        return super::watch::audit(g, a, since).await;
    }
    if let Some(r) = gateway_reads::remote(g)? {
        return gateway_reads::audit_events(&r, a, since).await;
    }
    let store = open_existing_store(g).await?;
    let filter =
        reconciler::audit::AuditFilter { project: a.project.clone(), token: a.token.clone(), since, limit: a.limit, ..Default::default() };
    let events = store.audit_events(&filter).await.context("reading the audit log")?;
    print_audit(&mut anstream::stdout(), &events, a.output)
}

/// `get auditevents`' output, local or remote.
pub(super) fn print_audit(out: &mut impl Write, events: &[reconciler::audit::AuditEvent], f: GetFormat) -> Result {
    match f {
        GetFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&events).expect("json")),
        GetFormat::Yaml => write!(out, "{}", schema::emit::yaml_document(&serde_json::to_value(events).expect("json"))),
        GetFormat::Table => render::audit(out, events),
    }
    .context("writing output")?;
    Ok(())
}
