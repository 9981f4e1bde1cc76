//! `/metrics` after real traffic: the series operators alert on are there,
//! and `server.metrics_bind` moves them off the public port.

mod support;

use support::{Reserved, TestDb};

const ALICE: &str = "alice@example.com";

#[tokio::test]
async fn the_named_series_appear_after_a_login_flow() {
    let (_db, server, flow) = support::dev_broker(&[ALICE]).await;
    let (client, tokens) = flow.client_and_tokens(ALICE).await;
    flow.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", &client),
    ])
    .await;
    flow.whoami(tokens["access_token"].as_str().unwrap())
        .await
        .unwrap();
    // A refused login, for the denial series.
    flow.login(
        &flow.authorize_url(&client, &support::flow::Pkce::new(), &[]),
        "stranger@example.com",
        true,
    )
    .await;

    let r = flow.http.get(flow.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    for series in [
        r#"broker_http_requests_total{route="/token",method="POST",status="200"}"#,
        r#"broker_http_request_duration_seconds_bucket{route="/token""#,
        r#"broker_logins_total{provider="dev",outcome="ok"}"#,
        r#"broker_logins_total{provider="dev",outcome="denied"}"#,
        r#"broker_allowlist_denials_total{reason="not_allowlisted"}"#,
        r#"broker_tokens_issued_total{grant_type="authorization_code"}"#,
        r#"broker_tokens_issued_total{grant_type="refresh_token"}"#,
        r#"broker_upstream_request_duration_seconds_bucket{provider="dev",step="token""#,
        r#"broker_db_pool_connections{state="open"}"#,
    ] {
        assert!(text.contains(series), "{series} missing from:\n{text}");
    }
    assert!(
        !text.contains("stranger@example.com"),
        "no personal data in labels"
    );
    server.stop().await;
}

#[tokio::test]
async fn metrics_bind_serves_them_on_their_own_port_only() {
    let db = TestDb::new().await;
    let metrics_port = Reserved::new().await;
    let metrics_addr = metrics_port.addr;
    drop(metrics_port);
    let mut settings = db.settings();
    settings.server.metrics_bind = Some(metrics_addr.to_string());
    let server = support::TestServer::start(settings).await;
    assert_eq!(
        reqwest::get(server.url("/metrics")).await.unwrap().status(),
        404
    );
    let r = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("broker_http_requests_total"));
    server.stop().await;
}

#[tokio::test]
async fn answers_of_the_body_limit_are_counted_too() {
    let db = TestDb::new().await;
    let mut settings = db.settings();
    settings.server.max_body_bytes = 1024;
    let server = support::TestServer::start(settings).await;
    let flow = support::flow::Flow::new(&server.base);
    let refused = flow
        .http
        .post(server.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 413);
    let text = flow.get_text("/metrics").await;
    let series = r#"broker_http_requests_total{route="/token",method="POST",status="413"}"#;
    assert!(text.contains(series), "{series} missing from:\n{text}");
    server.stop().await;
}
