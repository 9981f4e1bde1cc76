//! `private_key_jwt` client authentication (RFC 7523 §2.2, OIDC Core §9):
//! the client signs a short-lived JWT with a key from its metadata document
//! (`jwks`, or `jwks_uri` fetched and cached), and each assertion is good
//! for one request only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::Deserialize;
use serde_json::Value;

use super::error::OAuthError;
use crate::store::{now, Client};
use crate::AppState;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Asymmetric algorithms only: a client has no secret to HMAC with.
pub const ALGORITHMS: [Algorithm; 7] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// An assertion may not be valid for longer than this.
const LONGEST_LIFETIME: i64 = 600;
const LEEWAY: u64 = 30;
/// A jwks_uri is fetched again for an unknown `kid` at most this often.
const REFETCH_AFTER: Duration = Duration::from_secs(10);
const CACHED_SETS: usize = 1000;

#[derive(Deserialize)]
struct AssertionClaims {
    exp: i64,
    jti: Option<String>,
}

/// What a checked assertion leaves to record: its single-use `jti` until `exp`.
#[derive(Debug)]
pub struct CheckedClaims {
    pub exp: i64,
    pub jti: String,
}

/// `jwks_uri` documents, per replica, for as long as their Cache-Control says.
#[derive(Default)]
pub struct ClientKeyCache {
    sets: Mutex<HashMap<String, CachedSet>>,
}

struct CachedSet {
    fetched: Instant,
    expires: Instant,
    keys: Arc<Vec<Jwk>>,
}

/// The `iss` an assertion claims, before anything is verified: only to find
/// the client when the request names none (client_id is optional here).
pub fn claimed_client(assertion: &str) -> Option<String> {
    crate::tokens::unverified_claim(assertion, "iss")
}

pub async fn verify(app: &AppState, client: &Client, assertion: &str) -> Result<(), OAuthError> {
    let header = header(assertion)?;
    let keys = client_keys(app, client, header.kid.as_deref()).await?;
    let claims = check(
        assertion,
        &header,
        &keys,
        &client.client_id,
        app.settings().issuer(),
    )?;
    let first_use = app
        .store()
        .record_assertion(&client.client_id, &claims.jti, claims.exp + LEEWAY as i64)
        .await?;
    if !first_use {
        return Err(refuse("was already used (its jti has been seen before)"));
    }
    Ok(())
}

fn refuse(why: &str) -> OAuthError {
    OAuthError::invalid_client(format!("client_assertion {why}"))
}

/// The header of an assertion signed with an algorithm we accept.
pub fn header(assertion: &str) -> Result<Header, OAuthError> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| refuse("is not a JWT"))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(refuse(&format!(
            "is signed with {:?}; use RS256, PS256, ES256 or EdDSA",
            header.alg
        )));
    }
    Ok(header)
}

/// An assertion's claims once checked: signed by one of `keys`, iss and sub
/// the client, for `issuer`, in time, and with a usable `jti` (whose single
/// use the caller records).
pub fn check(
    assertion: &str,
    header: &Header,
    keys: &[Jwk],
    client_id: &str,
    issuer: &str,
) -> Result<CheckedClaims, OAuthError> {
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[
        issuer.to_owned(),
        format!("{issuer}/token"),
        format!("{issuer}/oauth/token"),
    ]);
    validation.set_issuer(&[client_id]);
    validation.sub = Some(client_id.to_owned());
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    validation.validate_nbf = true;
    validation.leeway = LEEWAY;

    let mut last = refuse("is not signed by any key the client publishes");
    let mut verified = None;
    for jwk in keys
        .iter()
        .filter(|k| header.kid.is_none() || k.common.key_id == header.kid)
    {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        match jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation) {
            Ok(data) => {
                verified = Some(data.claims);
                break;
            }
            Err(e) => match e.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {}
                kind => last = refuse(&claim_problem(kind, issuer)),
            },
        }
    }
    let claims = verified.ok_or(last)?;
    if claims.exp - now() > LONGEST_LIFETIME {
        return Err(refuse("must expire within 10 minutes"));
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 256 && !j.chars().any(char::is_control))
        .ok_or_else(|| refuse("needs a jti (1 to 256 characters)"))?;
    Ok(CheckedClaims {
        exp: claims.exp,
        jti,
    })
}

fn claim_problem(kind: &ErrorKind, issuer: &str) -> String {
    match kind {
        ErrorKind::InvalidAudience => format!("aud must be {issuer} (or its token endpoint)"),
        ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => {
            "iss and sub must both be the client_id".into()
        }
        ErrorKind::ExpiredSignature => "has expired".into(),
        ErrorKind::ImmatureSignature => "is not valid yet (nbf)".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("has no {claim} claim"),
        _ => "is malformed".into(),
    }
}

/// The client's public keys: inline `jwks`, or `jwks_uri` from the cache,
/// fetched when missing, stale, or (at most every 10 s) lacking `kid`.
async fn client_keys(
    app: &AppState,
    client: &Client,
    kid: Option<&str>,
) -> Result<Arc<Vec<Jwk>>, OAuthError> {
    if let Some(inline) = client.metadata.get("jwks") {
        return Ok(Arc::new(parse_keys(inline)));
    }
    let Some(uri) = client.metadata.get("jwks_uri").and_then(Value::as_str) else {
        return Err(OAuthError::invalid_client(
            "this client publishes no keys (jwks or jwks_uri) for private_key_jwt",
        ));
    };
    let cache = app.client_keys();
    if let Some(keys) = cache.fresh(uri, kid) {
        return Ok(keys);
    }
    let url = url::Url::parse(uri)
        .map_err(|_| OAuthError::invalid_client("the client's jwks_uri is not a URL"))?;
    let fetched = app
        .outbound()
        .get(&url)
        .await
        .map_err(|e| OAuthError::invalid_client(format!("the client's jwks_uri: {e}")))?;
    let document: Value = serde_json::from_slice(&fetched.body)
        .map_err(|_| OAuthError::invalid_client("the client's jwks_uri is not a JSON key set"))?;
    let keys = Arc::new(parse_keys(&document));
    cache.put(uri, keys.clone(), fetched.max_age);
    Ok(keys)
}

/// The keys of a JWK set this library understands; others are skipped, not
/// fatal (a set may hold keys for other purposes).
pub fn parse_keys(set: &Value) -> Vec<Jwk> {
    set.get("keys")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(|k| serde_json::from_value(k.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

impl ClientKeyCache {
    fn fresh(&self, uri: &str, kid: Option<&str>) -> Option<Arc<Vec<Jwk>>> {
        let sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        let cached = sets.get(uri)?;
        let now = Instant::now();
        let has_kid = kid.is_none_or(|kid| {
            cached
                .keys
                .iter()
                .any(|k| k.common.key_id.as_deref() == Some(kid))
        });
        let usable = cached.expires > now && (has_kid || now - cached.fetched < REFETCH_AFTER);
        usable.then(|| cached.keys.clone())
    }

    fn put(&self, uri: &str, keys: Arc<Vec<Jwk>>, max_age: Duration) {
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        if sets.len() >= CACHED_SETS {
            sets.clear();
        }
        let now = Instant::now();
        sets.insert(
            uri.to_owned(),
            CachedSet {
                fetched: now,
                expires: now + max_age,
                keys,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// An assertion from anyone is read for its `iss` without panicking,
        /// and its keys document too.
        #[test]
        fn any_assertion_or_key_set_is_read_safely(
            assertion in "\\PC{0,120}|[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,40}",
            keys in "\\PC{0,200}",
        ) {
            let _ = claimed_client(&assertion);
            let set = serde_json::from_str::<Value>(&keys).unwrap_or(Value::Null);
            let _ = parse_keys(&set);
            let _ = parse_keys(&serde_json::json!({ "keys": [set] }));
        }
    }
}
