#![no_main]
//! `private_key_jwt` client assertions (RFC 7523) from anyone. Read as text,
//! the input's first line is an assertion and the rest a JWK set the client
//! publishes: neither is trusted, and nothing unsigned passes. Read as
//! structured data, it chooses the claims of an assertion that the client's
//! real ES256 key signs, perhaps with one byte changed afterwards: exactly
//! the unchanged ones with the right iss, sub, aud, lifetime and jti pass.

#[path = "shared/mod.rs"]
mod shared;

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::oauth::fuzzing::{
    assertion_header, check_assertion, claimed_client, parse_keys,
};
use mcp_auth_broker::store::now;
use serde_json::{json, Map, Value};

const ISSUER: &str = "https://broker.example";
const CLIENT: &str = "https://app.example/oauth/client.json";
const KID: &str = "client-key-1";
/// A test key, used nowhere else.
const PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAPo9wU1OV+9mnYAM
Lg+BlAiI2yxPSF+Z077nfS3qnHGhRANCAAQAVt+JC9qLy+ZStjGppNtNAv7hbXYG
6oxpKuJlbJuNVP3GnfggWXtjoHpd7AMl1jUMF3Zm2Knza8fo3ul5XkGR
-----END PRIVATE KEY-----
";

static SIGNING: LazyLock<EncodingKey> =
    LazyLock::new(|| EncodingKey::from_ec_pem(PRIVATE_KEY.as_bytes()).expect("the test key"));

/// The client's published set, as the broker reads it from a document.
static KEYS: LazyLock<Vec<Jwk>> = LazyLock::new(|| {
    let mut jwk = Jwk::from_encoding_key(&SIGNING, Algorithm::ES256).expect("a public JWK");
    jwk.common.key_id = Some(KID.into());
    let keys = parse_keys(&json!({ "keys": [jwk, { "kty": "unknown" }] }));
    assert_eq!(keys.len(), 1);
    keys
});

fuzz_target!(|data: &[u8]| {
    text(data);
    if let Ok(signed) = Signed::arbitrary(&mut Unstructured::new(data)) {
        signed.check();
    }
});

fn text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (assertion, published) = text.split_once('\n').unwrap_or((text, ""));
    let _ = claimed_client(assertion);
    let Ok(header) = assertion_header(assertion) else {
        return;
    };
    let theirs = parse_keys(&serde_json::from_str(published).unwrap_or(Value::Null));
    for keys in [&KEYS[..], &theirs[..]] {
        let verdict = check_assertion(assertion, &header, keys, CLIENT, ISSUER);
        assert!(verdict.is_err(), "{assertion:?} passed: {verdict:?}");
    }
}

#[derive(Arbitrary, Debug)]
enum Kid {
    Ours,
    Absent,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Name {
    Client,
    Absent,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Audience {
    Issuer,
    TokenEndpoint,
    OAuthTokenEndpoint,
    WithOthers,
    Absent,
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Signed {
    kid: Kid,
    iss: Name,
    sub: Name,
    aud: Audience,
    expires_in_minutes: Option<i8>,
    valid_from_minutes: Option<i8>,
    jti: Option<String>,
    change: Option<(usize, u8)>,
}

impl Signed {
    fn check(&self) {
        let at = now();
        let mut claims = Map::new();
        for (claim, name) in [("iss", &self.iss), ("sub", &self.sub)] {
            match name {
                Name::Client => claims.insert(claim.into(), json!(CLIENT)),
                Name::Absent => None,
                Name::Other(other) => claims.insert(claim.into(), json!(other)),
            };
        }
        let aud = match &self.aud {
            Audience::Issuer => Some(json!(ISSUER)),
            Audience::TokenEndpoint => Some(json!(format!("{ISSUER}/token"))),
            Audience::OAuthTokenEndpoint => Some(json!(format!("{ISSUER}/oauth/token"))),
            Audience::WithOthers => Some(json!(["https://other.example", ISSUER])),
            Audience::Absent => None,
            Audience::Other(other) => Some(json!(other)),
        };
        if let Some(aud) = aud {
            claims.insert("aud".into(), aud);
        }
        let exp = self.expires_in_minutes.map(|m| at + 60 * i64::from(m));
        if let Some(exp) = exp {
            claims.insert("exp".into(), json!(exp));
        }
        if let Some(m) = self.valid_from_minutes {
            claims.insert("nbf".into(), json!(at + 60 * i64::from(m)));
        }
        if let Some(jti) = &self.jti {
            claims.insert("jti".into(), json!(jti));
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = match &self.kid {
            Kid::Ours => Some(KID.into()),
            Kid::Absent => None,
            Kid::Other(other) => Some(other.clone()),
        };
        let signed = jsonwebtoken::encode(&header, &claims, &SIGNING).expect("ES256 signs");
        let Some(assertion) = shared::altered(&signed, self.change) else {
            return;
        };
        let verdict = assertion_header(&assertion)
            .and_then(|header| check_assertion(&assertion, &header, &KEYS, CLIENT, ISSUER));
        if assertion != signed {
            assert!(verdict.is_err(), "altered {assertion} passed: {verdict:?}");
            return;
        }
        assert_eq!(
            claimed_client(&assertion).as_deref(),
            claims.get("iss").and_then(Value::as_str)
        );
        let jti_ok = self
            .jti
            .as_deref()
            .is_some_and(|j| !j.is_empty() && j.len() <= 256 && !j.chars().any(char::is_control));
        let audiences = [
            ISSUER.to_owned(),
            format!("{ISSUER}/token"),
            format!("{ISSUER}/oauth/token"),
        ];
        let aud_ok = match &self.aud {
            Audience::Absent => false,
            Audience::Other(other) => audiences.contains(other),
            _ => true,
        };
        let passes = header.kid.as_deref().is_none_or(|k| k == KID)
            && claims.get("iss") == Some(&json!(CLIENT))
            && claims.get("sub") == Some(&json!(CLIENT))
            && aud_ok
            && self
                .expires_in_minutes
                .is_some_and(|m| (0..=10).contains(&m))
            && self.valid_from_minutes.is_none_or(|m| m <= 0)
            && jti_ok;
        match verdict {
            Ok(checked) => {
                assert!(passes, "{self:?} passed");
                assert_eq!(Some(checked.exp), exp);
                assert_eq!(Some(checked.jti.as_str()), self.jti.as_deref());
            }
            Err(e) => assert!(!passes, "{self:?} refused: {e:?}"),
        }
    }
}
