//! The resource kinds: names, plural and short aliases, scoping, and dependency order.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Whether a kind lives inside a project (`metadata.project`) or beside projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `metadata.project` must not be set.
    Cluster,
    /// `metadata.project` must be set.
    Project,
    /// `metadata.project` may be set; when it is, references resolve in that project first.
    Either,
}

macro_rules! kinds {
    ($($variant:ident { plural: $plural:literal, aliases: [$($alias:literal),*], scope: $scope:ident, group: $group:literal })*) => {
        /// Every resource kind, in dependency order: a kind only references kinds before it
        /// (creates and updates run in this order; deletes in reverse).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum Kind { $($variant),* }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// The `kind:` value in YAML.
            pub fn as_str(self) -> &'static str {
                match self { $(Kind::$variant => stringify!($variant)),* }
            }

            /// Lower-case plural used by the CLI and the REST API (`servers`).
            pub fn plural(self) -> &'static str {
                match self { $(Kind::$variant => $plural),* }
            }

            /// Key of the grouped form (`servers: [...]`).
            pub fn group_key(self) -> &'static str {
                match self { $(Kind::$variant => $group),* }
            }

            pub fn scope(self) -> Scope {
                match self { $(Kind::$variant => Scope::$scope),* }
            }

            /// Names the CLI accepts for this kind, besides the kind itself.
            pub fn aliases(self) -> &'static [&'static str] {
                match self { $(Kind::$variant => &[$($alias),*]),* }
            }
        }
    };
}

kinds! {
    SecretBackend { plural: "secretbackends", aliases: ["secretbackend", "sb"], scope: Cluster, group: "secretBackends" }
    Secret { plural: "secrets", aliases: ["secret", "sec"], scope: Either, group: "secrets" }
    User { plural: "users", aliases: ["user", "usr"], scope: Cluster, group: "users" }
    Group { plural: "groups", aliases: ["group", "grp"], scope: Cluster, group: "groups" }
    Template { plural: "templates", aliases: ["template", "tpl"], scope: Cluster, group: "templates" }
    Server { plural: "servers", aliases: ["server", "srv"], scope: Either, group: "servers" }
    Project { plural: "projects", aliases: ["project", "proj"], scope: Cluster, group: "projects" }
    Llm { plural: "llms", aliases: ["llm"], scope: Cluster, group: "llms" }
    Agent { plural: "agents", aliases: ["agent"], scope: Project, group: "agents" }
    Personality { plural: "personalities", aliases: ["personality", "pers"], scope: Project, group: "personalities" }
    Prompt { plural: "prompts", aliases: ["prompt"], scope: Project, group: "prompts" }
    McpToken { plural: "mcptokens", aliases: ["mcptoken", "token", "tokens"], scope: Project, group: "mcpTokens" }
    RbacDefinition { plural: "rbacdefinitions", aliases: ["rbacdefinition", "rbac"], scope: Either, group: "rbacDefinitions" }
}

impl Kind {
    /// Look a kind up by `kind:` value (exact), plural, or alias (case-insensitive).
    pub fn parse_any(s: &str) -> Option<Kind> {
        let lower = s.to_ascii_lowercase();
        Kind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str().eq_ignore_ascii_case(&lower) || k.plural() == lower || k.aliases().contains(&lower.as_str()))
    }

    /// Look a kind up by its exact YAML spelling.
    pub fn from_kind_field(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    pub fn from_group_key(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.group_key() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a kind name nobody knows.
#[derive(Debug, thiserror::Error)]
#[error("unknown kind `{0}`{hint}", hint = crate::hint::did_you_mean(.0, Kind::ALL.iter().map(|k| k.as_str())))]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::parse_any(s).ok_or_else(|| UnknownKind(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve() {
        for s in ["server", "servers", "srv", "Server", "SERVERS"] {
            assert_eq!(Kind::parse_any(s), Some(Kind::Server), "{s}");
        }
        assert_eq!(Kind::parse_any("rbac"), Some(Kind::RbacDefinition));
        let err = "sever".parse::<Kind>().unwrap_err().to_string();
        assert!(err.contains("did you mean `Server`"), "{err}");
    }

    #[test]
    fn names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for k in Kind::ALL {
            for n in [k.plural()].iter().chain(k.aliases()) {
                assert!(seen.insert(*n), "{n} used twice");
            }
        }
    }
}
