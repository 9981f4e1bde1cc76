//! An upstream that lies: ID tokens with a bad signature, a wrong nonce, a
//! wrong audience, or an unverified email are refused at the callback.

mod support;

use mcp_auth_broker::allowlist::{Email, UserChange};
use mcp_auth_broker::store::now;
use serde_json::json;
use support::flow::{location, Flow, Pkce};
use support::oidc_provider::{TestProvider, CLIENT_ID, CLIENT_SECRET};
use support::{Reserved, TestDb};

#[tokio::test]
async fn lying_upstreams_are_refused() {
    let idp = TestProvider::start().await;
    let db = TestDb::new().await;
    let store = db.store().await;
    store
        .upsert_user(
            &Email::parse("alice@example.com").unwrap(),
            &UserChange::default(),
        )
        .await
        .unwrap();
    let mut settings = db.settings();
    settings.upstreams.push(support::oidc_upstream(
        "fake",
        &idp.issuer,
        CLIENT_ID,
        CLIENT_SECRET,
    ));
    let server = Reserved::new().await.serve(settings).await;
    let flow = Flow::new(&server.base);
    let client = flow.public_client().await;

    let at = now();
    for (lie, claims, forged, status, says) in [
        (
            "bad signature",
            json!({}),
            true,
            502,
            "could not be verified",
        ),
        (
            "wrong nonce",
            json!({"nonce": "another"}),
            false,
            502,
            "could not be verified",
        ),
        (
            "wrong audience",
            json!({"aud": "someone-else"}),
            false,
            502,
            "could not be verified",
        ),
        (
            "wrong issuer",
            json!({"iss": "https://evil.example"}),
            false,
            502,
            "could not be verified",
        ),
        (
            "expired",
            json!({"exp": at - 3600}),
            false,
            502,
            "could not be verified",
        ),
        (
            "unverified email",
            json!({"email_verified": false}),
            false,
            403,
            "has not verified alice@example.com",
        ),
        ("nothing", json!({}), false, 200, "Allow"),
    ] {
        idp.set_claims(claims);
        idp.sign_with_unpublished_key(forged);
        let to_idp = flow
            .get(&flow.authorize_url(&client, &Pkce::new(), &[]))
            .await;
        let to_callback = flow.get(&location(&to_idp)).await;
        let page = flow.get(&location(&to_callback)).await;
        assert_eq!(page.status().as_u16(), status, "{lie}");
        let html = page.text().await.unwrap();
        assert!(html.contains(says), "{lie}: {html}");
    }
    let failures = store
        .audit_events(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.0 == "login_failed")
        .count();
    assert_eq!(failures, 5);
    server.stop().await;
}
