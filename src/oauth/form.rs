//! Form bodies of the token-side endpoints, rejected in OAuth's own shape.

use axum::extract::{Form, FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::OAuthError;

/// `application/x-www-form-urlencoded`; anything else is `invalid_request`.
pub struct OAuthForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OAuthForm<T> {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Form::<T>::from_request(req, state).await {
            Ok(Form(value)) => Ok(OAuthForm(value)),
            Err(e) => Err(OAuthError::invalid_request(format!(
                "the body must be application/x-www-form-urlencoded: {e}"
            ))),
        }
    }
}
