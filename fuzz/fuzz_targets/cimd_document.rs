#![no_main]
//! Client ID Metadata Documents as fetched from anyone's URL: the document's
//! own `client_id` is taken as the URL it came from (so the fuzzer gets past
//! that check), and both the URL and the document are checked the way
//! /authorize and /token check them. What passes names itself, holds no
//! secret, and authenticates with `none` or `private_key_jwt` only.

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::config::{RegistrationSettings, Settings, Sources};
use mcp_auth_broker::oauth::fuzzing::{check_redirect_uri, describe_document, document_url};
use mcp_auth_broker::outbound::Outbound;
use mcp_auth_broker::store::PRIVATE_KEY_JWT;
use serde_json::Value;

const FALLBACK_ID: &str = "https://app.example/oauth/client.json";
const EXPIRES_AT: i64 = 1_900_000_000;

static POLICY: LazyLock<RegistrationSettings> = LazyLock::new(|| {
    Settings::load(&Sources::default())
        .expect("the built-in defaults load")
        .registration
});

fuzz_target!(|body: &[u8]| {
    let named = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|d| d.get("client_id")?.as_str().map(str::to_owned));
    let client_id = named.as_deref().unwrap_or(FALLBACK_ID);
    for (outbound, secure) in [(Outbound::new(false), true), (Outbound::new(true), false)] {
        if let Ok(url) = document_url(&outbound, client_id) {
            assert_eq!(url.as_str(), client_id);
            assert!(url.scheme() == "https" || !secure, "{url}");
            assert!(
                url.fragment().is_none() && url.username().is_empty() && url.password().is_none()
            );
            assert_ne!(url.path(), "/");
        }
        let Ok((client, response_types)) =
            describe_document(&POLICY, &outbound, client_id, body, EXPIRES_AT)
        else {
            continue;
        };
        assert_eq!(client.client_id, client_id);
        assert_eq!(client.metadata["client_id"], client_id);
        assert!(client.client_secret_hash.is_none());
        assert!(client.metadata.get("client_secret").is_none());
        assert!(client.metadata.get("client_secret_expires_at").is_none());
        assert_eq!(client.metadata_expires_at, Some(EXPIRES_AT));
        assert_eq!(response_types, ["code"]);
        assert!(!client.redirect_uris.is_empty());
        for uri in &client.redirect_uris {
            assert!(check_redirect_uri(uri).is_ok(), "{uri:?}");
        }
        match client.token_endpoint_auth_method.as_str() {
            "none" => {}
            PRIVATE_KEY_JWT => {
                let jwks = client.metadata.get("jwks").is_some_and(|j| !j.is_null());
                let jwks_uri = client.metadata.get("jwks_uri").and_then(Value::as_str);
                assert!(jwks != jwks_uri.is_some(), "{}", client.metadata);
                if let (Some(uri), true) = (jwks_uri, secure) {
                    let url = url::Url::parse(uri);
                    assert!(url.is_ok_and(|u| u.scheme() == "https"), "{uri}");
                }
            }
            other => panic!("token_endpoint_auth_method {other:?} passed"),
        }
    }
});
