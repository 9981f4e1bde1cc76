#![no_main]
//! `Authorization` headers and access tokens from anyone. The input is read
//! three ways: as a header value (whose bearer token must never validate:
//! nobody here can sign), as a forged token built from chosen header and
//! payload JSON (past the base64 layer, same verdict), and as the claims of
//! a token we mint and may alter by one byte (only the unaltered one, for us
//! and in time, validates, with the claims it was minted with).

#[path = "shared/mod.rs"]
mod shared;

use std::sync::{Arc, LazyLock};

use arbitrary::{Arbitrary, Unstructured};
use axum::http::HeaderValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::bearer::bearer_of;
use mcp_auth_broker::store::now;
use mcp_auth_broker::tokens::{self, AccessClaims, KeySet, SigningKey};
use serde_json::{json, Map, Value};

const ISSUER: &str = "https://broker.example";
const AUDIENCE: &str = "https://broker.example/mcp";
const KID: &str = "fuzz-hs256";
const SECRET: &[u8] = b"a fixed test secret of at least 32 bytes";

static KEYS: LazyLock<KeySet> = LazyLock::new(|| {
    KeySet::of(Arc::new(SigningKey {
        kid: KID.into(),
        algorithm: Algorithm::HS256,
        encoding: EncodingKey::from_secret(SECRET),
        decoding: DecodingKey::from_secret(SECRET),
        jwk: None,
    }))
});

fuzz_target!(|data: &[u8]| {
    header_value(data);
    if let Ok(forged) = Forged::arbitrary(&mut Unstructured::new(data)) {
        forged.check();
    }
    if let Ok(minted) = Minted::arbitrary(&mut Unstructured::new(data)) {
        minted.check();
    }
});

fn header_value(data: &[u8]) {
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let Some(token) = bearer_of(&value) else {
        return;
    };
    let _ = tokens::header_kid(token);
    let _ = tokens::unverified_claim(token, "aud");
    let verdict = tokens::validate(&KEYS, token, ISSUER, AUDIENCE);
    assert!(verdict.is_err(), "{token:?} validated: {verdict:?}");
}

const ALGS: [&str; 7] = ["HS256", "none", "RS256", "ES256", "HS512", "hs256", "EdDSA"];
const TYPES: [&str; 4] = ["at+jwt", "application/at+jwt", "JWT", "AT+JWT"];
const CLAIMS: [&str; 10] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "scope",
    "email",
];

/// A JSON value of a claim: ours where it matters, or anything.
#[derive(Arbitrary, Debug)]
enum Claim {
    Issuer,
    Audience,
    AudienceList,
    Now(i16),
    Text(String),
    Number(i64),
    Float(f64),
    Bool(bool),
    Null,
    List(Vec<String>),
}

impl Claim {
    fn json(&self) -> Value {
        let at = now();
        match self {
            Claim::Issuer => json!(ISSUER),
            Claim::Audience => json!(AUDIENCE),
            Claim::AudienceList => json!([AUDIENCE, "https://other.example"]),
            Claim::Now(offset) => json!(at + i64::from(*offset)),
            Claim::Text(s) => json!(s),
            Claim::Number(n) => json!(n),
            Claim::Float(f) => json!(f),
            Claim::Bool(b) => json!(b),
            Claim::Null => Value::Null,
            Claim::List(items) => json!(items),
        }
    }
}

/// A token whose header and payload are chosen JSON and whose signature is
/// chosen bytes: it must never validate.
#[derive(Arbitrary, Debug)]
struct Forged {
    alg: Option<u8>,
    typ: Option<u8>,
    our_kid: bool,
    other_kid: Option<String>,
    claims: Vec<(u8, Claim)>,
    extra: Option<(String, Claim)>,
    signature: Vec<u8>,
    payload_not_json: Option<Vec<u8>>,
}

impl Forged {
    fn check(&self) {
        let mut header = Map::new();
        if let Some(alg) = self.alg {
            header.insert("alg".into(), json!(ALGS[alg as usize % ALGS.len()]));
        }
        if let Some(typ) = self.typ {
            header.insert("typ".into(), json!(TYPES[typ as usize % TYPES.len()]));
        }
        let kid = match (&self.other_kid, self.our_kid) {
            (_, true) => Some(KID),
            (Some(kid), false) => Some(kid.as_str()),
            (None, false) => None,
        };
        if let Some(kid) = kid {
            header.insert("kid".into(), json!(kid));
        }
        let mut payload: Map<String, Value> = self
            .claims
            .iter()
            .map(|(name, value)| (CLAIMS[*name as usize % CLAIMS.len()].into(), value.json()))
            .collect();
        if let Some((name, value)) = &self.extra {
            payload.insert(name.clone(), value.json());
        }
        let payload = match &self.payload_not_json {
            Some(bytes) => bytes.clone(),
            None => serde_json::to_vec(&payload).unwrap(),
        };
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(&self.signature)
        );
        if let Some(read) = tokens::header_kid(&token) {
            assert_eq!(Some(read.as_str()), kid, "{token}");
        }
        let _ = tokens::unverified_claim(&token, "aud");
        let verdict = tokens::validate(&KEYS, &token, ISSUER, AUDIENCE);
        assert!(verdict.is_err(), "forged {token} validated: {verdict:?}");
    }
}

/// Claims we sign, with times in minutes from now, and perhaps one byte of
/// the token changed.
#[derive(Arbitrary, Debug)]
struct Minted {
    our_issuer: bool,
    our_audience: bool,
    expires_in_minutes: i8,
    valid_from_minutes: i8,
    sub: String,
    jti: String,
    client_id: String,
    scope: String,
    email: String,
    change: Option<(usize, u8)>,
}

impl Minted {
    fn check(&self) {
        let at = now();
        let claims = AccessClaims {
            iss: if self.our_issuer {
                ISSUER
            } else {
                "https://evil.example"
            }
            .into(),
            sub: self.sub.clone(),
            aud: if self.our_audience {
                AUDIENCE
            } else {
                "https://broker.example/other"
            }
            .into(),
            exp: at + 60 * i64::from(self.expires_in_minutes),
            iat: at,
            nbf: at + 60 * i64::from(self.valid_from_minutes),
            jti: self.jti.clone(),
            client_id: self.client_id.clone(),
            scope: self.scope.clone(),
            email: self.email.clone(),
        };
        let token = tokens::mint(&KEYS, &claims).expect("HS256 signs anything");
        let Some(presented) = shared::altered(&token, self.change) else {
            return;
        };
        let verdict = tokens::validate(&KEYS, &presented, ISSUER, AUDIENCE);
        if presented != token {
            assert!(
                verdict.is_err(),
                "altered {presented} validated: {verdict:?}"
            );
            return;
        }
        assert_eq!(tokens::header_kid(&token).as_deref(), Some(KID));
        assert_eq!(
            tokens::unverified_claim(&token, "sub"),
            Some(claims.sub.clone())
        );
        let in_time = self.expires_in_minutes >= 0 && self.valid_from_minutes <= 0;
        if self.our_issuer && self.our_audience && in_time {
            assert_eq!(verdict, Ok(claims));
        } else {
            assert!(verdict.is_err(), "{claims:?} validated");
        }
    }
}
