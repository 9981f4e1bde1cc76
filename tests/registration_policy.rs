//! Who may register clients, with which redirect URIs, and for how long an
//! idle client lives.

mod support;

use serde_json::{json, Value};
use support::flow::{Flow, Pkce, REDIRECT};
use support::{TestDb, TestServer};

async fn broker(
    edit: impl FnOnce(&mut mcp_auth_broker::config::Settings),
) -> (TestDb, TestServer, Flow) {
    let db = TestDb::new().await;
    let mut settings = db.settings();
    edit(&mut settings);
    let server = TestServer::start_dev(settings).await;
    let flow = Flow::new(&server.base);
    (db, server, flow)
}

async fn register(
    flow: &Flow,
    token: Option<&str>,
    redirect: &str,
) -> (u16, Value, Option<String>) {
    let mut request = flow
        .http
        .post(flow.url("/register"))
        .json(&json!({"redirect_uris": [redirect]}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.unwrap();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), r.json().await.unwrap(), challenge)
}

#[tokio::test]
async fn registration_can_be_switched_off() {
    let (_db, server, flow) = broker(|s| s.registration.enabled = false).await;
    let (status, body, _) = register(&flow, None, REDIRECT).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied"))
    );
    let meta: Value = flow
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert!(meta.get("registration_endpoint").is_none());
    server.stop().await;
}

#[tokio::test]
async fn an_initial_access_token_can_be_required() {
    let token = "initial-access-token-for-our-own-clients";
    let (_db, server, flow) =
        broker(|s| s.registration.initial_access_token = Some(token.into())).await;
    for presented in [None, Some("wrong")] {
        let (status, body, challenge) = register(&flow, presented, REDIRECT).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_token")),
            "{presented:?}"
        );
        assert!(challenge.unwrap().starts_with("Bearer"));
    }
    assert_eq!(register(&flow, Some(token), REDIRECT).await.0, 201);
    server.stop().await;
}

#[tokio::test]
async fn redirect_uris_must_match_the_allowed_patterns() {
    let (_db, server, flow) = broker(|s| {
        s.registration.allowed_redirect_uris = vec![
            "https://chatgpt.com/connector_platform_oauth_redirect".into(),
            "https://chatgpt.com/connector/oauth/*".into(),
            "http://127.0.0.1:*".into(),
        ]
    })
    .await;
    for ok in [
        "https://chatgpt.com/connector_platform_oauth_redirect",
        "https://chatgpt.com/connector/oauth/abc123",
        REDIRECT,
    ] {
        assert_eq!(register(&flow, None, ok).await.0, 201, "{ok}");
    }
    for bad in [
        "https://chatgpt.com.evil.example/connector/oauth/x",
        "https://claude.ai/api/mcp/auth_callback",
        "http://localhost:9/cb",
    ] {
        let (status, body, _) = register(&flow, None, bad).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_redirect_uri")),
            "{bad}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn idle_dynamic_clients_expire_and_must_register_again() {
    let (db, server, flow) = broker(|_| {}).await;
    let client = flow.public_client().await;
    let store = db.store().await;
    let now = mcp_auth_broker::store::now();
    // Not used for longer than the idle expiry (here one minute).
    store.purge_expired(now + 120, 60, 3600).await.unwrap();
    let page = flow
        .get(&flow.authorize_url(&client, &Pkce::new(), &[]))
        .await;
    assert_eq!(page.status(), 400);
    let (status, body) = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client),
            ("code", "x"),
            ("code_verifier", "y"),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // A client in use is kept.
    let active = flow.public_client().await;
    store.purge_expired(now, 60, 3600).await.unwrap();
    assert!(store.client(&active).await.unwrap().is_some());
    server.stop().await;
}
