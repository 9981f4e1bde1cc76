//! The first real login end to end, over real sockets: discovery, DCR,
//! /authorize, the upstream (the built-in dev provider, and a second OIDC
//! server of its own), the allowlist gate, consent, code and /token.

mod support;

use std::sync::Arc;

use mcp_auth_broker::allowlist::{Email, Role, Status, UserChange};
use mcp_auth_broker::tokens;
use mcp_auth_broker::upstream::dev_idp::DevIdp;
use serde_json::{json, Value};
use support::flow::{location, param, Flow, Pkce, REDIRECT};
use support::{Reserved, TestDb, TestServer};

async fn allow(db: &TestDb, email: &str) {
    let store = db.store().await;
    store
        .upsert_user(
            &Email::parse(email).unwrap(),
            &UserChange {
                name: Some("Alice".into()),
                role: Some(Role::User),
                status: None,
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn discovery_documents_agree_on_the_issuer() {
    let db = TestDb::new().await;
    let server = TestServer::start_dev(db.settings()).await;
    let flow = Flow::new(&server.base);
    let issuer = server.base.clone();
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let prm: Value = flow.get_json(path).await;
        assert_eq!(prm["resource"], format!("{issuer}/mcp"));
        assert_eq!(prm["authorization_servers"], json!([issuer]));
        assert_eq!(prm["bearer_methods_supported"], json!(["header"]));
        assert_eq!(prm["scopes_supported"], json!(["mcp:tools", "mcp:admin"]));
    }
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/mcp",
        "/.well-known/openid-configuration",
    ] {
        let meta: Value = flow.get_json(path).await;
        assert_eq!(meta["issuer"], issuer, "{path}");
        assert_eq!(
            meta["authorization_endpoint"],
            format!("{issuer}/authorize")
        );
        assert_eq!(meta["token_endpoint"], format!("{issuer}/token"));
        assert_eq!(meta["registration_endpoint"], format!("{issuer}/register"));
        assert_eq!(meta["jwks_uri"], format!("{issuer}/jwks.json"));
        assert_eq!(meta["revocation_endpoint"], format!("{issuer}/revoke"));
        assert_eq!(meta["userinfo_endpoint"], format!("{issuer}/userinfo"));
        assert_eq!(meta["response_types_supported"], json!(["code"]));
        assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            meta["token_endpoint_auth_methods_supported"],
            json!([
                "none",
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt"
            ])
        );
        assert_eq!(meta["client_id_metadata_document_supported"], true);
        assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    }
    for path in ["/jwks.json", "/.well-known/jwks.json"] {
        let jwks: Value = flow.get_json(path).await;
        let key = &jwks["keys"][0];
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert!(key["kid"].is_string() && key["n"].is_string());
        assert!(key.get("d").is_none(), "no private part");
    }
    server.stop().await;
}

#[tokio::test]
async fn full_login_with_the_dev_provider() {
    let (db, server, flow) = support::dev_broker(&["alice@example.com"]).await;
    let client_id = flow.public_client().await;
    let pkce = Pkce::new();

    let consent = flow
        .login(
            &flow.authorize_url(
                &client_id,
                &pkce,
                &[("resource", &format!("{}/mcp", server.base))],
            ),
            "Alice@Example.com",
            true,
        )
        .await;
    assert_eq!(consent.status(), 200);
    assert_eq!(consent.headers()["x-frame-options"], "DENY");
    assert!(consent.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let html = consent.text().await.unwrap();
    assert!(
        html.contains("Test Client")
            && html.contains("127.0.0.1")
            && html.contains("mcp:tools")
            && html.contains("alice@example.com"),
        "{html}"
    );

    let back = flow.decide(&html, "allow").await;
    assert_eq!(back.status(), 303);
    let target = url::Url::parse(&location(&back)).unwrap();
    assert!(target.as_str().starts_with(REDIRECT));
    assert_eq!(param(&target, "state").as_deref(), Some("st4te"));
    assert_eq!(param(&target, "iss").as_deref(), Some(server.base.as_str()));
    let code = param(&target, "code").unwrap();

    let (status, body) = flow.redeem(&client_id, &code, &pkce).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "mcp:tools");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);

    // The access token is ours, for the MCP resource, about Alice.
    let store = db.store().await;
    let keys = tokens::KeySet::load_or_create(&store).await.unwrap();
    let claims = tokens::validate(
        &keys,
        body["access_token"].as_str().unwrap(),
        &server.base,
        &format!("{}/mcp", server.base),
    )
    .unwrap();
    let alice = store
        .user(&Email::parse("alice@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims.sub, alice.user_id);
    assert_eq!(claims.email, "alice@example.com");
    assert_eq!(claims.client_id, client_id);
    assert_eq!(alice.provider.as_deref(), Some("dev"));
    assert!(alice.last_login_at.is_some());

    // Consent is remembered: the second authorization skips the page.
    let pkce2 = Pkce::new();
    let again = flow
        .login(
            &flow.authorize_url(&client_id, &pkce2, &[]),
            "alice@example.com",
            true,
        )
        .await;
    assert_eq!(again.status(), 303, "no consent page the second time");
    assert!(location(&again).starts_with(REDIRECT));

    let events: Vec<String> = store
        .audit_events(50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(
        events.contains(&"login_ok".to_string()) && events.contains(&"token_issued".to_string()),
        "{events:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn full_login_with_a_separate_oidc_server() {
    // A second provider, its own server and issuer, configured as kind "oidc".
    let broker = Reserved::new().await;
    let idp_port = Reserved::new().await;
    let issuer = format!("{}/dev-idp", idp_port.base);
    let idp = Arc::new(
        DevIdp::new(
            &issuer,
            "corp-client",
            "corp-secret",
            &format!("{}/callback", broker.base),
        )
        .unwrap(),
    );
    let idp_router = axum::Router::new().nest_service("/dev-idp", idp.router());
    let listener = idp_port.into_listener();
    tokio::spawn(async move { axum::serve(listener, idp_router).await.unwrap() });

    let db = TestDb::new().await;
    allow(&db, "bob@corp.example").await;
    let mut settings = db.settings();
    let mut corp = support::oidc_upstream("corp", &issuer, "corp-client", "corp-secret");
    corp.display_name = Some("Corp".into());
    settings.upstreams.push(corp);
    let server = broker.serve(settings).await;
    let flow = Flow::new(&server.base);
    let token = flow.access_token("bob@corp.example").await;
    assert!(token["access_token"].is_string());
    let store = db.store().await;
    let bob = store
        .user(&Email::parse("bob@corp.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.provider.as_deref(), Some("corp"));
    server.stop().await;
}

#[tokio::test]
async fn allowlist_gate_refuses_unverified_unknown_and_suspended() {
    let db = TestDb::new().await;
    allow(&db, "alice@example.com").await;
    allow(&db, "sus@example.com").await;
    let store = db.store().await;
    store
        .set_user_status(&Email::parse("sus@example.com").unwrap(), Status::Suspended)
        .await
        .unwrap();
    let server = TestServer::start_dev(db.settings()).await;
    let flow = Flow::new(&server.base);
    let client_id = flow.public_client().await;

    for (email, verified, says) in [
        (
            "alice@example.com",
            false,
            "has not verified alice@example.com",
        ),
        (
            "mallory@example.com",
            true,
            "mallory@example.com is not on this server&#39;s allowlist — ask an administrator",
        ),
        ("sus@example.com", true, "sus@example.com is suspended"),
    ] {
        let page = flow
            .login(
                &flow.authorize_url(&client_id, &Pkce::new(), &[]),
                email,
                verified,
            )
            .await;
        assert_eq!(page.status(), 403, "{email}");
        let html = page.text().await.unwrap();
        assert!(html.contains(says), "{email}: {html}");
        // Only if the person chooses to return does the client hear access_denied.
        let back = flow.decide(&html, "deny").await;
        assert_eq!(back.status(), 303);
        let target = url::Url::parse(&location(&back)).unwrap();
        assert_eq!(param(&target, "error").as_deref(), Some("access_denied"));
        assert_eq!(param(&target, "iss").as_deref(), Some(server.base.as_str()));
        assert_eq!(param(&target, "state").as_deref(), Some("st4te"));
    }
    let denials = store
        .audit_events(50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.0 == "login_denied")
        .count();
    assert_eq!(denials, 3);

    // An allowed domain admits a new person and adds them to the allowlist.
    store
        .add_domain(&mcp_auth_broker::allowlist::Domain::parse("example.org").unwrap())
        .await
        .unwrap();
    flow.access_token("new@example.org").await;
    assert!(store
        .user(&Email::parse("new@example.org").unwrap())
        .await
        .unwrap()
        .is_some());
    server.stop().await;
}

#[tokio::test]
async fn consent_deny_returns_access_denied() {
    let (_db, server, flow) = support::dev_broker(&["alice@example.com"]).await;
    let client_id = flow.public_client().await;
    let page = flow
        .login(
            &flow.authorize_url(&client_id, &Pkce::new(), &[]),
            "alice@example.com",
            true,
        )
        .await;
    let html = page.text().await.unwrap();
    let back = flow.decide(&html, "deny").await;
    let target = url::Url::parse(&location(&back)).unwrap();
    assert_eq!(param(&target, "error").as_deref(), Some("access_denied"));
    assert!(param(&target, "code").is_none());
    // The form cannot be replayed once used.
    let again = flow.decide(&html, "allow").await;
    assert_eq!(again.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn consent_needs_the_browser_that_started_and_its_csrf_token() {
    let (_db, server, flow) = support::dev_broker(&["alice@example.com"]).await;
    let client_id = flow.public_client().await;
    let html = flow
        .login(
            &flow.authorize_url(&client_id, &Pkce::new(), &[]),
            "alice@example.com",
            true,
        )
        .await
        .text()
        .await
        .unwrap();

    let forged = html.replace(&support::flow::hidden(&html, "csrf"), "forged-token-value");
    assert_eq!(flow.decide(&forged, "allow").await.status(), 403);
    let stranger = Flow::new(&server.base);
    assert_eq!(
        stranger.decide(&html, "allow").await.status(),
        403,
        "another browser cannot approve"
    );
    assert_eq!(flow.decide(&html, "allow").await.status(), 303);
    server.stop().await;
}

#[tokio::test]
async fn clients_and_keys_survive_a_restart() {
    let (db, first, flow) = support::dev_broker(&["alice@example.com"]).await;
    let client_id = flow.public_client().await;
    let jwks_before: Value = flow.get_json("/jwks.json").await;
    first.stop().await;

    let second = TestServer::start_dev(db.settings()).await;
    let flow = Flow::new(&second.base);
    let jwks_after: Value = flow.get_json("/jwks.json").await;
    assert_eq!(
        jwks_before, jwks_after,
        "the signing key is kept in the database"
    );
    let target = flow
        .authorize(&client_id, &Pkce::new(), "alice@example.com")
        .await;
    assert!(
        param(&target, "code").is_some(),
        "the client registered before the restart still works"
    );
    second.stop().await;
}
