//! `POST /introspect` (RFC 7662) for resource servers: `active: true` only
//! for a live token of ours whose person is still allowed.

use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client_auth::{authenticate, basic_credentials, ClientCredentials};
use super::error::OAuthError;
use crate::allowlist::Status;
use crate::bearer::{identify_for, Audience, BearerError, Identity};
use crate::secrets;
use crate::store::now;
use crate::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct IntrospectForm {
    pub token: Option<String>,
}

pub async fn introspect(
    app: &AppState,
    headers: &HeaderMap,
    client: &ClientCredentials,
    form: IntrospectForm,
) -> Result<Value, OAuthError> {
    authorize_caller(app, headers, client).await?;
    let token = form
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let inactive = json!({ "active": false });
    let identity = match identify_for(app, Some(token), Audience::AnyOfOurs, None).await {
        Err(BearerError::Unavailable) => return Err(OAuthError::unavailable()),
        other => other,
    };
    if let Ok(Identity { user, claims }) = identity {
        return Ok(json!({
            "active": true,
            "token_type": "Bearer",
            "scope": claims.scope,
            "client_id": claims.client_id,
            "username": user.email,
            "sub": claims.sub,
            "aud": claims.aud,
            "iss": claims.iss,
            "exp": claims.exp,
            "iat": claims.iat,
            "nbf": claims.nbf,
            "jti": claims.jti,
        }));
    }
    let store = app.store();
    let Some(refresh) = store.refresh_token(&secrets::hash(token)).await? else {
        return Ok(inactive);
    };
    let live =
        refresh.used_at.is_none() && refresh.revoked_at.is_none() && refresh.expires_at > now();
    let user = store
        .user_by_id(&refresh.user_id)
        .await?
        .filter(|u| u.status == Status::Active);
    Ok(match (live, user) {
        (true, Some(user)) => json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": refresh.scope,
            "client_id": refresh.client_id,
            "username": user.email,
            "sub": user.user_id,
            "aud": refresh.resource,
            "exp": refresh.expires_at,
        }),
        _ => inactive,
    })
}

/// A configured resource server (HTTP Basic) or a confidential client.
async fn authorize_caller(
    app: &AppState,
    headers: &HeaderMap,
    client: &ClientCredentials,
) -> Result<(), OAuthError> {
    let resource_servers = &app.settings().introspection.clients;
    if let Some((id, secret)) = basic_credentials(headers) {
        if let Some(configured) = resource_servers.iter().find(|c| c.id == id) {
            let expected = configured.resolve_secret().map_err(|e| {
                tracing::error!(error = %e, "introspection client secret unavailable");
                OAuthError::unavailable()
            })?;
            return if secrets::matches(&secret, &secrets::hash(&expected)) {
                Ok(())
            } else {
                Err(OAuthError::invalid_client("wrong resource-server secret"))
            };
        }
    }
    let client = authenticate(app, headers, client).await?;
    if !client.is_confidential() {
        return Err(OAuthError::invalid_client(
            "introspection needs a resource-server credential or a confidential client",
        ));
    }
    Ok(())
}
