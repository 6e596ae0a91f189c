//! Runtimes: where servers run. `local` supervises child processes for `command`/`packageName`
//! servers; `kubernetes` applies `image` servers as Deployments and Services.

pub mod kubernetes;
pub mod local;

pub use kubernetes::KubeRuntime;
pub use local::{LocalRuntime, ProcessState, ServerStatus};

use schema::DesiredState;
use tracing::warn;

/// One runtime the reconciler drives after each deploy.
pub enum Runtime {
    Local(LocalRuntime),
    Kubernetes(KubeRuntime),
}

impl Runtime {
    /// Bring the runtime in line with `state`. Failures are logged; the next sync retries.
    pub async fn sync(&mut self, state: &DesiredState) {
        match self {
            Runtime::Local(rt) => rt.sync(state).await,
            Runtime::Kubernetes(rt) => {
                if let Err(e) = rt.sync(state).await {
                    warn!(error = %e, "kubernetes sync failed; retrying on the next reconcile");
                }
            }
        }
    }

    /// Stop what this process runs (local processes); Kubernetes objects stay.
    pub async fn shutdown(&mut self) {
        if let Runtime::Local(rt) = self {
            rt.shutdown().await;
        }
    }
}
