//! The answers of the layers every route shares (the body limit's 413, the
//! timeout's 408) come as bare text; this middleware gives them the shape
//! of the endpoint that was asked: JSON-RPC on MCP paths, an HTML page on
//! the pages people see, an OAuth error everywhere else.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::json_rpc;
use crate::oauth::OAuthError;
use crate::web::ErrorPage;
use crate::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    JsonRpc,
    Page,
    OAuth,
}

impl Shape {
    fn of(path: &str) -> Shape {
        // The built-in endpoint and every gateway backend live under /mcp.
        if path == "/mcp" || path.starts_with("/mcp/") {
            Shape::JsonRpc
        } else if matches!(
            path,
            "/authorize" | "/oauth/authorize" | "/consent" | "/callback" | "/logout"
        ) || path.starts_with("/dev-idp")
        {
            Shape::Page
        } else {
            Shape::OAuth
        }
    }
}

pub async fn layer(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let shape = Shape::of(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    if !matches!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
    ) || already_shaped(&response)
    {
        return response;
    }
    let too_large = status == StatusCode::PAYLOAD_TOO_LARGE;
    let message = if too_large {
        format!(
            "the request body is larger than the {} bytes this server accepts",
            app.settings().server.max_body_bytes
        )
    } else {
        format!(
            "the request took longer than the {} this server allows; try again",
            humantime::format_duration(app.settings().server.request_timeout.0)
        )
    };
    let mut answer = match shape {
        Shape::JsonRpc => json_rpc::error(status, Value::Null, json_rpc::INVALID_REQUEST, message),
        Shape::Page => {
            let title = if too_large {
                "This request is too large"
            } else {
                "This took too long"
            };
            ErrorPage::new(status, title, message).into_response()
        }
        Shape::OAuth => OAuthError {
            status,
            error: if too_large {
                "invalid_request"
            } else {
                "temporarily_unavailable"
            },
            description: message,
        }
        .into_response(),
    };
    *answer.status_mut() = status;
    answer
}

/// A handler that answered 413 or 408 itself already used its shape.
fn already_shaped(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_gets_its_endpoints_shape() {
        for (path, shape) in [
            ("/mcp", Shape::JsonRpc),
            ("/mcp/github", Shape::JsonRpc),
            ("/mcpx", Shape::OAuth),
            ("/authorize", Shape::Page),
            ("/consent", Shape::Page),
            ("/callback", Shape::Page),
            ("/dev-idp/authorize", Shape::Page),
            ("/token", Shape::OAuth),
            ("/register", Shape::OAuth),
            ("/oauth/token", Shape::OAuth),
        ] {
            assert_eq!(Shape::of(path), shape, "{path}");
        }
    }
}
