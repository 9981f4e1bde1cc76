//! Client ID metadata documents and `private_key_jwt`, against a client web
//! site served on loopback (so the broker runs with
//! `registration.cimd_allow_insecure_hosts`, except where the address rules
//! themselves are tested).

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::cimd::{Answer, ClientKey, ClientSite, ASSERTION_TYPE};
use support::flow::{param, Flow, Pkce, REDIRECT};
use support::{TestDb, TestServer};

const ALICE: &str = "alice@example.com";

struct Broker {
    _db: TestDb,
    server: TestServer,
    flow: Flow,
}

async fn broker(allow_insecure: bool, enabled: bool) -> Broker {
    let db = TestDb::new().await;
    let store = db.store().await;
    let alice = mcp_auth_broker::allowlist::Email::parse(ALICE).unwrap();
    store
        .upsert_user(&alice, &Default::default())
        .await
        .unwrap();
    let mut settings = db.settings();
    settings.registration.cimd_allow_insecure_hosts = allow_insecure;
    settings.registration.cimd_enabled = enabled;
    let server = TestServer::start_dev(settings).await;
    let flow = Flow::new(&server.base);
    Broker {
        _db: db,
        server,
        flow,
    }
}

/// Development settings: documents on loopback http are fetched.
async fn lax_broker() -> Broker {
    broker(true, true).await
}

impl Broker {
    async fn code(&self, client_id: &str, pkce: &Pkce) -> String {
        param(&self.flow.authorize(client_id, pkce, ALICE).await, "code").unwrap()
    }

    /// The broker's own page for an /authorize with this client_id.
    async fn authorize_page(&self, client_id: &str) -> (StatusCode, String) {
        let r = self
            .flow
            .get(&self.flow.authorize_url(client_id, &Pkce::new(), &[]))
            .await;
        assert!(r.headers().get("location").is_none(), "must not redirect");
        (r.status(), r.text().await.unwrap())
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let r = self
            .flow
            .http
            .post(self.flow.url(path))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn a_document_client_signs_in_without_registering() {
    let b = lax_broker().await;
    let site = ClientSite::start().await;
    let client_id = site.document("/oauth/client.json", json!({}));

    let pkce = Pkce::new();
    let code = b.code(&client_id, &pkce).await;
    let (status, tokens) = b.flow.redeem(&client_id, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let who = b
        .flow
        .whoami(tokens["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(who["email"], ALICE);
    assert_eq!(who["client_id"], client_id);
    // authorize, consent and token all used the one cached fetch.
    assert_eq!(site.hits("/oauth/client.json"), 1);
    b.server.stop().await;
}

#[tokio::test]
async fn private_key_jwt_with_jwks_uri_redeems_refreshes_and_revokes() {
    let b = lax_broker().await;
    let site = ClientSite::start().await;
    let key = ClientKey::new("k1");
    site.put("/jwks.json", Answer::json(&key.jwks()));
    let client_id = site.document(
        "/client.json",
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": site.url("/jwks.json")}),
    );
    let issuer = b.server.base.clone();
    let token_endpoint = b.server.url("/token");

    let pkce = Pkce::new();
    let code = b.code(&client_id, &pkce).await;
    let assertion = key.assertion(&client_id, &issuer, json!({}));
    let (status, tokens) = b
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &pkce.verifier),
                ("client_id", &client_id),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ],
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap();

    // client_id may be left out: the assertion's iss names the client.
    let second = key.assertion(&client_id, &token_endpoint, json!({}));
    let (status, refreshed) = b
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &second),
            ],
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");

    // Without an assertion this client is not authenticated at all.
    let new_refresh = refreshed["refresh_token"].as_str().unwrap();
    let (status, body) = b
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", new_refresh),
                ("client_id", &client_id),
            ],
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");

    let third = key.assertion(&client_id, &issuer, json!({}));
    let (status, body) = b
        .post_form(
            "/revoke",
            &[
                ("token", new_refresh),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &third),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The key set was fetched once and cached.
    assert_eq!(site.hits("/jwks.json"), 1);
    b.server.stop().await;
}

#[tokio::test]
async fn private_key_jwt_with_inline_jwks_refuses_other_keys_and_bad_claims() {
    let b = lax_broker().await;
    let site = ClientSite::start().await;
    let key = ClientKey::new("k1");
    let client_id = site.document(
        "/client.json",
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": key.jwks()}),
    );
    let issuer = b.server.base.clone();
    let pkce = Pkce::new();
    let code = b.code(&client_id, &pkce).await;
    let redeem = |assertion: String| {
        let form = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.clone()),
            ("redirect_uri".to_owned(), REDIRECT.to_owned()),
            ("code_verifier".to_owned(), pkce.verifier.clone()),
            ("client_id".to_owned(), client_id.clone()),
            (
                "client_assertion_type".to_owned(),
                ASSERTION_TYPE.to_owned(),
            ),
            ("client_assertion".to_owned(), assertion),
        ];
        let http = b.flow.http.clone();
        let url = b.flow.url("/token");
        async move {
            let r = http.post(url).form(&form).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let now = mcp_auth_broker::store::now();
    let impostor = ClientKey::new("k1");
    for (why, assertion, complaint) in [
        (
            "another key with the same kid",
            impostor.assertion(&client_id, &issuer, json!({})),
            "not signed by any key",
        ),
        (
            "expired",
            key.assertion(&client_id, &issuer, json!({"exp": now - 120})),
            "expired",
        ),
        (
            "valid for a day",
            key.assertion(&client_id, &issuer, json!({"exp": now + 86_400})),
            "10 minutes",
        ),
        (
            "no jti",
            key.assertion(&client_id, &issuer, json!({"jti": null})),
            "jti",
        ),
        (
            "sub is someone else",
            key.assertion(
                &client_id,
                &issuer,
                json!({"sub": "https://evil.example/c.json"}),
            ),
            "sub",
        ),
        ("not a JWT", "not-a-jwt".to_owned(), "not a JWT"),
    ] {
        let (status, body) = redeem(assertion).await;
        assert_eq!(status, 401, "{why}: {body}");
        assert_eq!(body["error"], "invalid_client", "{why}");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(complaint), "{why}: {description}");
    }
    // The code survived every refused attempt.
    let (status, body) = redeem(key.assertion(&client_id, &issuer, json!({}))).await;
    assert_eq!(status, 200, "{body}");
    b.server.stop().await;
}

#[tokio::test]
async fn a_stale_document_is_fetched_again_and_its_changes_apply() {
    let b = lax_broker().await;
    let site = ClientSite::start().await;
    let client_id = site.document("/client.json", json!({}));
    let mut answer = Answer::json(&json!({
        "client_id": client_id,
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
    }));
    answer.cache_control = Some("no-store".into());
    site.put("/client.json", answer.clone());
    let pkce = Pkce::new();
    b.code(&client_id, &pkce).await;
    assert_eq!(site.hits("/client.json"), 1);

    // The client drops our redirect URI from its document: refused next time.
    answer.body = json!({
        "client_id": client_id,
        "redirect_uris": ["https://elsewhere.example/cb"],
        "token_endpoint_auth_method": "none",
    })
    .to_string();
    site.put("/client.json", answer);
    let (status, html) = b.authorize_page(&client_id).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("redirect_uri"), "{html}");
    assert_eq!(site.hits("/client.json"), 2);
    b.server.stop().await;
}

#[tokio::test]
async fn documents_on_private_addresses_are_never_fetched() {
    let b = broker(false, true).await;
    let site = ClientSite::start().await;
    let port = url::Url::parse(&site.base).unwrap().port().unwrap();
    site.document("/client.json", json!({}));
    for client_id in [
        format!("https://127.0.0.1:{port}/client.json"),
        format!("https://localhost:{port}/client.json"),
        format!("https://[::1]:{port}/client.json"),
        "https://169.254.169.254/latest/meta-data.json".to_owned(),
        "https://10.0.0.1/client.json".to_owned(),
    ] {
        let (status, html) = b.authorize_page(&client_id).await;
        assert_eq!(status, 400, "{client_id}: {html}");
        assert!(html.contains("private"), "{client_id}: {html}");
    }
    // Plain http is not even considered without the development switch.
    let (status, html) = b.authorize_page(&site.url("/client.json")).await;
    assert_eq!(status, 400);
    assert!(html.contains("https"), "{html}");
    assert_eq!(site.hits("/client.json"), 0);
    b.server.stop().await;
}

#[tokio::test]
async fn unusable_documents_are_refused_with_the_reason() {
    let b = lax_broker().await;
    let site = ClientSite::start().await;
    let mut redirect = Answer::json(&json!({}));
    redirect.status = 302;
    redirect.location = Some(site.url("/real.json"));
    site.put("/moved.json", redirect);
    let mut huge = Answer::json(&json!({}));
    huge.body = format!("{{\"pad\": \"{}\"}}", "x".repeat(100 * 1024));
    site.put("/huge.json", huge);
    let mut slow = Answer::json(&json!({}));
    slow.delay = Duration::from_secs(7);
    site.put("/slow.json", slow);
    site.put(
        "/broken.json",
        Answer::json(&json!(["not", "an", "object"])),
    );
    let with_secret = site.document("/secret.json", json!({"client_secret": "s3cret"}));
    let basic = site.document(
        "/basic.json",
        json!({"token_endpoint_auth_method": "client_secret_basic"}),
    );
    let keyless = site.document(
        "/keyless.json",
        json!({"token_endpoint_auth_method": "private_key_jwt"}),
    );
    let javascript = site.document(
        "/js.json",
        json!({"redirect_uris": ["javascript:alert(1)"]}),
    );
    let mismatched = site.url("/mismatch.json");
    site.put(
        "/mismatch.json",
        Answer::json(&json!({"client_id": site.url("/other.json"), "redirect_uris": [REDIRECT]})),
    );
    for (client_id, reason) in [
        (site.url("/moved.json"), "redirect"),
        (site.url("/huge.json"), "64 KiB"),
        (site.url("/slow.json"), "5 s"),
        (site.url("/missing.json"), "404"),
        (site.url("/broken.json"), "JSON object"),
        (with_secret, "secret"),
        (basic, "none or private_key_jwt"),
        (keyless, "jwks"),
        (javascript, "https"),
        (mismatched, "not the URL"),
        (site.url("/a/../secret.json"), "canonical"),
        (site.base.clone(), "path"),
    ] {
        let (status, html) = b.authorize_page(&client_id).await;
        assert_eq!(status, 400, "{client_id}: {html}");
        assert!(
            html.contains(reason),
            "{client_id} should say {reason:?}: {html}"
        );
    }
    b.server.stop().await;
}

#[tokio::test]
async fn documents_can_be_switched_off() {
    let b = broker(true, false).await;
    let site = ClientSite::start().await;
    let client_id = site.document("/client.json", json!({}));
    let (status, html) = b.authorize_page(&client_id).await;
    assert_eq!(status, 400);
    assert!(
        html.contains("does not accept client metadata documents"),
        "{html}"
    );
    let meta = b
        .flow
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(meta["client_id_metadata_document_supported"], false);
    assert_eq!(site.hits("/client.json"), 0);
    b.server.stop().await;
}
