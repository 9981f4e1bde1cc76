//! What a backend learns about the caller instead of the client's token
//! (which it never sees): identity headers, and/or a short-lived JWT the
//! broker signs for that backend alone (audience = the backend's URL), which
//! it verifies with the broker's JWKS like any RFC 9068 access token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{HeaderName, HeaderValue};

use crate::bearer::Identity;
use crate::tokens::{self, AccessClaims, KeySet};

pub const FORWARDED_USER: HeaderName = HeaderName::from_static("x-forwarded-user");
pub const FORWARDED_EMAIL: HeaderName = HeaderName::from_static("x-forwarded-email");

/// Lifetime of a backend JWT (shorter if the client's token ends sooner).
pub const LIFETIME: i64 = 60;
/// A minted JWT is reused for this long, so it still has at least
/// `LIFETIME - REUSE` seconds to live when the backend reads it.
const REUSE: i64 = 30;
/// Tokens remembered per backend; beyond this the stale ones go, and if
/// none is stale, all (a miss costs one signature).
const CAPACITY: usize = 10_000;

/// `X-Forwarded-User` (the person's stable id, the tokens' `sub`) and
/// `X-Forwarded-Email`; `None` if either cannot be a header value.
pub fn identity_headers(who: &Identity) -> Option<[(HeaderName, HeaderValue); 2]> {
    Some([
        (
            FORWARDED_USER,
            HeaderValue::from_str(&who.user.user_id).ok()?,
        ),
        (
            FORWARDED_EMAIL,
            HeaderValue::from_bytes(who.user.email.as_str().as_bytes()).ok()?,
        ),
    ])
}

/// The claims of a backend JWT: the caller's, for `audience`, short-lived.
pub fn backend_claims(caller: &AccessClaims, audience: &str, now: i64) -> AccessClaims {
    AccessClaims {
        iss: caller.iss.clone(),
        sub: caller.sub.clone(),
        aud: audience.to_owned(),
        exp: (now + LIFETIME).min(caller.exp),
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: caller.client_id.clone(),
        scope: caller.scope.clone(),
        email: caller.email.clone(),
    }
}

/// One backend's JWTs, minted per client token and reused for a while:
/// an RS256 signature costs about a millisecond.
#[derive(Default)]
pub struct BackendTokens {
    minted: Mutex<HashMap<String, Minted>>,
}

struct Minted {
    jwt: Arc<str>,
    iat: i64,
    exp: i64,
}

impl BackendTokens {
    /// A JWT for `audience` standing for the holder of `caller`.
    pub fn get(
        &self,
        keys: &KeySet,
        caller: &AccessClaims,
        audience: &str,
        now: i64,
    ) -> Result<Arc<str>, jsonwebtoken::errors::Error> {
        let fresh = |m: &Minted| now - m.iat < REUSE && m.exp > now;
        {
            let minted = self.minted.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(m) = minted.get(&caller.jti).filter(|m| fresh(m)) {
                return Ok(m.jwt.clone());
            }
        }
        let claims = backend_claims(caller, audience, now);
        let jwt: Arc<str> = tokens::mint(keys, &claims)?.into();
        let mut minted = self.minted.lock().unwrap_or_else(PoisonError::into_inner);
        if minted.len() >= CAPACITY {
            minted.retain(|_, m| fresh(m));
            if minted.len() >= CAPACITY {
                minted.clear();
            }
        }
        minted.insert(
            caller.jti.clone(),
            Minted {
                jwt: jwt.clone(),
                iat: claims.iat,
                exp: claims.exp,
            },
        );
        Ok(jwt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://broker.example".into(),
            sub: "user-1".into(),
            aud: "https://broker.example/mcp/github".into(),
            exp,
            iat: 0,
            nbf: 0,
            jti: "jti-1".into(),
            client_id: "client-1".into(),
            scope: "mcp:tools".into(),
            email: "a@example.com".into(),
        }
    }

    #[test]
    fn claims_are_the_callers_for_the_backend_and_short_lived() {
        let c = backend_claims(&caller(10_000), "http://github-mcp:8000/mcp", 1_000);
        assert_eq!(c.aud, "http://github-mcp:8000/mcp");
        assert_eq!((c.iat, c.nbf, c.exp), (1_000, 1_000, 1_060));
        assert_eq!(
            (&*c.sub, &*c.email, &*c.client_id, &*c.scope),
            ("user-1", "a@example.com", "client-1", "mcp:tools")
        );
        assert_ne!(c.jti, "jti-1", "a token of its own");
        // Never outlives the client's token.
        assert_eq!(backend_claims(&caller(1_010), "x", 1_000).exp, 1_010);
    }

    #[test]
    fn tokens_are_reused_for_a_while_then_minted_again() {
        let keys = KeySet::of(tokens::ephemeral_rs256().unwrap());
        let cache = BackendTokens::default();
        let now = crate::store::now();
        let c = caller(now + 3_600);
        let first = cache.get(&keys, &c, "http://b/mcp", now - 40).unwrap();
        assert_eq!(
            cache.get(&keys, &c, "http://b/mcp", now - 11).unwrap(),
            first
        );
        let later = cache.get(&keys, &c, "http://b/mcp", now - 10).unwrap();
        assert_ne!(later, first);
        let other = AccessClaims {
            jti: "jti-2".into(),
            ..c.clone()
        };
        assert_ne!(
            cache.get(&keys, &other, "http://b/mcp", now - 10).unwrap(),
            later
        );
        let checked = tokens::validate(&keys, &later, "https://broker.example", "http://b/mcp")
            .expect("a valid access token for the backend");
        assert_eq!(checked.exp, now + 50);
        assert!(
            tokens::validate(&keys, &later, "https://broker.example", "http://other/mcp").is_err()
        );
    }
}
