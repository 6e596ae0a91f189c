//! Runtimes: where servers run. `local` (the embedded default) supervises child processes;
//! `kubernetes` is not built yet (see docs/runtimes.md).

pub mod local;

pub use local::{LocalRuntime, ProcessState, ServerStatus};
