//! Each security rule of /register, /authorize and /token, tried and refused.

mod support;

use serde_json::json;
use support::flow::{location, param, Flow, Pkce, REDIRECT};
use support::{TestDb, TestServer};

async fn setup() -> (TestDb, TestServer, Flow) {
    support::dev_broker(&["alice@example.com"]).await
}

/// /authorize refusals that go back to the client: error, state and iss.
async fn refused_back(flow: &Flow, url: &str, error: &str, issuer: &str) {
    let r = flow.get(url).await;
    assert_eq!(r.status(), 303, "{url}");
    let target = url::Url::parse(&location(&r)).unwrap();
    assert!(target.as_str().starts_with(REDIRECT), "{target}");
    assert_eq!(param(&target, "error").as_deref(), Some(error), "{target}");
    assert_eq!(param(&target, "state").as_deref(), Some("st4te"));
    assert_eq!(param(&target, "iss").as_deref(), Some(issuer));
    assert!(param(&target, "code").is_none());
}

#[tokio::test]
async fn pkce_is_required_and_must_be_s256() {
    let (_db, server, flow) = setup().await;
    let client = flow.public_client().await;
    let pkce = Pkce::new();
    let plain = flow
        .authorize_url(&client, &pkce, &[])
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    refused_back(&flow, &plain, "invalid_request", &server.base).await;
    let missing = flow
        .authorize_url(&client, &pkce, &[])
        .replace(&format!("code_challenge={}", pkce.challenge), "");
    refused_back(&flow, &missing, "invalid_request", &server.base).await;
    let short = flow
        .authorize_url(&client, &pkce, &[])
        .replace(&pkce.challenge, "abc");
    refused_back(&flow, &short, "invalid_request", &server.base).await;
    server.stop().await;
}

#[tokio::test]
async fn wrong_scope_resource_or_response_type_go_back_with_an_error() {
    let (_db, server, flow) = setup().await;
    let client = flow.public_client().await;
    let pkce = Pkce::new();
    refused_back(
        &flow,
        &flow.authorize_url(&client, &pkce, &[("scope", "mcp:everything")]),
        "invalid_scope",
        &server.base,
    )
    .await;
    refused_back(
        &flow,
        &flow.authorize_url(&client, &pkce, &[("resource", "https://other.example/mcp")]),
        "invalid_target",
        &server.base,
    )
    .await;
    let token_flow = flow
        .authorize_url(&client, &pkce, &[])
        .replace("response_type=code", "response_type=token");
    refused_back(
        &flow,
        &token_flow,
        "unsupported_response_type",
        &server.base,
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn untrusted_client_or_redirect_uri_get_our_own_page_never_a_redirect() {
    let (_db, server, flow) = setup().await;
    let client = flow.public_client().await;
    let pkce = Pkce::new();
    let cases = [
        flow.authorize_url("no-such-client", &pkce, &[]),
        flow.authorize_url(&client, &pkce, &[])
            .replace("127.0.0.1%3A7777%2Fcallback", "evil.example%2Fcallback"),
        flow.authorize_url(&client, &pkce, &[])
            .replace("%2Fcallback", "%2Fother"),
        flow.authorize_url(&client, &pkce, &[])
            .replace(&format!("client_id={client}"), ""),
    ];
    for url in cases {
        let r = flow.get(&url).await;
        assert_eq!(r.status(), 400, "{url}");
        assert!(r.headers().get("location").is_none(), "{url} redirected");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert_eq!(r.headers()["x-frame-options"], "DENY");
    }
    server.stop().await;
}

#[tokio::test]
async fn loopback_redirects_match_on_any_port() {
    let (_db, server, flow) = setup().await;
    let client = flow.public_client().await;
    let url = flow
        .authorize_url(&client, &Pkce::new(), &[])
        .replace("127.0.0.1%3A7777", "127.0.0.1%3A51999");
    assert_eq!(flow.get(&url).await.status(), 303);
    server.stop().await;
}

#[tokio::test]
async fn no_scope_gets_the_defaults() {
    let (_db, server, flow) = setup().await;
    let token = flow.access_token("alice@example.com").await;
    assert_eq!(token["scope"], "mcp:tools");
    server.stop().await;
}

#[tokio::test]
async fn wrong_verifier_and_wrong_redirect_uri_are_invalid_grant() {
    let (_db, server, flow) = setup().await;
    let client = flow.public_client().await;
    let pkce = Pkce::new();
    let code = param(
        &flow.authorize(&client, &pkce, "alice@example.com").await,
        "code",
    )
    .unwrap();
    let wrong = Pkce::new();
    let (status, body) = flow.redeem(&client, &code, &wrong).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let (status, body) = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:7777/other"),
            ("code_verifier", &pkce.verifier),
            ("client_id", &client),
        ])
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let (status, body) = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
        ])
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_request")),
        "missing verifier: {body}"
    );
    // The failed attempts did not burn the code for its rightful owner.
    let (status, _) = flow.redeem(&client, &code, &pkce).await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let (db, server, flow) = setup().await;
    let client = flow.public_client().await;
    let pkce = Pkce::new();
    let code = param(
        &flow.authorize(&client, &pkce, "alice@example.com").await,
        "code",
    )
    .unwrap();
    let (status, first) = flow.redeem(&client, &code, &pkce).await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().unwrap();
    assert!(flow.whoami(access).await.is_ok());

    let (status, body) = flow.redeem(&client, &code, &pkce).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let refused = flow.whoami(access).await.unwrap_err();
    assert_eq!(
        refused.status, 401,
        "the access token from the first redemption is revoked"
    );
    let events: Vec<String> = db
        .store()
        .await
        .audit_events(50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(events.contains(&"code_replay".to_string()));
    server.stop().await;
}

#[tokio::test]
async fn another_clients_code_is_refused() {
    let (_db, server, flow) = setup().await;
    let client = flow.public_client().await;
    let thief = flow.public_client().await;
    let pkce = Pkce::new();
    let code = param(
        &flow.authorize(&client, &pkce, "alice@example.com").await,
        "code",
    )
    .unwrap();
    let (status, body) = flow.redeem(&thief, &code, &pkce).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    server.stop().await;
}

#[tokio::test]
async fn registration_validates_metadata() {
    let (_db, server, flow) = setup().await;
    for (metadata, error) in [
        (
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (json!({}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": "https://a.example/cb"}),
            "invalid_client_metadata",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ] {
        let (status, body) = flow.register(metadata.clone()).await;
        assert_eq!(status, 400, "{metadata}");
        assert_eq!(body["error"], error, "{metadata}: {body}");
        assert!(body["error_description"].is_string());
    }
    let r = flow
        .http
        .post(flow.url("/register"))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn confidential_clients_must_present_their_secret() {
    let (db, server, flow) = setup().await;
    let (status, reg) = flow
        .register(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post", "client_name": "Conf"}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(reg["token_endpoint_auth_method"], "client_secret_post");
    let client = reg["client_id"].as_str().unwrap().to_owned();
    let secret = reg["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43);
    let stored = db.store().await.client(&client).await.unwrap().unwrap();
    assert_ne!(
        stored.client_secret_hash.as_deref(),
        Some(secret.as_str()),
        "stored only as a hash"
    );

    let pkce = Pkce::new();
    let code = param(
        &flow.authorize(&client, &pkce, "alice@example.com").await,
        "code",
    )
    .unwrap();
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", pkce.verifier.as_str()),
        ("client_id", client.as_str()),
    ];
    let (status, body) = flow.token(&base).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client")),
        "no secret: {body}"
    );
    let mut wrong = base.to_vec();
    wrong.push(("client_secret", "wrong"));
    let (status, _) = flow.token(&wrong).await;
    assert_eq!(status, 401);
    let mut right = base.to_vec();
    right.push(("client_secret", &secret));
    let (status, body) = flow.token(&right).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "a client without the refresh_token grant gets none"
    );

    // HTTP Basic works too (RFC 6749 §2.3.1).
    let code = param(
        &flow.authorize(&client, &pkce, "alice@example.com").await,
        "code",
    )
    .unwrap();
    let r = flow
        .http
        .post(flow.url("/token"))
        .basic_auth(&client, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", pkce.verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn token_endpoint_errors_are_oauth_json() {
    let (_db, server, flow) = setup().await;
    let client = flow.public_client().await;
    let (status, body) = flow
        .token(&[("grant_type", "password"), ("client_id", &client)])
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, body) = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", "nobody"),
        ])
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client),
            ("code", "forged"),
            ("code_verifier", "x"),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let r = flow
        .http
        .post(flow.url("/token"))
        .json(&json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
    server.stop().await;
}
