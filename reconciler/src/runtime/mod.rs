//! Runtimes: where servers run. `local` supervises child processes for `command`/`packageName`
//! servers; `kubernetes` applies `image` servers as Deployments and Services.

pub mod kubernetes;
pub mod local;
pub mod run_as;

pub use kubernetes::KubeRuntime;
pub use local::{Attached, LocalRuntime, ProcessState, ReplicaStatus, Restart, ServerStatus};
pub use run_as::{RunAs, RunAsError};

use schema::DesiredState;
use tracing::warn;

/// One runtime the reconciler drives after each deploy.
pub enum Runtime {
    Local(LocalRuntime),
    Kubernetes(KubeRuntime),
}

impl Runtime {
    /// The name statuses are stored under.
    pub fn name(&self) -> &'static str {
        match self {
            Runtime::Local(_) => "local",
            Runtime::Kubernetes(_) => "kubernetes",
        }
    }

    /// Bring the runtime in line with `state`; returns each server's status as JSON. Failures are
    /// logged and reported in the statuses; the next sync retries.
    pub async fn sync(&mut self, state: &DesiredState) -> Vec<(String, serde_json::Value)> {
        match self {
            Runtime::Local(rt) => {
                rt.sync(state).await;
                // Give fresh processes a moment so the stored state is not just "starting".
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                rt.status().into_iter().map(|s| (s.name.clone(), serde_json::to_value(&s).unwrap_or_default())).collect()
            }
            Runtime::Kubernetes(rt) => match rt.sync(state).await {
                Ok(ready) => ready.into_iter().map(|r| (r.server.clone(), serde_json::to_value(&r).unwrap_or_default())).collect(),
                Err(e) => {
                    warn!(error = %e, "kubernetes sync failed; retrying on the next reconcile");
                    vec![("*".to_string(), serde_json::json!({"error": e.to_string()}))]
                }
            },
        }
    }

    /// Stop what this process runs (local processes); Kubernetes objects stay.
    pub async fn shutdown(&mut self) {
        if let Runtime::Local(rt) = self {
            rt.shutdown().await;
        }
    }
}
