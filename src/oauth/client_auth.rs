//! Client authentication at the token-side endpoints: `none` for public
//! clients, a secret by HTTP Basic or in the form, or a `private_key_jwt`
//! assertion.

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use serde::Deserialize;

use super::cimd;
use super::client_assertion::{self, ASSERTION_TYPE};
use super::error::OAuthError;
use crate::secrets;
use crate::store::{Client, PRIVATE_KEY_JWT};
use crate::AppState;

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

/// How a client may prove who it is, as form fields (RFC 6749 §2.3.1,
/// RFC 7523 §2.2); `Authorization: Basic` comes from the headers.
#[derive(Debug, Default, Deserialize)]
pub struct ClientCredentials {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

/// The client making the request, authenticated as it registered (or as its
/// metadata document says).
pub async fn authenticate(
    app: &AppState,
    headers: &HeaderMap,
    form: &ClientCredentials,
) -> Result<Client, OAuthError> {
    let basic = basic_credentials(headers);
    if let Some(assertion) = form.client_assertion.as_deref() {
        if form.client_assertion_type.as_deref() != Some(ASSERTION_TYPE) {
            return Err(OAuthError::invalid_client(format!(
                "client_assertion_type must be {ASSERTION_TYPE}"
            )));
        }
        if basic.is_some() || form.client_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use exactly one client authentication method",
            ));
        }
        let client_id = form
            .client_id
            .clone()
            .or_else(|| client_assertion::claimed_client(assertion))
            .ok_or_else(|| OAuthError::invalid_client("client_id is required"))?;
        let client = known_client(app, &client_id).await?;
        if client.token_endpoint_auth_method != PRIVATE_KEY_JWT {
            return Err(OAuthError::invalid_client(
                "this client does not authenticate with private_key_jwt",
            ));
        }
        client_assertion::verify(app, &client, assertion).await?;
        return Ok(client);
    }
    let (client_id, secret) = match (&basic, form.client_id.as_deref()) {
        (Some((id, secret)), form_id) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the form differs from the Basic credentials",
                ));
            }
            (id.as_str(), Some(secret.as_str()))
        }
        (None, Some(id)) => (id, form.client_secret.as_deref()),
        (None, None) => return Err(OAuthError::invalid_client("client_id is required")),
    };
    let client = known_client(app, client_id).await?;
    if client.token_endpoint_auth_method == PRIVATE_KEY_JWT {
        return Err(OAuthError::invalid_client(
            "this client must authenticate with a private_key_jwt client_assertion",
        ));
    }
    match (&client.client_secret_hash, secret) {
        (None, _) => Ok(client),
        (Some(hash), Some(secret)) if secrets::matches(secret, hash) => Ok(client),
        (Some(_), Some(_)) => Err(OAuthError::invalid_client("wrong client secret")),
        (Some(_), None) => Err(OAuthError::invalid_client(
            "this client must authenticate with its secret",
        )),
    }
}

async fn known_client(app: &AppState, client_id: &str) -> Result<Client, OAuthError> {
    cimd::client(app, client_id)
        .await?
        .filter(|c| !c.disabled)
        .ok_or_else(|| OAuthError::invalid_client("unknown client; register again"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    proptest::proptest! {
        /// Whatever the Authorization header holds: credentials or nothing.
        #[test]
        fn any_basic_header_is_read_safely(value in "(Basic|basic|Bearer) [A-Za-z0-9+/=%:]{0,80}|\\PC{0,60}") {
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(header::AUTHORIZATION, v);
            }
            if let Some((id, _)) = basic_credentials(&headers) {
                proptest::prop_assert!(!id.contains(':') || value.contains('%'));
            }
        }
    }
}
