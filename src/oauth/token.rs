//! `POST /token`: an authorization code (with PKCE) or a refresh token for
//! an access JWT and a fresh refresh token.

use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client_auth::{authenticate, ClientCredentials};
use super::error::OAuthError;
use crate::allowlist::{AllowedUser, Status};
use crate::secrets;
use crate::store::{now, AuditEvent, Client, NewRefreshToken, Redemption};
use crate::tokens::{mint, AccessClaims};
use crate::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub resource: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

pub async fn exchange(
    app: &AppState,
    headers: &HeaderMap,
    client: &ClientCredentials,
    form: TokenForm,
) -> Result<Value, OAuthError> {
    let client = authenticate(app, headers, client).await?;
    match form.grant_type.as_deref() {
        Some("authorization_code") => redeem_code(app, &client, form).await,
        Some("refresh_token") => refresh(app, &client, form).await,
        Some(other) => Err(OAuthError::unsupported_grant_type(format!(
            "grant_type {other:?} is not supported"
        ))),
        None => Err(OAuthError::invalid_request("grant_type is required")),
    }
}

/// What a grant is for, once the grant itself has been checked.
struct Grant<'a> {
    client: &'a Client,
    user: AllowedUser,
    scope: &'a str,
    resource: &'a str,
    at: i64,
}

impl Grant<'_> {
    fn claims(&self, app: &AppState) -> AccessClaims {
        let settings = app.settings();
        AccessClaims {
            iss: settings.issuer().to_owned(),
            sub: self.user.user_id.clone(),
            aud: self.resource.to_owned(),
            exp: self.at + settings.tokens.access_token_ttl.0.as_secs() as i64,
            iat: self.at,
            nbf: self.at,
            jti: uuid::Uuid::new_v4().to_string(),
            client_id: self.client.client_id.clone(),
            scope: self.scope.to_owned(),
            email: self.user.email.to_string(),
        }
    }

    fn refresh_token<'a>(
        &'a self,
        token_hash: &'a str,
        family_id: &'a str,
        expires_at: i64,
    ) -> NewRefreshToken<'a> {
        NewRefreshToken {
            token_hash,
            family_id,
            client_id: &self.client.client_id,
            user_id: &self.user.user_id,
            scope: self.scope,
            resource: self.resource,
            expires_at,
        }
    }

    /// Signs the access token, records the issuance, and builds the answer.
    async fn respond(
        &self,
        app: &AppState,
        claims: &AccessClaims,
        refresh: Option<String>,
        kind: &str,
    ) -> Result<Value, OAuthError> {
        let access_token = mint(&app.keys(), claims).map_err(|e| {
            tracing::error!(error = %e, "cannot sign an access token");
            OAuthError::unavailable()
        })?;
        let store = app.store();
        let _ = store.touch_client(&self.client.client_id, self.at).await;
        let event = AuditEvent {
            event: if kind == "refresh_token" {
                "token_refreshed"
            } else {
                "token_issued"
            },
            email: Some(self.user.email.as_str()),
            client_id: Some(&self.client.client_id),
            detail: json!({ "grant_type": kind, "jti": claims.jti, "scope": claims.scope }),
            ip: None,
        };
        store.audit(event).await;
        let mut body = json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": claims.exp - claims.iat,
            "scope": claims.scope,
        });
        if let Some(refresh) = refresh {
            body["refresh_token"] = json!(refresh);
        }
        Ok(body)
    }
}

/// The person behind a grant, if they may still use it.
async fn active_user(app: &AppState, user_id: &str) -> Result<AllowedUser, OAuthError> {
    app.store()
        .user_by_id(user_id)
        .await?
        .filter(|u| u.status == Status::Active)
        .ok_or_else(|| OAuthError::invalid_grant("the person is no longer allowed on this server"))
}

fn check_resource(asked: Option<&str>, granted: &str) -> Result<(), OAuthError> {
    match asked {
        Some(resource) if resource.trim_end_matches('/') != granted => Err(
            OAuthError::invalid_target(format!("resource must be {granted}")),
        ),
        _ => Ok(()),
    }
}

async fn redeem_code(
    app: &AppState,
    client: &Client,
    form: TokenForm,
) -> Result<Value, OAuthError> {
    let code = form
        .code
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let verifier = form
        .code_verifier
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    // RFC 7636 §4.1: 43 to 128 unreserved characters, so it carries enough entropy.
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
    if !verifier_ok {
        return Err(OAuthError::invalid_grant(
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        ));
    }
    let store = app.store();
    let code_hash = secrets::hash(code);
    let invalid =
        || OAuthError::invalid_grant("the authorization code is invalid, expired or already used");
    let issued = store.auth_code(&code_hash).await?.ok_or_else(invalid)?;
    let at = now();
    if issued.used_at.is_some() {
        // A replayed code may be a stolen one: withdraw what it bought.
        let access = issued.access_jti.as_deref().zip(issued.access_expires_at);
        app.revoke(issued.refresh_family_id.as_deref(), access, at)
            .await?;
        let event = AuditEvent {
            event: "code_replay",
            email: None,
            client_id: Some(&client.client_id),
            detail: json!({ "revoked_family": issued.refresh_family_id }),
            ip: None,
        };
        store.audit(event).await;
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
    check_resource(form.resource.as_deref(), &issued.resource)?;
    let grant = Grant {
        client,
        user: active_user(app, &issued.user_id).await?,
        scope: &issued.scope,
        resource: &issued.resource,
        at,
    };

    let claims = grant.claims(app);
    let refresh = client
        .grant_types
        .iter()
        .any(|g| g == "refresh_token")
        .then(secrets::generate);
    let refresh_hash = refresh.as_deref().map(secrets::hash);
    let family_id = uuid::Uuid::new_v4().to_string();
    let family_expires = at + app.settings().tokens.refresh_token_ttl.0.as_secs() as i64;
    let redemption = Redemption {
        code_hash: &code_hash,
        access_jti: &claims.jti,
        access_expires_at: claims.exp,
        refresh: refresh_hash
            .as_deref()
            .map(|hash| grant.refresh_token(hash, &family_id, family_expires)),
    };
    if !store.redeem_code(&redemption, at).await? {
        return Err(invalid());
    }
    grant
        .respond(app, &claims, refresh, "authorization_code")
        .await
}

/// Rotation: every use retires the token and hands out its successor; a
/// second use of a retired token revokes the whole family.
async fn refresh(app: &AppState, client: &Client, form: TokenForm) -> Result<Value, OAuthError> {
    let presented = form
        .refresh_token
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let store = app.store();
    let token_hash = secrets::hash(presented);
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    let stored = store
        .refresh_token(&token_hash)
        .await?
        .ok_or_else(invalid)?;
    let at = now();
    if stored.client_id != client.client_id
        || stored.revoked_at.is_some()
        || stored.expires_at <= at
    {
        return Err(invalid());
    }
    let grant = Grant {
        client,
        user: active_user(app, &stored.user_id).await?,
        scope: &stored.scope,
        resource: &stored.resource,
        at,
    };
    check_resource(form.resource.as_deref(), &stored.resource)?;
    let access_scope = narrow(form.scope.as_deref(), &stored.scope)?;
    let next = secrets::generate();
    let next_hash = secrets::hash(&next);
    // The successor keeps the family's expiry: refreshing never extends a login.
    let successor = grant.refresh_token(&next_hash, &stored.family_id, stored.expires_at);
    let grace_start = at - app.settings().tokens.refresh_grace.0.as_secs() as i64;
    let rotated = store
        .rotate_refresh_token(&token_hash, &successor, at, grace_start)
        .await?;
    if !rotated {
        store
            .revoke_grant(Some(&stored.family_id), None, at)
            .await?;
        let event = AuditEvent {
            event: "refresh_reuse",
            email: Some(grant.user.email.as_str()),
            client_id: Some(&client.client_id),
            detail: json!({ "family": stored.family_id }),
            ip: None,
        };
        store.audit(event).await;
        return Err(invalid());
    }
    let mut claims = grant.claims(app);
    // The refresh token keeps the granted scope (RFC 6749 §6); only this
    // access token is narrowed.
    claims.scope = access_scope;
    grant
        .respond(app, &claims, Some(next), "refresh_token")
        .await
}

/// A refresh may ask for less than was granted, never more.
fn narrow(asked: Option<&str>, granted: &str) -> Result<String, OAuthError> {
    let Some(asked) = asked.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(granted.to_owned());
    };
    match asked
        .split_whitespace()
        .find(|s| !granted.split_whitespace().any(|g| g == *s))
    {
        Some(extra) => Err(OAuthError::invalid_scope(format!(
            "scope {extra:?} was not granted"
        ))),
        None => Ok(asked.split_whitespace().collect::<Vec<_>>().join(" ")),
    }
}
