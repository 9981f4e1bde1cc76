//! JSON-RPC 2.0 error answers (§5.1) for refusals on the MCP paths that
//! happen before any MCP server sees the message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// "Invalid Request": the message cannot be taken as it is.
pub const INVALID_REQUEST: i64 = -32600;
/// "Internal error": the call did not reach a working server.
pub const INTERNAL_ERROR: i64 = -32603;

/// An error answer to the request `id` (`null` when it is not known).
pub fn error(status: StatusCode, id: Value, code: i64, message: String) -> Response {
    let body = json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message },
    });
    (status, Json(body)).into_response()
}
