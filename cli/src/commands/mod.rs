//! One module per command family; this one dispatches a parsed command line to them and holds
//! what they share (loading the repo, opening the store, who is acting).

mod backup;
mod blocks;
mod chat;
mod clone;
mod config;
mod console;
mod gateway_reads;
mod login;
mod logs;
mod migrate;
mod publish;
pub(crate) mod rbac;
mod read;
mod reference;
mod repo;
pub(crate) mod review;
mod secret;
mod serve;
pub(crate) mod tokens;
mod usertoken;
mod watch;

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use reconciler::Store;
use schema::DesiredState;

use crate::args::*;
use crate::render;
use crate::CliError;

type Result<T = ()> = std::result::Result<T, CliError>;

pub async fn run(cli: Cli) -> Result {
    let g = &cli.global;
    match cli.command {
        Command::Validate(a) => repo::validate(g, a),
        Command::Plan(a) => repo::plan(g, a).await,
        Command::Apply(a) => repo::apply(g, a).await,
        Command::Get(a) => read::get(g, a).await,
        Command::Describe(a) => read::describe(g, a).await,
        Command::Reconcile(a) => {
            gateway_reads::gate(g, "reconcile", None).await?;
            serve::reconcile(g, a).await
        }
        Command::History(a) => read::history(g, a).await,
        Command::Serve(a) => serve::serve(g, a).await,
        Command::Gateway(a) => serve::gateway_only(g, a).await,
        Command::Test(TestCommand::Mcp(a)) => crate::probe::run(a).await,
        Command::Console(a) => console::console(a).await,
        Command::Logs(a) => {
            gateway_reads::gate(g, "logs", a.server.split_once('/').map(|(p, _)| p)).await?;
            logs::logs(a)
        }
        Command::Status(a) => read::status(g, a).await,
        Command::Create(a) if a.kind.eq_ignore_ascii_case("usertoken") => usertoken::create(g, a),
        Command::Create(a) => clone::create(g, a),
        Command::Edit(a) => crate::authoring::edit(g, a),
        Command::Delete(a) => crate::authoring::delete(g, a),
        Command::Push(a) => publish::push(g, a).await,
        Command::Rollback(a) => publish::rollback(g, a),
        Command::Migrate(MigrateCommand::Secrets(a)) => {
            gateway_reads::gate(g, "migrate-secrets", None).await?;
            migrate::secrets(g, a).await
        }
        Command::Secret(c) => {
            if let SecretCommand::Reveal(a) = &c {
                gateway_reads::gate(g, "reveal-secrets", a.project.as_deref()).await?;
            }
            secret::run(g, c)
        }
        Command::Login(a) => login::login(a).await,
        Command::Config(c) => config::config(c),
        Command::Revoke(a) => tokens::revoke(g, a),
        Command::Rbac(RbacCommand::CanI(a)) => rbac::can_i(g, a),
        Command::Rbac(RbacCommand::WhoCan(a)) => rbac::who_can(g, a),
        Command::Chat(a) => chat::chat(a).await,
        Command::Backup(a) => backup::backup(g, a).await,
        Command::Restore(a) => backup::restore(g, a).await,
        Command::Reference { page } => reference::print(page),
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

fn database_url(g: &Global) -> anyhow::Result<String> {
    match &g.database_url {
        Some(u) => Ok(u.clone()),
        None => default_database_url(),
    }
}

/// Open the database, creating it if needed (commands that write: `apply`, `reconcile`, …).
async fn open_store(g: &Global) -> anyhow::Result<Store> {
    Ok(Store::connect(&database_url(g)?).await?)
}

/// Open the database only if it exists (commands that read): a first `mcpctl get` or a mistyped
/// `--database-url` must not leave an empty database behind, nor show an empty one as if real.
async fn open_existing_store(g: &Global) -> anyhow::Result<Store> {
    Ok(Store::connect_existing(&database_url(g)?).await?)
}

fn actor() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    format!("{user} (mcpctl cli)")
}
