//! Refresh tokens rotate on every use; a retry within the grace window is
//! forgiven, any other reuse revokes the whole family.

mod support;

use mcp_auth_broker::allowlist::{Email, Status};
use sqlx::{Connection, Executor, Row};
use support::flow::Flow;
use support::TestDb;

async fn refresh_with(
    flow: &Flow,
    client_id: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", client_id),
    ];
    form.extend_from_slice(extra);
    let (status, body) = flow.token(&form).await;
    (status.as_u16(), body)
}

async fn refresh(flow: &Flow, client_id: &str, token: &str) -> (u16, serde_json::Value) {
    refresh_with(flow, client_id, token, &[]).await
}

/// Refreshes and returns the new refresh token, asserting success.
async fn rotate(flow: &Flow, client_id: &str, token: &str) -> String {
    let (status, body) = refresh(flow, client_id, token).await;
    assert_eq!(status, 200, "{body}");
    body["refresh_token"].as_str().unwrap().to_owned()
}

async fn login(flow: &Flow) -> (String, String) {
    let (client, tokens) = flow.client_and_tokens("alice@example.com").await;
    (client, tokens["refresh_token"].as_str().unwrap().to_owned())
}

async fn sql(db: &TestDb, statement: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    conn.execute(statement).await.unwrap();
}

/// Live (unused, unrevoked) refresh tokens of the only family in the database.
async fn live_tokens(db: &TestDb) -> i64 {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM refresh_tokens WHERE used_at IS NULL AND revoked_at IS NULL",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    row.try_get("n").unwrap()
}

#[tokio::test]
async fn rotation_gives_a_new_token_each_time() {
    let (db, server, flow) = support::dev_broker(&["alice@example.com"]).await;
    let (client, first) = login(&flow).await;
    let (status, body) = refresh(&flow, &client, &first).await;
    assert_eq!(status, 200, "{body}");
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert!(flow
        .whoami(body["access_token"].as_str().unwrap())
        .await
        .is_ok());
    let third = rotate(&flow, &client, &second).await;
    assert_ne!(third, second);
    assert_eq!(live_tokens(&db).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_retry_within_the_grace_window_is_forgiven() {
    let (db, server, flow) = support::dev_broker(&["alice@example.com"]).await;
    let (client, first) = login(&flow).await;
    let lost = rotate(&flow, &client, &first).await; // the response that never arrived
    let retried = rotate(&flow, &client, &first).await;
    assert_eq!(
        refresh(&flow, &client, &lost).await.0,
        400,
        "the lost successor is withdrawn"
    );
    rotate(&flow, &client, &retried).await;
    assert_eq!(live_tokens(&db).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_family() {
    let (db, server, flow) = support::dev_broker(&["alice@example.com"]).await;
    let (client, first) = login(&flow).await;
    let second = rotate(&flow, &client, &first).await;
    sql(
        &db,
        "UPDATE refresh_tokens SET used_at = used_at - 120 WHERE used_at IS NOT NULL",
    )
    .await;
    let (status, body) = refresh(&flow, &client, &first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        refresh(&flow, &client, &second).await.0,
        400,
        "the family is revoked"
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
    assert!(events.contains(&"refresh_reuse".to_string()), "{events:?}");
    server.stop().await;
}

#[tokio::test]
async fn reuse_by_another_chain_revokes_the_family() {
    let (_db, server, flow) = support::dev_broker(&["alice@example.com"]).await;
    let (client, first) = login(&flow).await;
    let second = rotate(&flow, &client, &first).await;
    let third = rotate(&flow, &client, &second).await; // the client moved on
    let (status, _) = refresh(&flow, &client, &first).await; // a thief replays the first
    assert_eq!(status, 400);
    assert_eq!(
        refresh(&flow, &client, &third).await.0,
        400,
        "the whole family is revoked"
    );
    server.stop().await;
}

#[tokio::test]
async fn concurrent_refreshes_leave_exactly_one_live_token() {
    let (db, server, flow) = support::dev_broker(&["alice@example.com"]).await;
    let (client, first) = login(&flow).await;
    let (a, b) = tokio::join!(
        refresh(&flow, &client, &first),
        refresh(&flow, &client, &first)
    );
    assert!(a.0 == 200 || b.0 == 200, "one of them wins: {a:?} {b:?}");
    assert_eq!(live_tokens(&db).await, 1, "no double issuance");
    server.stop().await;
}

#[tokio::test]
async fn scope_may_narrow_but_never_widen() {
    let (_db, server, flow) = support::dev_broker(&["alice@example.com"]).await;
    let (client, first) = login(&flow).await;
    let (status, body) = refresh_with(&flow, &client, &first, &[("scope", "mcp:admin")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, body) = refresh_with(&flow, &client, &first, &[("scope", "mcp:tools")]).await;
    assert_eq!((status, body["scope"].as_str()), (200, Some("mcp:tools")));
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
