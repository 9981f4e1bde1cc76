//! `POST /token`: authorization codes (with PKCE) for an access JWT and a
//! refresh token.

use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client_auth::authenticate;
use super::error::OAuthError;
use crate::allowlist::Status;
use crate::secrets;
use crate::store::{now, AuditEvent, NewRefreshToken, Redemption};
use crate::tokens::{mint, AccessClaims};
use crate::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub resource: Option<String>,
}

pub async fn exchange(
    app: &AppState,
    headers: &HeaderMap,
    form: TokenForm,
) -> Result<Value, OAuthError> {
    let client = authenticate(
        app.store(),
        headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )
    .await?;
    match form.grant_type.as_deref() {
        Some("authorization_code") => {}
        Some(other) => {
            return Err(OAuthError::unsupported_grant_type(format!(
                "grant_type {other:?} is not supported"
            )))
        }
        None => return Err(OAuthError::invalid_request("grant_type is required")),
    }
    let code = form
        .code
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let verifier = form
        .code_verifier
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    let store = app.store();
    let code_hash = secrets::hash(code);
    let invalid =
        || OAuthError::invalid_grant("the authorization code is invalid, expired or already used");
    let issued = store.auth_code(&code_hash).await?.ok_or_else(invalid)?;
    let at = now();
    if issued.used_at.is_some() {
        // A replayed code may be a stolen one: withdraw what it bought.
        let access = issued.access_jti.as_deref().zip(issued.access_expires_at);
        store
            .revoke_grant(issued.refresh_family_id.as_deref(), access, at)
            .await?;
        let _ = store
            .audit(AuditEvent {
                event: "code_replay",
                email: None,
                client_id: Some(&client.client_id),
                detail: json!({ "revoked_family": issued.refresh_family_id }),
                ip: None,
            })
            .await;
        return Err(invalid());
    }
    if issued.expires_at <= at || issued.client_id != client.client_id {
        return Err(invalid());
    }
    if form.redirect_uri.as_deref() != Some(issued.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    if !secrets::pkce_s256_matches(verifier, &issued.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    if let Some(resource) = form.resource.as_deref() {
        if resource.trim_end_matches('/') != issued.resource {
            return Err(OAuthError::invalid_target(format!(
                "resource must be {}",
                issued.resource
            )));
        }
    }
    let user = store
        .user_by_id(&issued.user_id)
        .await?
        .filter(|u| u.status == Status::Active)
        .ok_or_else(|| {
            OAuthError::invalid_grant("the person is no longer allowed on this server")
        })?;

    let settings = app.settings();
    let ttl = settings.tokens.access_token_ttl.0.as_secs() as i64;
    let claims = AccessClaims {
        iss: settings.issuer().to_owned(),
        sub: user.user_id.clone(),
        aud: issued.resource.clone(),
        exp: at + ttl,
        iat: at,
        nbf: at,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: client.client_id.clone(),
        scope: issued.scope.clone(),
        email: user.email.to_string(),
    };
    let access_token = mint(app.keys(), &claims).map_err(|e| {
        tracing::error!(error = %e, "cannot sign an access token");
        OAuthError::unavailable()
    })?;
    let refresh_token = client
        .grant_types
        .iter()
        .any(|g| g == "refresh_token")
        .then(secrets::generate);
    let refresh_hash = refresh_token.as_deref().map(secrets::hash);
    let family_id = uuid::Uuid::new_v4().to_string();
    let redemption = Redemption {
        code_hash: &code_hash,
        access_jti: &claims.jti,
        access_expires_at: claims.exp,
        refresh: refresh_hash.as_deref().map(|token_hash| NewRefreshToken {
            token_hash,
            family_id: &family_id,
            client_id: &client.client_id,
            user_id: &user.user_id,
            scope: &issued.scope,
            resource: &issued.resource,
            expires_at: at + settings.tokens.refresh_token_ttl.0.as_secs() as i64,
        }),
    };
    if !store.redeem_code(&redemption, at).await? {
        return Err(invalid());
    }
    let _ = store.touch_client(&client.client_id, at).await;
    let _ = store
        .audit(AuditEvent {
            event: "token_issued",
            email: Some(user.email.as_str()),
            client_id: Some(&client.client_id),
            detail: json!({ "grant_type": "authorization_code", "jti": claims.jti, "scope": claims.scope }),
            ip: None,
        })
        .await;
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": claims.scope,
    });
    if let Some(refresh) = refresh_token {
        body["refresh_token"] = json!(refresh);
    }
    Ok(body)
}
