//! The reconciler: reads a repo (directory or git tree), validates it, plans against the runtime
//! database and applies the plan in one transaction.

pub mod plan;
pub mod source;
pub mod store;

pub use plan::{plan, Action, Change, Plan, StoredResource, Summary};
pub use source::{read_dir, read_git_tree, CommitInfo, SourceError};
pub use store::{Backend, Deploy, DeployMeta, Store, StoreError};
