//! The reconciler: reads a repo (directory or git tree), validates it, plans against the runtime
//! database and applies the plan in one transaction; the controller follows a git branch so that
//! a commit is a deploy.

pub mod audit;
pub mod audit_minutes;
pub mod backup;
pub mod controller;
mod credentials;
pub mod decode_cache;
pub mod leader;
pub mod leak_scan;
pub mod plan;
pub mod publish;
pub mod recipients;
pub mod redact;
pub mod repo;
pub mod runtime;
pub mod secrets;
pub mod signature;
pub mod source;
pub mod store;

pub use controller::{Outcome, Reconciler, Settings};
pub use plan::{plan, Action, Change, Plan, StoredResource, Summary};
pub use repo::{GitRepo, RepoSource};
pub use source::{read_dir, read_git_tree, read_git_tree_at, CommitInfo, SourceError};
pub use store::{Backend, Deploy, DeployMeta, Store, StoreError};
