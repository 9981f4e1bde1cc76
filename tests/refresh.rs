//! Refresh tokens rotate on every use; a reused one revokes its family.

mod support;

use mcp_auth_broker::allowlist::{Email, Status};
use support::flow::Flow;

async fn refresh(flow: &Flow, client_id: &str, token: &str) -> (u16, serde_json::Value) {
    let (status, body) = flow
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client_id),
        ])
        .await;
    (status.as_u16(), body)
}

async fn login(flow: &Flow) -> (String, String) {
    let client = flow.public_client().await;
    let pkce = support::flow::Pkce::new();
    let code = support::flow::param(
        &flow.authorize(&client, &pkce, "alice@example.com").await,
        "code",
    )
    .unwrap();
    let (status, body) = flow.redeem(&client, &code, &pkce).await;
    assert_eq!(status, 200);
    (client, body["refresh_token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn rotation_and_reuse_detection() {
    let (db, server, flow) = support::dev_broker(&["alice@example.com"]).await;
    let (client, first) = login(&flow).await;

    let (status, body) = refresh(&flow, &client, &first).await;
    assert_eq!(status, 200, "{body}");
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first, "rotated");
    assert!(flow
        .whoami(body["access_token"].as_str().unwrap())
        .await
        .is_ok());

    // Reusing the retired token is treated as theft: the family dies.
    let (status, body) = refresh(&flow, &client, &first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = refresh(&flow, &client, &second).await;
    assert_eq!(status, 400, "the successor is revoked with its family");
    let events: Vec<String> = db
        .store()
        .await
        .audit_events(50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(
        events.contains(&"refresh_reuse".to_string())
            && events.contains(&"token_refreshed".to_string()),
        "{events:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn refresh_rechecks_the_allowlist_and_the_client() {
    let (db, server, flow) = support::dev_broker(&["alice@example.com"]).await;
    let (client, token) = login(&flow).await;
    let other = flow.public_client().await;
    let (status, body) = refresh(&flow, &other, &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "another client's token"
    );

    db.store()
        .await
        .set_user_status(
            &Email::parse("alice@example.com").unwrap(),
            Status::Suspended,
        )
        .await
        .unwrap();
    let (status, body) = refresh(&flow, &client, &token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "suspended person"
    );
    let (status, _) = refresh(&flow, &client, "made-up").await;
    assert_eq!(status, 400);
    server.stop().await;
}
