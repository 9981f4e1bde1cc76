//! The bearer layer in front of /mcp: validates our JWT locally, checks the
//! token is not revoked and the person is still allowed, and hands the
//! identity to the tools through the request's extensions.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::allowlist::{AllowedUser, Status};
use crate::store::StoreError;
use crate::tokens::{AccessClaims, TokenError};
use crate::AppState;

/// Every tool of the built-in endpoint needs this scope.
pub const TOOLS_SCOPE: &str = "mcp:tools";

/// Who is calling, as the tools see it.
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
    InsufficientScope,
    Unavailable,
}

impl From<StoreError> for BearerError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "database error while checking a bearer token");
        BearerError::Unavailable
    }
}

pub async fn layer(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    // Only the token crosses the await: a borrowed Request is not Send.
    let token = bearer_token(&request);
    match authenticate(&app, token.as_deref()).await {
        Ok(identity) => {
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(e) => challenge(&app, e),
    }
}

fn bearer_token(request: &Request) -> Option<String> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
}

async fn authenticate(app: &AppState, token: Option<&str>) -> Result<Identity, BearerError> {
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
    if !claims.scopes().any(|s| s == TOOLS_SCOPE) {
        return Err(BearerError::InsufficientScope);
    }
    Ok(Identity { user, claims })
}

fn challenge(app: &AppState, error: BearerError) -> Response {
    let metadata = format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        app.settings().issuer()
    );
    let (status, value) = match &error {
        BearerError::Missing => (
            StatusCode::UNAUTHORIZED,
            format!("Bearer resource_metadata=\"{metadata}\", scope=\"{TOOLS_SCOPE}\""),
        ),
        BearerError::Invalid(why) => (
            StatusCode::UNAUTHORIZED,
            format!("Bearer error=\"invalid_token\", error_description=\"{why}\", resource_metadata=\"{metadata}\""),
        ),
        BearerError::InsufficientScope => (
            StatusCode::FORBIDDEN,
            format!("Bearer error=\"insufficient_scope\", scope=\"{TOOLS_SCOPE}\", resource_metadata=\"{metadata}\""),
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
