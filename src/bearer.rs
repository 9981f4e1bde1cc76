//! Bearer-token authentication for our resource endpoints (/mcp,
//! /userinfo): validates our JWT locally, checks the token is not revoked
//! and the person is still allowed, and answers refusals with RFC 6750
//! challenges that point clients at discovery.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::allowlist::{AllowedUser, Status};
use crate::store::StoreError;
use crate::tokens::{AccessClaims, TokenError};
use crate::AppState;

/// Who is calling, as the endpoints see it.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: AllowedUser,
    pub claims: AccessClaims,
}

/// The resource server's refusals, as RFC 6750 challenges.
#[derive(Debug)]
pub enum BearerError {
    Missing,
    Invalid(String),
    InsufficientScope(&'static str),
    Unavailable,
}

impl From<StoreError> for BearerError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "database error while checking a bearer token");
        BearerError::Unavailable
    }
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
}

/// The person behind `token`, which must carry `scope` when one is named.
pub async fn identify(
    app: &AppState,
    token: Option<&str>,
    scope: Option<&'static str>,
) -> Result<Identity, BearerError> {
    let token = token.ok_or(BearerError::Missing)?;
    let settings = app.settings();
    let claims = app
        .validate_access(token, &settings.mcp_resource())
        .await
        .map_err(|e| match e {
            TokenError::Expired => BearerError::Invalid("the access token has expired".into()),
            other => BearerError::Invalid(other.to_string()),
        })?;
    let store = app.store();
    if store.is_jti_revoked(&claims.jti).await? {
        return Err(BearerError::Invalid("the access token was revoked".into()));
    }
    let user = store
        .user_by_id(&claims.sub)
        .await?
        .filter(|u| u.status == Status::Active)
        .ok_or_else(|| {
            BearerError::Invalid("the person is no longer allowed on this server".into())
        })?;
    if let Some(scope) = scope {
        if !claims.scopes().any(|s| s == scope) {
            return Err(BearerError::InsufficientScope(scope));
        }
    }
    Ok(Identity { user, claims })
}

/// The refusal; a client with no token is told where discovery starts and
/// which scopes to ask for.
pub fn challenge(app: &AppState, error: BearerError) -> Response {
    let metadata = format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        app.settings().issuer()
    );
    let (status, value) = match &error {
        BearerError::Missing => (
            StatusCode::UNAUTHORIZED,
            format!(
                "Bearer resource_metadata=\"{metadata}\", scope=\"{}\"",
                app.settings().oauth.default_scopes.join(" ")
            ),
        ),
        BearerError::Invalid(why) => (
            StatusCode::UNAUTHORIZED,
            format!("Bearer error=\"invalid_token\", error_description=\"{why}\", resource_metadata=\"{metadata}\""),
        ),
        BearerError::InsufficientScope(needed) => (
            StatusCode::FORBIDDEN,
            format!("Bearer error=\"insufficient_scope\", scope=\"{needed}\", resource_metadata=\"{metadata}\""),
        ),
        BearerError::Unavailable => {
            return (StatusCode::SERVICE_UNAVAILABLE, "the authorization database is unavailable; retry shortly").into_response()
        }
    };
    let mut response = (status, value.clone()).into_response();
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
