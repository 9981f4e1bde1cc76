//! The layer in front of /mcp: only a valid token with the tools scope gets
//! through, and its identity travels to the tools in the request extensions.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use crate::bearer::{bearer_of, challenge, identify};
use crate::AppState;

/// Every tool of the built-in endpoint needs this scope.
pub const TOOLS_SCOPE: &str = "mcp:tools";

pub async fn layer(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    // Only the header crosses the await (a borrowed Request is not Send);
    // cloning it shares its bytes rather than copying the token.
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let token = authorization.as_ref().and_then(bearer_of);
    match identify(&app, token, Some(TOOLS_SCOPE)).await {
        Ok(identity) => {
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(e) => challenge(&app, e),
    }
}
