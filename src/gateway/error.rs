//! Every way a gateway request can fail, answered in the protocol's own
//! shape: RFC 6750 challenges for token problems (pointing at the
//! backend's own metadata), JSON-RPC errors for everything else.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::Backend;
use crate::allowlist::Role;
use crate::bearer::{challenge_for, BearerError};
use crate::json_rpc::{self, INTERNAL_ERROR, INVALID_REQUEST};

/// Implementation-defined server error: not allowed.
const FORBIDDEN: i64 = -32001;
/// What the MCP SDKs answer for a session they do not know (with HTTP 404,
/// which tells a client to initialize again).
const SESSION_NOT_FOUND: i64 = -32001;

#[derive(Debug)]
pub enum GatewayError {
    /// No token, an invalid one, one for another resource, or one without
    /// the backend's scopes.
    Bearer(BearerError, Arc<Backend>),
    /// The request body is over `server.max_body_bytes`.
    TooLarge { limit: usize },
    /// A call (JSON-RPC `id`, `null` if none) refused or not answered.
    Call {
        backend: Arc<Backend>,
        id: Value,
        failure: Failure,
    },
}

#[derive(Debug)]
pub enum Failure {
    /// The person's allowlist role may not use this backend.
    RoleNotAllowed(Role),
    /// Connection refused, reset, DNS failure…
    Unreachable,
    /// No response headers within the backend's timeout.
    Timeout,
    /// The backend answered, but not in a way a client can use.
    BadAnswer(String),
    /// The broker could not express the caller's identity for the backend.
    Credentials,
    /// The `Mcp-Session-Id` was not given to this person for this backend.
    UnknownSession,
}

impl GatewayError {
    /// How a `tools/call` that ended this way is audited.
    pub fn outcome(&self) -> &'static str {
        match self {
            GatewayError::Bearer(..)
            | GatewayError::TooLarge { .. }
            | GatewayError::Call {
                failure: Failure::RoleNotAllowed(_) | Failure::UnknownSession,
                ..
            } => "refused",
            GatewayError::Call { .. } => "error",
        }
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let (status, code, message, id) = match self {
            GatewayError::Bearer(error, backend) => {
                return challenge_for(error, &backend.metadata_url, &backend.scope_hint)
            }
            GatewayError::TooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                INVALID_REQUEST,
                format!("the request body is larger than {limit} bytes"),
                Value::Null,
            ),
            GatewayError::Call {
                backend,
                id,
                failure,
            } => {
                let name = &backend.name;
                let (status, code, message) = match failure {
                    Failure::RoleNotAllowed(role) => (
                        StatusCode::FORBIDDEN,
                        FORBIDDEN,
                        format!(
                            "backend {name} is not open to people whose role is {role} (it admits: {})",
                            backend.roles_text()
                        ),
                    ),
                    Failure::Unreachable => (
                        StatusCode::BAD_GATEWAY,
                        INTERNAL_ERROR,
                        format!("backend {name} is unreachable"),
                    ),
                    Failure::Timeout => (
                        StatusCode::GATEWAY_TIMEOUT,
                        INTERNAL_ERROR,
                        format!(
                            "backend {name} did not answer within {}",
                            humantime::format_duration(backend.timeout)
                        ),
                    ),
                    Failure::BadAnswer(why) => (
                        StatusCode::BAD_GATEWAY,
                        INTERNAL_ERROR,
                        format!("backend {name} {why}"),
                    ),
                    Failure::UnknownSession => (
                        StatusCode::NOT_FOUND,
                        SESSION_NOT_FOUND,
                        format!(
                            "no session of backend {name} has this id for you; start a new one (initialize)"
                        ),
                    ),
                    Failure::Credentials => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        INTERNAL_ERROR,
                        format!("the broker cannot express the caller's identity for backend {name}"),
                    ),
                };
                (status, code, message, id)
            }
        };
        json_rpc::error(status, id, code, message)
    }
}
