#![no_main]
//! Redirect URIs from anyone: the first line is the URI a client presents at
//! /authorize, the others are what it registered (those registration
//! accepts). What registration accepts is https or loopback http, with no
//! fragment and no credentials; what matches is a registered URI exactly, or
//! a registered loopback one on another port.

use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::config::is_loopback;
use mcp_auth_broker::oauth::fuzzing::{check_redirect_uri, redirect_uri_matches};
use url::Url;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let presented = lines.next().unwrap_or_default();
    let registered: Vec<String> = lines
        .filter(|raw| registrable(raw))
        .map(str::to_owned)
        .collect();
    registrable(presented);
    if !redirect_uri_matches(&registered, presented) || registered.iter().any(|r| r == presented) {
        return;
    }
    // Not byte for byte: only a loopback URI on another port.
    let url = Url::parse(presented).expect("a matching URI parses");
    assert_eq!(url.scheme(), "http", "{presented:?}");
    assert!(is_loopback(&url), "{presented:?}");
    assert!(url.fragment().is_none(), "{presented:?}");
    assert!(
        registered
            .iter()
            .any(|r| Url::parse(r).is_ok_and(|r| r.host() == url.host()
                && r.path() == url.path()
                && r.query() == url.query())),
        "{presented:?} matched {registered:?}"
    );
});

/// Whether registration accepts `raw`; if it does, what it accepted is safe
/// and matches itself, on any port when it is a loopback one.
fn registrable(raw: &str) -> bool {
    let Ok(url) = check_redirect_uri(raw) else {
        return false;
    };
    assert!(url.fragment().is_none(), "{raw:?}");
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{raw:?}"
    );
    assert!(
        url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url)),
        "{raw:?}"
    );
    let registered = [raw.to_owned()];
    assert!(redirect_uri_matches(&registered, raw), "{raw:?}");
    if url.scheme() == "http" {
        // A native app's loopback listener may be on any port (RFC 8252 §7.3).
        let mut moved = url.clone();
        moved.set_port(Some(51234)).unwrap();
        assert!(redirect_uri_matches(&registered, moved.as_str()), "{raw:?}");
    }
    true
}
