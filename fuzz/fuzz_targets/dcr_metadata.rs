#![no_main]
//! Dynamic client registration bodies from anyone (RFC 7591): an answer for
//! every body, and metadata that passes holds only what registration allows,
//! under an open policy and under one that pins redirect URIs to a pattern.

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::config::{RegistrationSettings, Settings, Sources};
use mcp_auth_broker::oauth::fuzzing::{check_redirect_uri, describe_registration, Described};
use serde_json::Value;
use wildmatch::WildMatch;

const PATTERN: &str = "https://*.example.com/*";

static OPEN: LazyLock<RegistrationSettings> = LazyLock::new(|| {
    Settings::load(&Sources::default())
        .expect("the built-in defaults load")
        .registration
});

static PINNED: LazyLock<RegistrationSettings> = LazyLock::new(|| RegistrationSettings {
    allowed_redirect_uris: vec![PATTERN.into()],
    ..OPEN.clone()
});

fuzz_target!(|body: &[u8]| {
    if let Ok(described) = describe_registration(&OPEN, body) {
        allowed(&described);
    }
    if let Ok(described) = describe_registration(&PINNED, body) {
        allowed(&described);
        for uri in &described.redirect_uris {
            assert!(WildMatch::new(PATTERN).matches(uri), "{uri:?}");
        }
    }
});

fn allowed(described: &Described) {
    assert!(!described.redirect_uris.is_empty());
    for uri in &described.redirect_uris {
        assert!(check_redirect_uri(uri).is_ok(), "{uri:?}");
    }
    assert!(described
        .grant_types
        .iter()
        .any(|g| g == "authorization_code"));
    assert!(described
        .grant_types
        .iter()
        .all(|g| g == "authorization_code" || g == "refresh_token"));
    assert_eq!(described.response_types, ["code"]);
    if let Some(name) = &described.request.client_name {
        assert!(name.chars().count() <= 200);
        assert!(!name.chars().any(char::is_control), "{name:?}");
    }
    let document = Value::Object(described.document.clone());
    assert!(!has_control(&document), "{document}");
}

/// Whether any name or text in `value` holds a control character.
fn has_control(value: &Value) -> bool {
    let control = |s: &str| s.chars().any(char::is_control);
    match value {
        Value::String(s) => control(s),
        Value::Array(items) => items.iter().any(has_control),
        Value::Object(fields) => fields.iter().any(|(k, v)| control(k) || has_control(v)),
        _ => false,
    }
}
