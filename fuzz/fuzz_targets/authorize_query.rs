#![no_main]
//! `/authorize` query strings from anyone, parsed by the same extractor the
//! route uses. A request that passes the checks asks for code with an S256
//! challenge of base64url, a state without control characters and only
//! offered scopes; the chooser's links carry the request unchanged; and the
//! redirect back to the client keeps its query and adds ours intact.

use std::sync::LazyLock;

use axum::extract::Query;
use axum::http::Uri;
use libfuzzer_sys::fuzz_target;
use mcp_auth_broker::config::{OAuthSettings, Settings, Sources};
use mcp_auth_broker::oauth::fuzzing::{
    check_redirect_uri, check_request, redirect_with, Asked, AuthorizeQuery,
};
use url::Url;

const ISSUER: &str = "https://broker.example";

static OAUTH: LazyLock<OAuthSettings> = LazyLock::new(|| {
    Settings::load(&Sources::default())
        .expect("the built-in defaults load")
        .oauth
});

fuzz_target!(|query: &[u8]| {
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let Ok(uri) = format!("/authorize?{query}").parse::<Uri>() else {
        return;
    };
    let Ok(Query(q)) = Query::<AuthorizeQuery>::try_from_uri(&uri) else {
        return;
    };

    let link = serde_urlencoded::to_string(&q).expect("a query serializes");
    let again: AuthorizeQuery = serde_urlencoded::from_str(&link).expect("our link parses");
    assert_eq!(format!("{again:?}"), format!("{q:?}"), "{link}");

    if let Ok(Asked { challenge, scope }) = check_request(&q, &OAUTH) {
        assert_eq!(q.response_type.as_deref(), Some("code"));
        assert_eq!(q.code_challenge_method.as_deref(), Some("S256"));
        assert!((43..=128).contains(&challenge.len()), "{challenge:?}");
        assert!(challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!(!q
            .state
            .as_deref()
            .unwrap_or_default()
            .chars()
            .any(char::is_control));
        assert!(!scope.is_empty());
        for s in scope.split(' ') {
            assert!(OAUTH.scopes_supported.iter().any(|x| x == s), "{scope:?}");
        }
    }

    let Some(target) = q
        .redirect_uri
        .as_deref()
        .filter(|r| check_redirect_uri(r).is_ok())
    else {
        return;
    };
    let params = [
        ("code", Some("c0de")),
        ("state", q.state.as_deref()),
        ("iss", Some(ISSUER)),
    ];
    let back = Url::parse(&redirect_with(target, &params)).expect("the redirect parses");
    let theirs: Vec<_> = Url::parse(target)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let mut expected = theirs.clone();
    expected.extend(
        params
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), (*v)?.to_owned()))),
    );
    let got: Vec<_> = back.query_pairs().into_owned().collect();
    assert_eq!(got, expected, "{target:?}");
});
