//! Faults a deployment meets: the database going away in the middle of a
//! login (PostgreSQL, through a proxy that can cut it), and the broker
//! restarting between /authorize and the provider's callback.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::flow::{location, param, Flow, Pkce};
use support::oidc_provider::{TestProvider, CLIENT_ID, CLIENT_SECRET};
use support::{Reserved, TestDb, TestServer};

const ALICE: &str = "alice@example.com";

async fn allow_alice(db: &TestDb) {
    db.store()
        .await
        .upsert_user(
            &mcp_auth_broker::allowlist::Email::parse(ALICE).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_database_outage_mid_flow_is_answered_503_and_recovered_from() {
    let db = TestDb::new().await;
    let Some((proxy, via_proxy)) = support::db_proxy::proxied(&db).await else {
        eprintln!(
            "skipped: cutting the database needs PostgreSQL (TEST_DATABASE_URL); CI runs it there"
        );
        return;
    };
    allow_alice(&db).await;
    let mut settings = db.settings();
    settings.database.url = via_proxy;
    settings.database.connect_timeout.0 = Duration::from_secs(1);
    settings.server.readiness_timeout.0 = Duration::from_secs(1);
    let server = TestServer::start_dev(settings).await;
    let flow = Flow::new(&server.base);
    let client = flow.public_client().await;
    let pkce = Pkce::new();
    let code = param(&flow.authorize(&client, &pkce, ALICE).await, "code").unwrap();

    proxy.cut();
    let (status, body) = flow.redeem(&client, &code, &pkce).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    let ready = flow.http.get(flow.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let alive = flow.http.get(flow.url("/healthz")).send().await.unwrap();
    assert_eq!(alive.status(), 200, "the process stays up");
    let page = flow
        .get(&flow.authorize_url(&client, &Pkce::new(), &[]))
        .await;
    assert_eq!(page.status(), 503, "a person gets a page, not a 500");

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    while flow
        .http
        .get(flow.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(Instant::now() < deadline, "did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing was half-written: the code the failed attempt presented is
    // still unused and buys its tokens now.
    let (status, tokens) = flow.redeem(&client, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while flow.whoami(access).await.is_err() {
        assert!(Instant::now() < deadline, "the token is never accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn a_restart_between_authorize_and_callback_still_completes_the_login() {
    let idp = TestProvider::start().await;
    let db = TestDb::new().await;
    allow_alice(&db).await;
    let mut settings = db.settings();
    settings.upstreams.push(support::oidc_upstream(
        "corp",
        &idp.issuer,
        CLIENT_ID,
        CLIENT_SECRET,
    ));
    let reserved = Reserved::new().await;
    let addr = reserved.addr;
    let first = reserved.serve(settings.clone()).await;
    let flow = Flow::new(&first.base);
    let client = flow.public_client().await;
    let pkce = Pkce::new();
    let to_idp = flow.get(&flow.authorize_url(&client, &pkce, &[])).await;
    let to_callback = flow.get(&location(&to_idp)).await;
    assert_eq!(to_callback.status(), 303);

    // The broker is replaced (a deploy, a crash) while the person is away.
    first.stop().await;
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let second = Reserved::from_listener(listener).serve(settings).await;

    let consent = flow.get(&location(&to_callback)).await;
    assert_eq!(consent.status(), 200);
    let done = flow.decide(&consent.text().await.unwrap(), "allow").await;
    let code = param(&url::Url::parse(&location(&done)).unwrap(), "code").unwrap();
    let (status, tokens): (_, Value) = flow.redeem(&client, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    second.stop().await;
}
