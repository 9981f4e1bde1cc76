//! Bearer-token authentication for our resource endpoints (/mcp, the
//! gateway's backends, /userinfo): validates our JWT locally (from the verified-token cache when
//! it can), asks this replica's revocation view whether the token, the
//! person and the client's grant still stand, and answers refusals with
//! RFC 6750 challenges that point clients at discovery. No database read on
//! the way, except once for a person the view has not met yet.

use std::borrow::Cow;
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::allowlist::AllowedUser;
use crate::revocation::Verdict;
use crate::store::StoreError;
use crate::tokens::{AccessClaims, TokenError};
use crate::AppState;

/// Who is calling, as the endpoints see it; shared, not copied, per request.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: Arc<AllowedUser>,
    pub claims: Arc<AccessClaims>,
}

/// The resource server's refusals, as RFC 6750 challenges.
#[derive(Debug)]
pub enum BearerError {
    Missing,
    Invalid(String),
    /// The scopes (space-separated) the client must ask for.
    InsufficientScope(Cow<'static, str>),
    /// Nothing can be vouched for right now (database unreachable, or the
    /// revocation view too old): 503, retry shortly.
    Unavailable,
}

impl From<StoreError> for BearerError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "database error while checking a bearer token");
        BearerError::Unavailable
    }
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(bearer_of)
}

/// The token of an `Authorization` header's value, if it is a bearer one.
pub fn bearer_of(authorization: &HeaderValue) -> Option<&str> {
    authorization
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// Which of our resources (RFC 8707 audiences) a token must be for.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// This one: a resource endpoint accepts only tokens minted for it, so
    /// a token for one gateway backend is refused at another.
    Only(&'a str),
    /// Any resource of this broker: endpoints about the token itself
    /// (userinfo, introspection).
    AnyOfOurs,
}

/// The person behind a token for the built-in MCP endpoint, which must
/// carry `scope` when one is named.
pub async fn identify(
    app: &AppState,
    token: Option<&str>,
    scope: Option<&'static str>,
) -> Result<Identity, BearerError> {
    identify_for(app, token, Audience::Only(app.mcp_resource()), scope).await
}

/// The person behind a token for `audience`, which must carry `scope` when
/// one is named.
pub async fn identify_for(
    app: &AppState,
    token: Option<&str>,
    audience: Audience<'_>,
    scope: Option<&'static str>,
) -> Result<Identity, BearerError> {
    let token = token.ok_or(BearerError::Missing)?;
    let validated = match audience {
        Audience::Only(audience) => app.validate_access(token, audience).await,
        Audience::AnyOfOurs => app.validate_access_any(token).await,
    };
    let claims = validated.map_err(|e| match e {
        TokenError::Expired => BearerError::Invalid("the access token has expired".into()),
        other => BearerError::Invalid(other.to_string()),
    })?;
    let user = admitted(app, &claims).await?;
    if let Some(scope) = scope {
        if !claims.scopes().any(|s| s == scope) {
            return Err(BearerError::InsufficientScope(scope.into()));
        }
    }
    Ok(Identity { user, claims })
}

/// The revocation view's word on validly signed claims.
async fn admitted(app: &AppState, claims: &AccessClaims) -> Result<Arc<AllowedUser>, BearerError> {
    let view = app.revocation();
    let mut verdict = view.verdict(claims).map_err(|_| BearerError::Unavailable)?;
    if let Verdict::UnknownPerson = verdict {
        view.learn_person(app.store(), &claims.sub).await?;
        verdict = view.verdict(claims).map_err(|_| BearerError::Unavailable)?;
    }
    match verdict {
        Verdict::Admit(user) => Ok(user),
        Verdict::Refuse(refusal) => Err(BearerError::Invalid(refusal.reason().into())),
        // Only if the view was replaced by a full reload between the two
        // looks; the client's retry will find the person.
        Verdict::UnknownPerson => Err(BearerError::Unavailable),
    }
}

/// The built-in endpoint's refusal; a client with no token is told where
/// discovery starts and which scopes to ask for.
pub fn challenge(app: &AppState, error: BearerError) -> Response {
    let metadata = format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        app.settings().issuer()
    );
    challenge_for(
        error,
        &metadata,
        &app.settings().oauth.default_scopes.join(" "),
    )
}

/// A resource's refusal: `metadata` is its protected-resource metadata
/// URL (RFC 9728), `scope` what a client without a token should ask for.
pub fn challenge_for(error: BearerError, metadata: &str, scope: &str) -> Response {
    let (status, value) = match &error {
        BearerError::Missing => (
            StatusCode::UNAUTHORIZED,
            format!("Bearer resource_metadata=\"{metadata}\", scope=\"{scope}\""),
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
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "1")],
                "the authorization data is unavailable; retry shortly",
            )
                .into_response()
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
