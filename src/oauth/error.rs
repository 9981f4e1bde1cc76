//! The OAuth boundary's error: RFC 6749 §5.2 JSON (`error`,
//! `error_description`), never cached.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", d)
    }
    pub fn invalid_redirect_uri(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_redirect_uri", d)
    }
    pub fn invalid_client_metadata(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_client_metadata", d)
    }
    pub fn access_denied(d: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "access_denied", d)
    }
    /// RFC 6750 §3.1, for the initial access token at /register.
    pub fn invalid_token(d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", d)
    }
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the authorization server cannot reach its database; try again shortly",
        )
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            // The database refused what the request carried: the caller's fault.
            StoreError::Rejected(_) => {
                tracing::warn!(error = %e, "the database refused a request's data");
                OAuthError::invalid_request("the request carries data this server cannot store")
            }
            other => {
                tracing::error!(error = %other, "database error at the OAuth boundary");
                OAuthError::unavailable()
            }
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({ "error": self.error, "error_description": self.description })),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let challenge = match self.error {
            "invalid_client" => "Basic realm=\"mcp-auth-broker\"",
            "invalid_token" => "Bearer error=\"invalid_token\"",
            _ => "",
        };
        if !challenge.is_empty() {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
