//! The layer in front of /mcp: only a valid token with the tools scope gets
//! through, and its identity travels to the tools in the request extensions.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::tools::ADMIN_TOOLS;
use crate::bearer::{bearer_of, challenge, identify, BearerError};
use crate::AppState;

/// Every tool of the built-in endpoint needs this scope.
pub const TOOLS_SCOPE: &str = "mcp:tools";
/// The allowlist tools need this one too.
pub const ADMIN_SCOPE: &str = "mcp:admin";
/// What a client must ask for to call an admin tool (RFC 6750 §3.1).
const ADMIN_STEP_UP: &str = "mcp:tools mcp:admin";

pub async fn layer(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    // Only the header crosses the await (a borrowed Request is not Send);
    // cloning it shares its bytes rather than copying the token.
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let token = authorization.as_ref().and_then(bearer_of);
    let identity = match identify(&app, token, Some(TOOLS_SCOPE)).await {
        Ok(identity) => identity,
        Err(e) => return challenge(&app, e),
    };
    if !identity.claims.scopes().any(|s| s == ADMIN_SCOPE) {
        // The body is small (the server's body limit applies); reading it
        // here lets a call to an admin tool be answered with the step-up
        // challenge clients know, instead of a tool error they cannot act on.
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, app.settings().server.max_body_bytes).await
        else {
            // The shared error_shape layer words it as a JSON-RPC error.
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        };
        if calls_admin_tool(&bytes) {
            return challenge(&app, BearerError::InsufficientScope(ADMIN_STEP_UP.into()));
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }
    request.extensions_mut().insert(identity);
    next.run(request).await
}

/// Whether a JSON-RPC message is a `tools/call` of an admin tool.
fn calls_admin_tool(body: &[u8]) -> bool {
    // Most calls are not: a byte search spares them a second JSON parse on
    // the hot path. A name hidden behind JSON escapes slips past this check
    // only to meet the tool's own scope check (a tool error, not a 403).
    const MARK: &[u8] = b"allowlist_";
    if !body.windows(MARK.len()).any(|w| w == MARK) {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Call<'a> {
        #[serde(borrow)]
        method: Option<&'a str>,
        params: Option<Params>,
    }
    #[derive(serde::Deserialize)]
    struct Params {
        name: Option<String>,
    }
    serde_json::from_slice::<Call>(body).is_ok_and(|call| {
        call.method == Some("tools/call")
            && call
                .params
                .and_then(|p| p.name)
                .is_some_and(|name| ADMIN_TOOLS.contains(&name.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_filter_sees_every_admin_tool() {
        for tool in ADMIN_TOOLS {
            let call = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}"}}}}"#
            );
            assert!(calls_admin_tool(call.as_bytes()), "{tool}");
        }
        assert!(!calls_admin_tool(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#
        ));
        assert!(!calls_admin_tool(
            br#"{"method":"tools/list","params":{"name":"allowlist_list"}}"#
        ));
    }
}
