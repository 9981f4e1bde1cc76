//! The layer in front of /mcp: only a valid token with the tools scope gets
//! through, and its identity travels to the tools in the request extensions.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::bearer::{bearer_token, challenge, identify};
use crate::AppState;

/// Every tool of the built-in endpoint needs this scope.
pub const TOOLS_SCOPE: &str = "mcp:tools";

pub async fn layer(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    // Only the token crosses the await: a borrowed Request is not Send.
    let token = bearer_token(request.headers());
    match identify(&app, token.as_deref(), Some(TOOLS_SCOPE)).await {
        Ok(identity) => {
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(e) => challenge(&app, e),
    }
}
