//! `mcpctl console`: a terminal MCP client. The pure part ([`App`]: state, keys, drawing) is
//! driven by the loop in `commands/console.rs`; the network part ([`client`], [`feed`]) runs in
//! tasks that talk to it through channels; [`wire`] records every message at the transport.

pub mod app;
pub mod client;
pub mod feed;
pub mod form;
pub mod inspector;
pub mod outcome;
pub mod view;
pub mod wire;

#[cfg(test)]
mod snapshots;

pub use app::{Action, App};
pub use wire::{Recorder, Tap};
