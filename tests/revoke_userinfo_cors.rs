//! RFC 7009 revocation, userinfo, and CORS for browser-based clients.

mod support;

use serde_json::{json, Value};
use support::flow::{Flow, REDIRECT};

async fn login(flow: &Flow) -> (String, Value) {
    flow.client_and_tokens("alice@example.com").await
}

async fn revoke(flow: &Flow, form: &[(&str, &str)]) -> (u16, String) {
    let r = flow
        .http
        .post(flow.url("/revoke"))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_family() {
    let (_db, server, flow) = support::dev_broker(&["alice@example.com"]).await;
    let (client, tokens) = login(&flow).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(
        revoke(
            &flow,
            &[
                ("token", refresh),
                ("token_type_hint", "refresh_token"),
                ("client_id", &client)
            ]
        )
        .await
        .0,
        200
    );
    let (status, body) = flow
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client),
        ])
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    server.stop().await;
}

#[tokio::test]
async fn revoking_an_access_token_stops_it_at_once() {
    let (db, server, flow) = support::dev_broker(&["alice@example.com"]).await;
    let (client, tokens) = login(&flow).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert!(flow.whoami(access).await.is_ok());
    assert_eq!(
        revoke(&flow, &[("token", access), ("client_id", &client)])
            .await
            .0,
        200
    );
    assert_eq!(flow.whoami(access).await.unwrap_err().status, 401);
    let events: Vec<String> = db
        .store()
        .await
        .audit_events(50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(events.contains(&"revoked".to_string()));
    server.stop().await;
}

#[tokio::test]
async fn revocation_refusals() {
    let (_db, server, flow) = support::dev_broker(&["alice@example.com"]).await;
    let (client, tokens) = login(&flow).await;
    let access = tokens["access_token"].as_str().unwrap();
    // Unknown tokens: 200, as RFC 7009 §2.2 says.
    assert_eq!(
        revoke(&flow, &[("token", "no-such-token"), ("client_id", &client)])
            .await
            .0,
        200
    );
    // Another client cannot revoke this client's token (and learns nothing).
    let other = flow.public_client().await;
    assert_eq!(
        revoke(&flow, &[("token", access), ("client_id", &other)])
            .await
            .0,
        200
    );
    assert!(flow.whoami(access).await.is_ok(), "still valid");
    // No token, no client, or a confidential client without its secret.
    let (status, body) = revoke(&flow, &[("client_id", &client)]).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "invalid_request"
    );
    assert_eq!(revoke(&flow, &[("token", access)]).await.0, 401);
    let (_, conf) = flow.register(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"})).await;
    let conf_id = conf["client_id"].as_str().unwrap();
    let (status, body) = revoke(&flow, &[("token", access), ("client_id", conf_id)]).await;
    assert_eq!(status, 401, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn userinfo_describes_the_token_holder() {
    let (_db, server, flow) = support::dev_broker(&["alice@example.com"]).await;
    let (_, tokens) = login(&flow).await;
    let access = tokens["access_token"].as_str().unwrap();
    let info: Value = flow
        .http
        .get(flow.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["email_verified"], true);
    assert!(info["sub"].as_str().unwrap().len() == 36);
    let anonymous = flow.http.get(flow.url("/userinfo")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer resource_metadata="));
    let bad = flow
        .http
        .get(flow.url("/userinfo"))
        .bearer_auth("x.y.z")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn browser_clients_get_cors_on_apis_but_not_on_pages() {
    let (_db, server, flow) = support::dev_broker(&[]).await;
    let inspector = "http://localhost:6274";
    let preflight = flow
        .http
        .request(reqwest::Method::OPTIONS, flow.url("/token"))
        .header("origin", inspector)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");

    let mcp = flow
        .http
        .post(flow.url("/mcp"))
        .header("origin", inspector)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), 401);
    let exposed = mcp.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("www-authenticate"), "{exposed}");

    let metadata = flow
        .http
        .get(flow.url("/.well-known/oauth-authorization-server"))
        .header("origin", inspector)
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.headers()["access-control-allow-origin"], "*");
    let page = flow
        .http
        .get(flow.url("/authorize"))
        .header("origin", inspector)
        .send()
        .await
        .unwrap();
    assert!(
        page.headers().get("access-control-allow-origin").is_none(),
        "pages are not APIs"
    );
    server.stop().await;
}

#[tokio::test]
async fn configured_origins_are_the_only_ones_allowed() {
    let db = support::TestDb::new().await;
    let mut settings = db.settings();
    settings.cors.allowed_origins = vec!["http://localhost:6274".into()];
    let server = support::TestServer::start_dev(settings).await;
    let flow = Flow::new(&server.base);
    let ask = |origin: &'static str| {
        flow.http
            .request(reqwest::Method::OPTIONS, flow.url("/register"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let allowed = ask("http://localhost:6274").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:6274"
    );
    let other = ask("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // Discovery stays readable from anywhere.
    let metadata = flow
        .http
        .get(flow.url("/.well-known/oauth-protected-resource"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.headers()["access-control-allow-origin"], "*");
    server.stop().await;
}

#[tokio::test]
async fn introspection_for_resource_servers() {
    let db = support::TestDb::new().await;
    db.store()
        .await
        .upsert_user(
            &mcp_auth_broker::allowlist::Email::parse("alice@example.com").unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
    let mut settings = db.settings();
    let rs_secret = "resource-server-secret-of-40-characters!!";
    settings
        .introspection
        .clients
        .push(mcp_auth_broker::config::IntrospectionClient {
            id: "github-mcp".into(),
            secret: Some(rs_secret.into()),
            secret_env: None,
        });
    let server = support::TestServer::start_dev(settings).await;
    let flow = Flow::new(&server.base);
    let (client, tokens) = login(&flow).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let ask = |token: &str, id: &str, secret: &str| {
        flow.http
            .post(flow.url("/introspect"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token.to_owned())])
            .send()
    };

    let info: Value = ask(access, "github-mcp", rs_secret)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["active"], true);
    assert_eq!(info["username"], "alice@example.com");
    assert_eq!(info["client_id"], client.as_str());
    assert_eq!(info["scope"], "mcp:tools");
    let info: Value = ask(refresh, "github-mcp", rs_secret)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (info["active"].as_bool(), info["token_type"].as_str()),
        (Some(true), Some("refresh_token"))
    );
    let info: Value = ask("not-ours", "github-mcp", rs_secret)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info, json!({ "active": false }));

    assert_eq!(
        ask(access, "github-mcp", "wrong").await.unwrap().status(),
        401
    );
    assert_eq!(
        ask(access, &client, "").await.unwrap().status(),
        401,
        "a public client may not introspect"
    );

    // Revoked or suspended: inactive.
    assert_eq!(
        revoke(&flow, &[("token", access), ("client_id", &client)])
            .await
            .0,
        200
    );
    let info: Value = ask(access, "github-mcp", rs_secret)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["active"], false);
    db.store()
        .await
        .set_user_status(
            &mcp_auth_broker::allowlist::Email::parse("alice@example.com").unwrap(),
            mcp_auth_broker::allowlist::Status::Suspended,
        )
        .await
        .unwrap();
    let info: Value = ask(refresh, "github-mcp", rs_secret)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["active"], false);
    server.stop().await;
}
