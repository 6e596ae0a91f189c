//! Who is calling one MCP request, attached to the HTTP request before rmcp sees it, and what
//! the caller's bindings let it see.

use std::sync::Arc;

use schema::rbac::{self, Request as RbacRequest};
use schema::spec::{Role, RoleBinding};

use crate::auth::Caller;
use crate::upstream::CallerKey;

/// Who is calling, attached to the HTTP request before rmcp sees it.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    /// `None`: anonymous caller of a public project.
    pub caller: Option<Caller>,
    pub bindings: Arc<Vec<RoleBinding>>,
    /// The `Mcp-Session-Id` header, when the request belongs to a session.
    pub session: Option<String>,
    /// The chat thread an agent's tool call belongs to (recorded in audit).
    pub thread: Option<String>,
}

impl Access {
    pub fn sees(&self, server: &str, item: Option<&str>, role: Role) -> bool {
        if self.caller.is_none() {
            return true;
        }
        let allows =
            |name: &str| rbac::allows(&self.bindings, RbacRequest::Resource { role, kind: schema::Kind::Server, name: Some(name) });
        allows(server) || item.is_some_and(|i| allows(&format!("{server}/{i}")))
    }

    /// Whether the caller holds any grant on `server` or one of its items.
    pub fn sees_server(&self, server: &str) -> bool {
        self.sees(server, None, Role::View)
            || self.bindings.iter().any(|b| {
                b.resource.as_deref().is_some_and(|r| r == "*" || r == "servers")
                    && b.name.as_deref().is_some_and(|n| n.starts_with(&format!("{server}/")))
            })
    }

    /// Whether the caller may see the item `item` of `server` (a tool or prompt name, a resource
    /// URI or template): a grant on the server, or on `server/<item>`. A grant on one item does not
    /// reach the server's other items.
    pub fn sees_item(&self, server: &str, item: &str, role: Role) -> bool {
        self.sees(server, Some(item), role)
    }

    /// Whether the caller holds `role` on the whole server (not just on some of its items).
    pub fn holds_server(&self, server: &str, role: Role) -> bool {
        self.sees(server, None, role)
    }

    /// The caller as the upstream side tells callers apart: this token in `project`, on this MCP
    /// session — or, without a session, this one request.
    pub fn caller_key(&self, project: &str) -> CallerKey {
        CallerKey::new(project, &self.subject(), self.session.as_deref())
    }

    pub fn token_name(&self) -> String {
        self.caller.as_ref().map_or_else(|| "-".to_string(), Caller::display_name)
    }

    /// The gate subject: the token's hash (not secret), or `anonymous`.
    pub fn subject(&self) -> String {
        self.caller.as_ref().map_or_else(|| "anonymous".to_string(), |c| c.hash.clone())
    }

    pub fn hash_prefix(&self) -> String {
        let s = self.subject();
        s.strip_prefix("sha256:").map_or_else(|| "-".to_string(), |h| h[..12.min(h.len())].to_string())
    }
}
