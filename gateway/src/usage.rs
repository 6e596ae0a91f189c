//! Token usage: when each token was last used, recorded off the hot path. A judged request
//! touches an in-memory entry of its token (a short lock, no I/O); one task writes what
//! gathered every [`FLUSH_EVERY`], all of it in one transaction (`token_usage`, read by
//! `mcpctl get mcptokens`).
//!
//! # Guarantees
//! Memory is bounded by the deployed tokens: only a token that authenticated gets an entry, and
//! entries are dropped at each write. Only the token's hash, project and name are kept.
//!
//! # Caveats
//! Usage of the last [`FLUSH_EVERY`] is lost if the process is killed (a clean shutdown writes
//! it). A failed write is tried again with the next batch while that holds at most
//! [`MAX_RETRY`] tokens, then dropped with a warning: this is a convenience for
//! `get mcptokens`, not an audit (that is `audit_events`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use reconciler::store::TokenUse;
use reconciler::Store;

use crate::auth::Caller;

/// How often gathered uses are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Pending {
    project: String,
    token: String,
    last: chrono::DateTime<chrono::Utc>,
    uses: i64,
}

/// The uses gathered since the last write, by token hash.
pub struct UsageRecorder {
    store: Store,
    pending: Mutex<HashMap<String, Pending>>,
    /// Held while writing, so a flush waits for a write in progress.
    writing: tokio::sync::Mutex<Vec<TokenUse>>,
}

impl UsageRecorder {
    /// Start the writer task (needs a Tokio runtime); it ends when the recorder is dropped.
    pub fn start(store: Store) -> Arc<Self> {
        let rec = Arc::new(Self { store, pending: Mutex::new(HashMap::new()), writing: tokio::sync::Mutex::new(Vec::new()) });
        tokio::spawn(write_every(Arc::downgrade(&rec)));
        rec
    }

    /// Count one use of `caller`'s token, now.
    pub fn touch(&self, caller: &Caller) {
        // Users' login tokens are not McpTokens: their use is not recorded (yet).
        let crate::auth::Principal::McpToken { name, project, .. } = &caller.principal else { return };
        let now = chrono::Utc::now();
        let mut pending = self.pending.lock().expect("usage lock");
        match pending.get_mut(&caller.hash) {
            Some(p) => {
                p.last = now;
                p.uses += 1;
            }
            None => {
                let p = Pending { project: project.clone(), token: name.clone(), last: now, uses: 1 };
                pending.insert(caller.hash.clone(), p);
            }
        }
    }

    /// Write what is gathered now (and wait for a write in progress).
    pub async fn flush(&self) {
        let mut retry = self.writing.lock().await;
        let taken = std::mem::take(&mut *self.pending.lock().expect("usage lock"));
        // One row per token: a batch kept from a failed write is merged with the new uses (a
        // statement may not name one row twice: Postgres refuses `ON CONFLICT` on it).
        let mut at: HashMap<String, usize> = retry.iter().enumerate().map(|(i, u)| (u.hash.clone(), i)).collect();
        for (hash, p) in taken {
            let last_used_at = p.last.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            match at.get(&hash) {
                Some(&i) => {
                    let u = &mut retry[i];
                    u.uses += p.uses;
                    u.last_used_at = u.last_used_at.clone().max(last_used_at);
                    (u.project, u.token) = (p.project, p.token);
                }
                None => {
                    at.insert(hash.clone(), retry.len());
                    retry.push(TokenUse { hash, project: p.project, token: p.token, last_used_at, uses: p.uses });
                }
            }
        }
        if retry.is_empty() {
            return;
        }
        match self.store.record_token_use(&retry).await {
            Ok(()) => retry.clear(),
            Err(e) if retry.len() <= MAX_RETRY => {
                tracing::warn!(error = %e, tokens = retry.len(), "writing token usage failed; retrying with the next batch")
            }
            Err(e) => {
                tracing::warn!(error = %e, tokens = retry.len(), "writing token usage failed; dropped");
                retry.clear();
            }
        }
    }
}

/// Uses kept for another try after a failed write (beyond this, they are dropped).
pub const MAX_RETRY: usize = 10_000;

async fn write_every(rec: Weak<UsageRecorder>) {
    loop {
        tokio::time::sleep(FLUSH_EVERY).await;
        let Some(rec) = rec.upgrade() else { return };
        rec.flush().await;
    }
}
