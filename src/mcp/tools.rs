//! The built-in MCP server's tools.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler};
use serde_json::json;

use crate::bearer::Identity;

#[derive(Clone)]
pub struct BrokerTools {
    tool_router: ToolRouter<Self>,
}

impl Default for BrokerTools {
    fn default() -> Self {
        BrokerTools {
            tool_router: Self::tool_router(),
        }
    }
}

/// The identity the bearer layer attached to this HTTP request.
fn identity(ctx: &RequestContext<RoleServer>) -> Result<&Identity, ErrorData> {
    ctx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Identity>())
        .ok_or_else(|| ErrorData::internal_error("the request carries no verified identity", None))
}

#[tool_router]
impl BrokerTools {
    #[tool(
        description = "Who am I? The signed-in person, their role, the client and the token's scopes and expiry."
    )]
    async fn whoami(&self, ctx: RequestContext<RoleServer>) -> Result<CallToolResult, ErrorData> {
        let Identity { user, claims } = identity(&ctx)?;
        let expires =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(claims.exp.max(0) as u64);
        let body = json!({
            "email": user.email,
            "name": user.name,
            "role": user.role,
            "user_id": user.user_id,
            "client_id": claims.client_id,
            "scopes": claims.scopes().collect::<Vec<_>>(),
            "token_expires_at": humantime::format_rfc3339_seconds(expires).to_string(),
        });
        Ok(CallToolResult::success(vec![ContentBlock::text(
            body.to_string(),
        )]))
    }
}

#[tool_handler(router = self.tool_router, name = "mcp-auth-broker")]
impl ServerHandler for BrokerTools {}
