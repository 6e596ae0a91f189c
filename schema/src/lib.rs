//! mcpctl's resource model: the kinds and their specs, YAML parsing that keeps positions,
//! validation of a whole repo, JSON Schema, and RBAC evaluation.
//!
//! Pure: no I/O. Files come in as bytes ([`SourceFile`]); whoever reads them (a directory walk,
//! a git tree) lives in the reconciler.

pub mod access;
pub mod agent;
pub mod ceiling;
pub mod desired;
pub mod diagnostic;
pub mod document;
pub mod emit;
mod hint;
pub mod json_schema;
pub mod kind;
pub mod load;
pub mod rank;
pub mod rbac;
pub mod resource;
pub mod spec;
pub mod string_map;
pub mod template;
pub mod token;
pub mod validate;

pub use desired::DesiredState;
pub use diagnostic::{Diagnostic, Diagnostics};
pub use hint::did_you_mean;
pub use kind::{Kind, Scope};
pub use load::{is_resource_path, FileCache, Refusal, SourceFile};
pub use resource::{is_sensitive, Metadata, Resource, ResourceKey, Spec, API_VERSION};
pub use string_map::StringMap;
pub use validate::{check, check_cached, validate};
