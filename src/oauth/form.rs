//! Form bodies of the token-side endpoints, rejected in OAuth's own shape.

use axum::extract::{FromRequest, RawForm, Request};
use serde::de::DeserializeOwned;

use super::client_auth::ClientCredentials;
use super::error::OAuthError;

/// An `application/x-www-form-urlencoded` body read twice: as the client's
/// credentials and as the endpoint's own fields `T`. Each reading refuses a
/// repeated parameter, which one flattened struct would let through.
pub struct ClientForm<T>(pub ClientCredentials, pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ClientForm<T> {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let malformed = |e: &dyn std::fmt::Display| {
            OAuthError::invalid_request(format!(
                "the body must be application/x-www-form-urlencoded: {e}"
            ))
        };
        let RawForm(body) = RawForm::from_request(req, state)
            .await
            .map_err(|e| malformed(&e))?;
        let credentials = serde_urlencoded::from_bytes(&body).map_err(|e| malformed(&e))?;
        let fields = serde_urlencoded::from_bytes(&body).map_err(|e| malformed(&e))?;
        Ok(ClientForm(credentials, fields))
    }
}
