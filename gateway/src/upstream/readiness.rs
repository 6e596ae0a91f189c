//! Lists that answer at once: what a connected server offers now, or "still starting" for one that
//! is not connected yet, instead of waiting for it (tools, prompts, resources and templates).
//!
//! # Guarantees
//! - **Never waits for a connection.** A stdio server whose process is (re)starting, or a remote one
//!   that is (re)connecting, is reported as [`Ready::Starting`] at once; a remote one is connected
//!   in the background meanwhile. When it arrives, [`super::Upstream`] announces
//!   [`super::Change::Tools`] (and prompts, resources), which every session that sees the
//!   server receives as `notifications/tools/list_changed` (and the others).
//! - A connected server's list is fetched (and cached) as before; an unavailable target is
//!   [`Ready::Unavailable`], never "starting".

use std::sync::Arc;

use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};

use super::{Target, Upstream};

/// The key of the list results' `_meta` entry naming the servers still starting.
pub const STARTING_META: &str = "io.mcpctl/starting";

/// What a server can offer right now.
#[derive(Debug, Clone)]
pub enum Ready<T> {
    Now(T),
    /// Starting or connecting: the caller is told, and notified when it arrives.
    Starting,
    /// Not reachable (with the reason), or its list failed.
    Unavailable(String),
}

impl Upstream {
    /// `None` when connected (a list can be fetched without waiting for a connection); else what to
    /// report instead, a background connection started for a remote server.
    fn not_ready<T>(self: &Arc<Self>) -> Option<Ready<T>> {
        if self.conn.borrow().is_some() {
            return None;
        }
        Some(match self.target() {
            Target::Unavailable(reason) => Ready::Unavailable(reconciler::redact::urls(&reason)),
            Target::Stdio => Ready::Starting,
            target @ (Target::Http(_) | Target::Sse(_) | Target::Attach(_)) => {
                // One background attempt at a time; its success announces the lists.
                if let Ok(guard) = self.connecting.try_lock() {
                    drop(guard);
                    let me = self.clone();
                    tokio::spawn(async move {
                        let _ = me.connection().await;
                    });
                }
                // A pod is (re)starting; a URL never connected yet is starting, one that failed
                // before is unavailable, with why.
                match self.last_error.lock().expect("error lock").clone() {
                    Some(why) if !matches!(target, Target::Attach(_)) => Ready::Unavailable(why),
                    _ => Ready::Starting,
                }
            }
        })
    }

    /// Tools, without waiting for a server that is not connected yet.
    pub async fn tools_now(self: &Arc<Self>) -> Ready<Arc<Vec<Tool>>> {
        if let Some(t) = self.lists.lock().expect("lists lock").tools.clone() {
            return Ready::Now(t);
        }
        if let Some(r) = self.not_ready() {
            return r;
        }
        self.tools().await.map_or_else(Ready::Unavailable, Ready::Now)
    }

    /// Prompts, without waiting for a server that is not connected yet.
    pub async fn prompts_now(self: &Arc<Self>) -> Ready<Arc<Vec<Prompt>>> {
        if let Some(r) = self.not_ready() {
            return r;
        }
        self.prompts().await.map_or_else(Ready::Unavailable, Ready::Now)
    }

    /// Resources and templates, without waiting for a server that is not connected yet.
    pub async fn resources_now(self: &Arc<Self>) -> Ready<(Arc<Vec<Resource>>, Arc<Vec<ResourceTemplate>>)> {
        if let Some(r) = self.not_ready() {
            return r;
        }
        self.resources().await.map_or_else(Ready::Unavailable, Ready::Now)
    }
}

impl<T> Ready<T> {
    /// The value, if there is one now.
    pub fn now(self) -> Option<T> {
        match self {
            Ready::Now(t) => Some(t),
            _ => None,
        }
    }
}
