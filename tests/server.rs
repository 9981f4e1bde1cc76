//! The HTTP server over real sockets: probes, request ids, limits, shutdown.

mod support;

use std::time::{Duration, Instant};

use support::{broker_binary, TestDb, TestServer};
use tokio::net::TcpListener;

#[tokio::test]
async fn probes_answer_and_requests_get_an_id() {
    let db = TestDb::new().await;
    let server = TestServer::start(db.settings()).await;
    let http = reqwest::Client::new();

    let health = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let id = health.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a uuid request id: {id}");
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );

    let ready = http
        .get(server.url("/readyz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.headers()["x-request-id"],
        "abc-123",
        "a caller's id is kept"
    );
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
    server.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_in_each_endpoints_shape() {
    let db = TestDb::new().await;
    let mut settings = db.settings();
    settings.server.max_body_bytes = 1024;
    let server = TestServer::start(settings).await;
    let http = reqwest::Client::new();
    let post = |path: &str| {
        http.post(server.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'x'; 4096])
            .send()
    };
    let limit = "larger than the 1024 bytes";

    let oauth = post("/token").await.unwrap();
    assert_eq!(oauth.status(), 413);
    let body: serde_json::Value = oauth.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(body["error_description"].as_str().unwrap().contains(limit));

    let rpc = post("/mcp").await.unwrap();
    assert_eq!(rpc.status(), 413);
    let body: serde_json::Value = rpc.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["error"]["code"], -32600, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(limit));

    let page = post("/consent").await.unwrap();
    assert_eq!(page.status(), 413);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains("This request is too large") && html.contains(limit),
        "{html}"
    );
    server.stop().await;
}

#[tokio::test]
async fn readyz_follows_the_database_down_and_back() {
    let db = TestDb::new().await;
    let Some((proxy, via_proxy)) = support::db_proxy::proxied(&db).await else {
        eprintln!("skipped: needs a database behind a network connection (set TEST_DATABASE_URL)");
        return;
    };
    let mut settings = db.settings();
    settings.database.url = via_proxy;
    settings.database.connect_timeout.0 = Duration::from_secs(1);
    settings.server.readiness_timeout.0 = Duration::from_secs(1);
    let server = TestServer::start(settings).await;
    let http = reqwest::Client::new();
    let ready = || async { http.get(server.url("/readyz")).send().await.unwrap() };

    assert_eq!(ready().await.status(), 200);
    proxy.cut();
    let down = ready().await;
    assert_eq!(down.status(), 503);
    let body: serde_json::Value = down.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert!(body["reason"].as_str().unwrap().contains("database"));
    assert_eq!(
        http.get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "still alive"
    );

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if ready().await.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "readyz did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn serve_stops_cleanly_on_sigterm() {
    let db = TestDb::new().await;
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(broker_binary())
        .arg("serve")
        .env_clear()
        .env("BROKER__DATABASE__URL", &db.url)
        .env("BROKER__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env(
            "BROKER__SERVER__PUBLIC_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = reqwest::get(&url).await {
            assert_eq!(r.status(), 200);
            break;
        }
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "server ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn serve_refuses_a_bad_config_with_status_2() {
    let out = std::process::Command::new(broker_binary())
        .arg("serve")
        .env_clear()
        .env("BROKER__SERVER__PUBLIC_URL", "http://broker.example.com")
        .env("BROKER__SERVER__REQUEST_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("config error: ") && err.contains("\"soon\" is not a duration"),
        "{err}"
    );
}
