//! SIGTERM while requests are in flight: they all complete, new
//! connections are refused, and the process exits 0.

mod support;

use std::time::{Duration, Instant};

use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use support::flow::{Flow, Pkce};
use support::{broker_binary, write, Reserved, TestDb};

/// A provider whose discovery takes a second, so /authorize is in flight
/// long enough to be caught by the signal.
async fn slow_provider() -> String {
    let reserved = Reserved::new().await;
    let issuer = reserved.base.clone();
    let i = issuer.clone();
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let i = i.clone();
                async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Json(json!({
                        "issuer": i, "authorization_endpoint": format!("{i}/authorize"),
                        "token_endpoint": format!("{i}/token"), "jwks_uri": format!("{i}/jwks"),
                        "response_types_supported": ["code"], "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                    }))
                }
            }),
        )
        .route("/jwks", get(|| async { Json(json!({"keys": []})) }));
    let listener = reserved.into_listener();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let db = TestDb::new().await;
    let issuer = slow_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let port = Reserved::new().await.addr.port();
    let base = format!("http://127.0.0.1:{port}");
    let config = write(
        dir.path(),
        "broker.toml",
        &format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\npublic_url = \"{base}\"\n\
             [database]\nurl = \"{}\"\n[rate_limit]\nenabled = false\n\
             [[upstreams]]\nid = \"slow\"\nkind = \"oidc\"\nissuer = \"{issuer}\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
            db.url
        ),
    );
    let mut child = tokio::process::Command::new(broker_binary())
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env_clear()
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reqwest::get(format!("{base}/readyz"))
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "the broker did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let flow = Flow::new(&base);
    let client = flow.public_client().await;

    // Eight sign-ins waiting on the slow provider when the signal comes.
    let in_flight: Vec<_> = (0..8)
        .map(|_| {
            let url = flow.authorize_url(&client, &Pkce::new(), &[]);
            let browser = Flow::new(&base).browser;
            tokio::spawn(async move { browser.get(url).send().await.map(|r| r.status()) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());

    for request in in_flight {
        let status = request
            .await
            .unwrap()
            .expect("an in-flight request was cut off");
        assert_eq!(status, 303, "it completed with its real answer");
    }
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the broker exits after its in-flight requests")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "nothing listens any more"
    );
}
