//! `POST /revoke` (RFC 7009): a refresh token takes its whole family with
//! it; an access token's `jti` is refused from then on. Unknown tokens get
//! 200 too, so the endpoint says nothing about what exists.

use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::json;

use super::client_auth::{authenticate, ClientCredentials};
use super::error::OAuthError;
use crate::secrets;
use crate::store::{now, AuditEvent};
use crate::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct RevokeForm {
    /// `token_type_hint` is only a hint (RFC 7009 §2.1) and not read: both
    /// kinds are tried anyway.
    pub token: Option<String>,
}

pub async fn revoke(
    app: &AppState,
    headers: &HeaderMap,
    client: &ClientCredentials,
    form: RevokeForm,
) -> Result<(), OAuthError> {
    let client = authenticate(app, headers, client).await?;
    let token = form
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let store = app.store();
    let at = now();
    let revoked = if let Some(refresh) = store.refresh_token(&secrets::hash(token)).await? {
        // Only the client the token was issued to may revoke it.
        let ours = refresh.client_id == client.client_id;
        if ours {
            store
                .revoke_grant(Some(&refresh.family_id), None, at)
                .await?;
        }
        ours.then(|| json!({ "kind": "refresh_token", "family": refresh.family_id }))
    } else {
        match app.validate_access_any(token).await {
            Ok(claims) if claims.client_id == client.client_id => {
                app.revoke(None, Some((&claims.jti, claims.exp)), at)
                    .await?;
                Some(json!({ "kind": "access_token", "jti": claims.jti }))
            }
            _ => None,
        }
    };
    if let Some(detail) = revoked {
        store
            .audit(AuditEvent {
                event: "revoked",
                email: None,
                client_id: Some(&client.client_id),
                detail,
                ip: None,
            })
            .await;
    }
    Ok(())
}
