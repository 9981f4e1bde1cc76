//! Client authentication at the token endpoint: `none` for public clients,
//! a secret by HTTP Basic or in the form for confidential ones.

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::error::OAuthError;
use crate::secrets;
use crate::store::{Client, Store};

/// `Authorization: Basic` credentials, form-urlencoded inside (RFC 6749 §2.3.1).
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// The client making the request, authenticated as it registered.
pub async fn authenticate(
    store: &Store,
    headers: &HeaderMap,
    form_client_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Client, OAuthError> {
    let basic = basic_credentials(headers);
    let (client_id, secret) = match (&basic, form_client_id) {
        (Some((id, secret)), form_id) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the form differs from the Basic credentials",
                ));
            }
            (id.as_str(), Some(secret.as_str()))
        }
        (None, Some(id)) => (id, form_secret),
        (None, None) => return Err(OAuthError::invalid_client("client_id is required")),
    };
    let client = store
        .client(client_id)
        .await?
        .filter(|c| !c.disabled)
        .ok_or_else(|| OAuthError::invalid_client("unknown client; register again"))?;
    match (&client.client_secret_hash, secret) {
        (None, _) => Ok(client),
        (Some(hash), Some(secret)) if secrets::matches(secret, hash) => Ok(client),
        (Some(_), Some(_)) => Err(OAuthError::invalid_client("wrong client secret")),
        (Some(_), None) => Err(OAuthError::invalid_client(
            "this client must authenticate with its secret",
        )),
    }
}
