//! Rate limits per client address, with X-Forwarded-For believed only from
//! trusted proxies.

mod support;

use std::net::IpAddr;

use serde_json::json;
use support::{TestDb, TestServer};

async fn limited_broker(trusted: &[&str]) -> (TestDb, TestServer) {
    let db = TestDb::new().await;
    let mut settings = db.settings();
    settings.rate_limit.enabled = true;
    settings.rate_limit.requests_per_second = 0.2;
    settings.rate_limit.burst = 3;
    settings.server.trusted_proxies = trusted.iter().map(|ip| ip.parse().unwrap()).collect();
    let server = TestServer::start_dev(settings).await;
    (db, server)
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn register(
    http: &reqwest::Client,
    server: &TestServer,
    forwarded: Option<&str>,
) -> reqwest::Response {
    let mut request = http
        .post(server.url("/register"))
        .json(&json!({"redirect_uris": ["https://a.example/cb"]}));
    if let Some(f) = forwarded {
        request = request.header("x-forwarded-for", f);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn an_address_over_its_budget_gets_429_with_retry_after() {
    let (_db, server) = limited_broker(&[]).await;
    let alice = client_from("127.0.0.1");
    for _ in 0..3 {
        assert_eq!(register(&alice, &server, None).await.status(), 201);
    }
    let refused = register(&alice, &server, None).await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    // The budget is shared by the login pages, and is per address.
    assert_eq!(
        alice
            .get(server.url("/authorize"))
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        register(&client_from("127.0.0.2"), &server, None)
            .await
            .status(),
        201
    );
    // Discovery and health are never limited.
    assert_eq!(
        alice
            .get(server.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        alice
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    // Untrusted peer: a forged header does not buy a fresh budget.
    let (_db, server) = limited_broker(&[]).await;
    let mallory = client_from("127.0.0.1");
    for i in 0..3 {
        assert_eq!(
            register(&mallory, &server, Some(&format!("198.51.100.{i}")))
                .await
                .status(),
            201
        );
    }
    assert_eq!(
        register(&mallory, &server, Some("198.51.100.99"))
            .await
            .status(),
        429
    );
    server.stop().await;

    // Behind a trusted proxy each forwarded client has its own budget.
    let (_db, server) = limited_broker(&["127.0.0.1"]).await;
    let proxy = client_from("127.0.0.1");
    for _ in 0..3 {
        assert_eq!(
            register(&proxy, &server, Some("198.51.100.1"))
                .await
                .status(),
            201
        );
    }
    assert_eq!(
        register(&proxy, &server, Some("198.51.100.1"))
            .await
            .status(),
        429
    );
    assert_eq!(
        register(&proxy, &server, Some("198.51.100.2"))
            .await
            .status(),
        201
    );
    server.stop().await;
}

#[tokio::test]
async fn a_cidr_block_of_proxies_is_trusted_as_a_whole() {
    let (_db, server) = limited_broker(&["127.0.0.0/30"]).await;
    // Two hops inside the block: the client is the address before them.
    let proxy = client_from("127.0.0.2");
    for _ in 0..3 {
        assert_eq!(
            register(&proxy, &server, Some("198.51.100.1, 127.0.0.3"))
                .await
                .status(),
            201
        );
    }
    assert_eq!(
        register(&client_from("127.0.0.1"), &server, Some("198.51.100.1"))
            .await
            .status(),
        429,
        "the same client, through another proxy of the block"
    );
    assert_eq!(
        register(&proxy, &server, Some("198.51.100.2"))
            .await
            .status(),
        201
    );
    // Outside the block a forged header buys nothing.
    let outsider = client_from("127.0.0.9");
    for i in 0..3 {
        assert_eq!(
            register(&outsider, &server, Some(&format!("203.0.113.{i}")))
                .await
                .status(),
            201
        );
    }
    assert_eq!(
        register(&outsider, &server, Some("203.0.113.99"))
            .await
            .status(),
        429
    );
    server.stop().await;
}
