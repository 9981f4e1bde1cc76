//! The built-in MCP server's tools: for everyone `whoami`, `echo` and
//! `server_time`; for admins whose token has `mcp:admin`, the allowlist.
//! Every call is audited (batched) with its outcome and duration.

use std::sync::Arc;
use std::time::Instant;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock};
use rmcp::schemars::{self, JsonSchema};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler};
use serde::Deserialize;
use serde_json::json;

use super::guard::ADMIN_SCOPE;
use crate::admin::{self, AdminError};
use crate::allowlist::{Role, Status};
use crate::bearer::Identity;
use crate::tool_audit::ToolCall;
use crate::AppState;

/// Tools that change or reveal the allowlist.
pub const ADMIN_TOOLS: [&str; 4] = [
    "allowlist_list",
    "allowlist_add",
    "allowlist_suspend",
    "allowlist_activate",
];

/// `whoami`'s answer. Written straight from borrowed fields: it is the call
/// every load test and health probe makes. Keys in alphabetical order, as
/// they always were.
#[derive(serde::Serialize)]
struct WhoAmI<'a> {
    client_id: &'a str,
    email: &'a str,
    name: Option<&'a str>,
    role: Role,
    scopes: Vec<&'a str>,
    token_expires_at: String,
    user_id: &'a str,
}

/// One per request (the endpoint is stateless); the tool table is built
/// once and shared, not rebuilt for every call.
#[derive(Clone)]
pub struct BrokerTools {
    app: AppState,
    tool_router: Arc<ToolRouter<Self>>,
}

impl BrokerTools {
    /// What `/mcp` makes its per-request handlers with.
    pub fn factory(app: AppState) -> impl Fn() -> Result<BrokerTools, std::io::Error> {
        let tool_router = Arc::new(Self::tool_router());
        move || {
            Ok(BrokerTools {
                app: app.clone(),
                tool_router: tool_router.clone(),
            })
        }
    }
}

#[derive(Deserialize, JsonSchema)]
pub struct EchoArgs {
    /// The text to send back.
    text: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct PersonArgs {
    /// The person's email address.
    email: String,
}

#[derive(Deserialize, JsonSchema)]
pub struct AddArgs {
    /// The person's email address.
    email: String,
    /// Their name, as shown in lists.
    name: Option<String>,
    /// Their role; "user" when not given.
    role: Option<RoleArg>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoleArg {
    User,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::User => Role::User,
            RoleArg::Admin => Role::Admin,
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

fn text(body: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(body.into())])
}

/// An admin action's answer: its message, or the refusal as a tool error
/// (which the person sees, unlike a protocol error).
fn answered(result: Result<String, AdminError>) -> CallToolResult {
    match result {
        Ok(message) => text(message),
        Err(e) => CallToolResult::error(vec![ContentBlock::text(e.to_string())]),
    }
}

impl BrokerTools {
    async fn set_status(
        &self,
        ctx: &RequestContext<RoleServer>,
        email: &str,
        status: Status,
    ) -> CallToolResult {
        match self.admin(ctx) {
            Ok(_) => answered(admin::users::set_status(self.app.store(), email, status).await),
            Err(refused) => refused,
        }
    }

    /// Admin tools run only for an admin whose token carries `mcp:admin`
    /// (the HTTP layer already asked for the scope; this is the last word).
    fn admin<'a>(
        &self,
        ctx: &'a RequestContext<RoleServer>,
    ) -> Result<&'a Identity, CallToolResult> {
        let who = identity(ctx)
            .map_err(|e| CallToolResult::error(vec![ContentBlock::text(e.message.to_string())]))?;
        if who.user.role != Role::Admin {
            return Err(CallToolResult::error(vec![ContentBlock::text(
                "only people with the admin role may manage the allowlist",
            )]));
        }
        if !who.claims.scopes().any(|s| s == ADMIN_SCOPE) {
            return Err(CallToolResult::error(vec![ContentBlock::text(format!(
                "this token lacks the {ADMIN_SCOPE} scope"
            ))]));
        }
        Ok(who)
    }
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
        let body = WhoAmI {
            client_id: &claims.client_id,
            email: user.email.as_str(),
            name: user.name.as_deref(),
            role: user.role,
            scopes: claims.scopes().collect(),
            token_expires_at: humantime::format_rfc3339_seconds(expires).to_string(),
            user_id: &user.user_id,
        };
        let body = serde_json::to_string(&body)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(text(body))
    }

    #[tool(description = "Sends the given text back unchanged.")]
    async fn echo(
        &self,
        Parameters(args): Parameters<EchoArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(text(args.text))
    }

    #[tool(description = "The server's current time (UTC, RFC 3339) and Unix time.")]
    async fn server_time(&self) -> Result<CallToolResult, ErrorData> {
        let now = std::time::SystemTime::now();
        let body = json!({
            "utc": humantime::format_rfc3339_seconds(now).to_string(),
            "unix": crate::store::now(),
        });
        Ok(text(body.to_string()))
    }

    #[tool(description = "Admin only (scope mcp:admin): everyone on the allowlist.")]
    async fn allowlist_list(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        if let Err(refused) = self.admin(&ctx) {
            return Ok(refused);
        }
        Ok(answered(admin::users::list(self.app.store(), true).await))
    }

    #[tool(
        description = "Admin only (scope mcp:admin): add someone to the allowlist, or update their name or role."
    )]
    async fn allowlist_add(
        &self,
        Parameters(args): Parameters<AddArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        if let Err(refused) = self.admin(&ctx) {
            return Ok(refused);
        }
        Ok(answered(
            admin::users::add(
                self.app.store(),
                &args.email,
                args.name,
                args.role.map(Role::from),
            )
            .await,
        ))
    }

    #[tool(
        description = "Admin only (scope mcp:admin): suspend someone; their tokens stop working within seconds."
    )]
    async fn allowlist_suspend(
        &self,
        Parameters(args): Parameters<PersonArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(self.set_status(&ctx, &args.email, Status::Suspended).await)
    }

    #[tool(description = "Admin only (scope mcp:admin): let a suspended person in again.")]
    async fn allowlist_activate(
        &self,
        Parameters(args): Parameters<PersonArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(self.set_status(&ctx, &args.email, Status::Active).await)
    }
}

#[tool_handler(router = self.tool_router, name = "mcp-auth-broker")]
impl ServerHandler for BrokerTools {
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let started = Instant::now();
        let tool = request.name.to_string();
        let caller = identity(&context)
            .ok()
            .map(|who| (who.user.email.to_string(), who.claims.client_id.clone()));
        let result = self
            .tool_router
            .call(ToolCallContext::new(self, request, context))
            .await;
        if let Some((email, client_id)) = caller {
            let outcome = match &result {
                Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => "error",
                Ok(_) => "ok",
                Err(_) => "refused",
            };
            self.app.tool_audit().record(ToolCall {
                email,
                client_id,
                tool,
                backend: "builtin".into(),
                outcome,
                duration: started.elapsed(),
            });
        }
        result
    }
}
