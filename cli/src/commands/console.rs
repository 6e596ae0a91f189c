//! `mcpctl console URL|PROJECT`: resolve the endpoint, start the MCP client and the audit feed
//! in tasks, and run the terminal loop that feeds keys and messages to the pure [`App`] and
//! carries out what it asks (send, save, quit).
//!
//! The terminal is restored on every exit path, panics included (ratatui's hook).

use std::time::Duration;

use anyhow::Context;
use crossterm::event::{Event, KeyEventKind};
use tokio::sync::mpsc;

use super::Result;
use crate::args::ConsoleArgs;
use crate::console::client::{self, Request};
use crate::console::feed;
use crate::console::{Action, App};
use crate::remote::Remote;

/// Where `mcpctl console PROJECT` connects when no gateway URL is given.
pub const DEFAULT_GATEWAY: &str = "http://127.0.0.1:8080";
/// How long the loop waits for input before redrawing anyway.
const TICK: Duration = Duration::from_millis(250);

/// The token the console sends (flag, then `$MCPCTL_TOKEN`).
fn token(a: &ConsoleArgs) -> Option<String> {
    a.token.clone().or_else(|| std::env::var("MCPCTL_TOKEN").ok().filter(|t| !t.is_empty()))
}

/// The MCP endpoint and the gateway behind it: a URL as given (its gateway is what precedes
/// `/projects/`), or `<gateway>/projects/<p>/mcp` with the gateway from `--url`, `$MCPCTL_URL` or
/// [`DEFAULT_GATEWAY`].
fn endpoint(a: &ConsoleArgs) -> (String, Remote) {
    let token = token(a);
    if a.target.starts_with("http://") || a.target.starts_with("https://") {
        let base = a.target.split("/projects/").next().unwrap_or(&a.target);
        return (a.target.clone(), Remote::new(base, token));
    }
    let gateway = Remote::resolve(a.url.as_deref(), token.as_deref()).unwrap_or_else(|| Remote::new(DEFAULT_GATEWAY, token));
    (format!("{}/projects/{}/mcp", gateway.url, a.target), gateway)
}

pub(super) async fn console(a: ConsoleArgs) -> Result {
    let lifecycle = client::lifecycle(&a.protocol).map_err(anyhow::Error::msg)?;
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err(anyhow::anyhow!("mcpctl console needs a terminal: stdout is not one (for scripts: mcpctl test mcp)").into());
    }
    let (url, gateway) = endpoint(&a);
    let transcript = format!("mcpctl-console-{}.jsonl", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"));
    let mut app = App::new(&url, &transcript, "connecting to the audit stream…");

    let (tap_tx, mut wire) = mpsc::unbounded_channel();
    let (req_tx, req_rx) = mpsc::unbounded_channel::<Request>();
    let (upd_tx, mut updates) = mpsc::unbounded_channel();
    let (feed_tx, mut feed_rx) = mpsc::unbounded_channel();
    tokio::spawn(client::run(url.clone(), token(&a), lifecycle, tap_tx, req_rx, upd_tx));
    if a.no_audit {
        app.on_feed(feed::FeedItem::Ended("not followed (--no-audit)".into()));
    } else {
        app.audit_note = "following".into();
        tokio::spawn(feed::follow_api(gateway, feed_tx));
    }

    // Keys come from a thread: crossterm's reader blocks.
    let (key_tx, mut keys) = mpsc::unbounded_channel();
    std::thread::spawn(move || loop {
        match crossterm::event::poll(TICK) {
            Ok(true) => match crossterm::event::read() {
                Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => {
                    if key_tx.send(k).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            },
            Ok(false) if key_tx.is_closed() => return,
            Ok(false) => {}
            Err(_) => return,
        }
    });

    let mut terminal = ratatui::try_init().context("starting the terminal UI (is stdout a terminal?)")?;
    let result = async {
        loop {
            terminal.draw(|f| app.render(f)).context("drawing")?;
            let mut actions = tokio::select! {
                Some(k) = keys.recv() => app.on_key(k),
                Some(c) = wire.recv() => app.on_wire(c),
                Some(u) = updates.recv() => { app.on_update(u); Vec::new() }
                Some(i) = feed_rx.recv() => { app.on_feed(i); Vec::new() }
                () = tokio::time::sleep(TICK) => Vec::new(),
            };
            // Take whatever else is waiting before the next frame.
            while let Ok(c) = wire.try_recv() {
                actions.extend(app.on_wire(c));
            }
            for action in actions {
                match action {
                    Action::Quit => return anyhow::Ok(()),
                    Action::Send(r) => {
                        let _ = req_tx.send(r);
                    }
                    Action::Save { path, text } => {
                        let n = text.lines().count();
                        let r = std::fs::write(&path, text).map(|()| n).map_err(|e| e.to_string());
                        app.on_saved(&path, r);
                    }
                }
            }
        }
    }
    .await;
    ratatui::restore();
    result?;
    Ok(())
}
