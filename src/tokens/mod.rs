//! Our access tokens: RFC 9068 JWTs minted with the key set and validated
//! locally (algorithm pinned to the key, signature, iss, aud, exp/nbf).

mod keys;
mod sealed;
mod verified;

use jsonwebtoken::{decode, decode_header, encode, Header, Validation};
use serde::{Deserialize, Serialize};

pub use keys::{
    create, ephemeral_rs256, retire_replaced, KeyError, KeySet, Keys, Signer, SigningKey,
};
pub use verified::VerifiedTokens;

/// Clock skew tolerated on `exp`/`nbf`, in seconds.
const LEEWAY: u64 = 30;
const TYP: &str = "at+jwt";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    pub email: String,
}

impl AccessClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is not an access token (typ)")]
    WrongType,
    #[error("the token was not signed by a key of this server")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired,
}

pub fn mint(keys: &KeySet, claims: &AccessClaims) -> Result<String, jsonwebtoken::errors::Error> {
    let key = keys.signing();
    let mut header = Header::new(key.algorithm);
    header.typ = Some(TYP.into());
    header.kid = Some(key.kid.clone());
    encode(&header, claims, &key.encoding)
}

/// The `kid` a token's header names, if it parses.
pub fn header_kid(token: &str) -> Option<String> {
    decode_header(token).ok()?.kid
}

/// A string claim of a JWT, read WITHOUT checking anything: only to decide
/// how to check it (which of our audiences, which client's keys).
pub fn unverified_claim(token: &str, name: &str) -> Option<String> {
    use serde_json::{Map, Value};
    let mut data = jsonwebtoken::dangerous::insecure_decode::<Map<String, Value>>(token).ok()?;
    match data.claims.remove(name)? {
        Value::String(value) => Some(value),
        _ => None,
    }
}

/// Accepts only tokens this issuer signed for `audience`, still in time.
pub fn validate(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    audience: &str,
) -> Result<AccessClaims, TokenError> {
    // An unknown `alg` (e.g. "none") fails here: the header does not parse.
    let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(TYP) || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(TokenError::WrongType);
    }
    let key = header
        .kid
        .as_deref()
        .and_then(|kid| keys.verifying(kid))
        .ok_or(TokenError::UnknownKey)?;
    // The key decides the algorithm; the header only has to agree with it,
    // which refuses HS256 tokens "signed" with our public RSA key.
    let mut validation = Validation::new(key.algorithm);
    validation.leeway = LEEWAY;
    validation.validate_nbf = true;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    decode::<AccessClaims>(token, &key.decoding, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            other => TokenError::Invalid(format!("{other:?}")),
        })
}

#[cfg(test)]
mod properties {
    proptest::proptest! {
        /// Bearer strings from anyone: read without panicking.
        #[test]
        fn unverified_reads_never_panic(token in "\\PC{0,200}|[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,40}") {
            let _ = super::header_kid(&token);
            let _ = super::unverified_claim(&token, "aud");
        }
    }
}
