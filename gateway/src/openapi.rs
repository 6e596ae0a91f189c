//! The OpenAPI 3.1 document of the gateway's HTTP surface, served at `/api/openapi.json`
//! (unauthenticated: it describes, it does not reveal). Generated from the handlers' annotations
//! (utoipa), so it cannot drift from the routes it documents.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::AppState;

/// The error body of every non-MCP failure.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// What went wrong (never a secret).
    error: String,
}

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some("An MCP token (`mcpctl_pat_…`, one project) or a user's login token (`mcpctl_usr_…`); only their SHA-256 is stored (McpToken.spec.hash, User.spec.tokens[].hash).".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "mcpctl gateway", description = "MCP per project, a read-only REST API over the deployed state (writes go through git), the git webhook, health and metrics."),
    paths(
        crate::mcp::endpoint::endpoint, crate::mcp::endpoint::resource_metadata,
        crate::api::status, crate::api::list, crate::api::one, crate::api::deploys, crate::api::audit_events, crate::audit_stream::stream,
        crate::identity::whoami, crate::identity::can_i,
        crate::surface::tools,
        crate::chat::chat, crate::chat::threads::list, crate::chat::threads::one,
        crate::chat::openai_compat::models, crate::chat::openai_compat::completions,
        crate::webhook::hook, crate::health::live, crate::health::ready, crate::metrics::scrape,
    ),
    components(schemas(ErrorBody, crate::chat::ChatBody, crate::chat::openai_compat::CompletionBody)),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}
