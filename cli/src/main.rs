//! `mcpctl`: parse arguments, resolve settings, dispatch, map the outcome onto an exit code.

mod args;
mod authoring;
mod commands;
mod console;
mod context;
mod document_edit;
mod probe;
mod remote;
mod remote_sse;
mod render;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, ColorMode};

/// Everything a command can end with besides success.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Validation problems, already printed one per line.
    #[error("{0} error(s) found")]
    Invalid(usize),
    /// A plan with changes under `--detailed-exitcode`.
    #[error("changes present")]
    ChangesPresent,
    /// A check that already printed its report, ending with this exit code.
    #[error("check failed")]
    Failed(u8),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl CliError {
    /// The one place errors become exit codes.
    fn exit_code(&self) -> u8 {
        match self {
            CliError::ChangesPresent => 2,
            CliError::Failed(code) => *code,
            CliError::Invalid(_) | CliError::Other(_) => 1,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let choice = match cli.global.color {
        ColorMode::Auto => anstream::ColorChoice::Auto,
        ColorMode::Always => anstream::ColorChoice::Always,
        ColorMode::Never => anstream::ColorChoice::Never,
    };
    choice.write_global();
    gateway::install_crypto();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("MCPCTL_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match &e {
                CliError::ChangesPresent | CliError::Failed(_) => {}
                CliError::Invalid(_) => render::error_line(&e.to_string()),
                CliError::Other(err) => {
                    // A closed pipe (`mcpctl get all | head`) is not an error.
                    if err.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
                    {
                        return ExitCode::SUCCESS;
                    }
                    render::error_line(&format!("{err:#}"));
                }
            }
            ExitCode::from(e.exit_code())
        }
    }
}
