//! Upstream federation: the Google, Entra and Cognito presets against a test
//! provider shaped like each, several upstreams with a chooser, identity
//! linking, the broker session, and the pages a person sees when the
//! provider fails or the login takes too long.

mod support;

use mcp_auth_broker::allowlist::{Email, UserChange};
use mcp_auth_broker::config::{Settings, UpstreamKind, UpstreamSettings};
use mcp_auth_broker::store::Store;
use reqwest::Response;
use serde_json::json;
use sqlx::{Connection, Executor};
use support::flow::{hidden, location, param, Flow, Pkce};
use support::oidc_provider::{TestProvider, CLIENT_ID, CLIENT_SECRET};
use support::{Reserved, TestDb, TestServer};

const ALICE: &str = "alice@example.com";

struct Broker {
    db: TestDb,
    store: Store,
    server: TestServer,
    flow: Flow,
}

fn upstream(id: &str, kind: UpstreamKind, issuer: &str) -> UpstreamSettings {
    UpstreamSettings {
        id: id.into(),
        kind,
        issuer: issuer.into(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(CLIENT_SECRET.into()),
        ..UpstreamSettings::blank()
    }
}

async fn broker(upstreams: Vec<UpstreamSettings>, tweak: impl FnOnce(&mut Settings)) -> Broker {
    let db = TestDb::new().await;
    let store = db.store().await;
    store
        .upsert_user(&Email::parse(ALICE).unwrap(), &UserChange::default())
        .await
        .unwrap();
    let mut settings = db.settings();
    settings.upstreams = upstreams;
    tweak(&mut settings);
    let server = Reserved::new().await.serve(settings).await;
    let flow = Flow::new(&server.base);
    Broker {
        db,
        store,
        server,
        flow,
    }
}

/// One plain OIDC upstream, "corp", on a test provider.
async fn corp_broker() -> (TestProvider, Broker) {
    let idp = TestProvider::start().await;
    let b = broker(
        vec![upstream("corp", UpstreamKind::Oidc, &idp.issuer)],
        |_| {},
    )
    .await;
    (idp, b)
}

impl Broker {
    /// /authorize → the provider (which approves at once) → /callback: the
    /// page or redirect the person lands on.
    async fn land(&self, client: &str, extra: &[(&str, &str)]) -> Response {
        let to_idp = self.authorize(client, &Pkce::new(), extra).await;
        assert_eq!(to_idp.status(), 303, "{}", to_idp.text().await.unwrap());
        let to_callback = self.flow.get(&location(&to_idp)).await;
        assert_eq!(to_callback.status(), 303);
        self.flow.get(&location(&to_callback)).await
    }

    /// The browser's /authorize, answered by the broker.
    async fn authorize(&self, client: &str, pkce: &Pkce, extra: &[(&str, &str)]) -> Response {
        self.flow
            .get(&self.flow.authorize_url(client, pkce, extra))
            .await
    }

    /// Allow on the consent page: the code the client receives.
    async fn allow(&self, consent_html: &str) -> String {
        let done = self.flow.decide(consent_html, "allow").await;
        param(&url::Url::parse(&location(&done)).unwrap(), "code").expect("a code")
    }

    async fn land_page(&self, client: &str) -> (u16, String) {
        self.flow.sign_out().await;
        let page = self.land(client, &[]).await;
        (page.status().as_u16(), page.text().await.unwrap())
    }

    async fn count(&self, table: &str) -> i64 {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.db.url).await.unwrap();
        let row: (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .unwrap();
        row.0
    }

    async fn sql(&self, statement: &str) {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.db.url).await.unwrap();
        conn.execute(statement).await.unwrap();
    }
}

#[tokio::test]
async fn google_hosted_domain_is_sent_and_enforced() {
    let idp = TestProvider::start().await;
    let mut google = upstream("google", UpstreamKind::Google, &idp.issuer);
    google.hosted_domain = Some("example.com".into());
    let b = broker(vec![google], |_| {}).await;
    let client = b.flow.public_client().await;

    for (hd, status, says) in [
        (json!(null), 403, "only example.com accounts"),
        (json!("other.example"), 403, "only example.com accounts"),
        (json!("example.com"), 200, "Allow"),
    ] {
        idp.set_claims(json!({ "hd": hd }));
        let (status_got, html) = b.land_page(&client).await;
        assert_eq!(status_got, status, "hd {hd}: {html}");
        assert!(html.contains(says), "hd {hd}: {html}");
    }
    assert!(idp
        .authorizations()
        .iter()
        .all(|q| q.get("hd").map(String::as_str) == Some("example.com")));
    b.server.stop().await;
}

#[tokio::test]
async fn entra_multi_tenant_admits_allowed_tenants_with_verified_domains_only() {
    let idp = TestProvider::entra("organizations", "{tenantid}").await;
    let mut entra = upstream("entra", UpstreamKind::Entra, &idp.issuer);
    entra.tenant = Some("organizations".into());
    entra.allowed_tenants = vec!["tenant-a".into()];
    let b = broker(vec![entra], |_| {}).await;
    let client = b.flow.public_client().await;

    let entra_claims = |tid: &str, edov: serde_json::Value| {
        // Entra never sends email_verified.
        json!({"tid": tid, "oid": "oid-1", "xms_edov": edov, "email_verified": null})
    };
    for (why, claims, status, says) in [
        (
            "no xms_edov",
            entra_claims("tenant-a", json!(null)),
            403,
            "has not verified",
        ),
        (
            "xms_edov false",
            entra_claims("tenant-a", json!(false)),
            403,
            "has not verified",
        ),
        (
            "another tenant",
            entra_claims("tenant-b", json!(true)),
            403,
            "tenant-b may not sign in",
        ),
        (
            "issuer of another tenant",
            json!({"tid": "tenant-a", "xms_edov": true, "iss": format!("{}/tenant-b/v2.0", idp.base)}),
            403,
            "issuer",
        ),
        (
            "verified",
            entra_claims("tenant-a", json!(true)),
            200,
            "Allow",
        ),
    ] {
        idp.set_claims(claims);
        let (status_got, html) = b.land_page(&client).await;
        assert_eq!(status_got, status, "{why}: {html}");
        assert!(html.contains(says), "{why}: {html}");
    }
    let alice = b
        .store
        .user(&Email::parse(ALICE).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.provider.as_deref(), Some("entra"));
    assert_eq!(alice.provider_subject.as_deref(), Some("tenant-a:oid-1"));
    b.server.stop().await;
}

#[tokio::test]
async fn entra_single_tenant_may_take_preferred_username() {
    // Configured by domain name; discovery names the tenant by its id.
    let idp = TestProvider::entra("contoso.example", "tenant-a").await;
    let mut entra = upstream("entra", UpstreamKind::Entra, &idp.issuer);
    entra.tenant = Some("contoso.example".into());
    entra.email_claim = Some("preferred_username".into());
    let b = broker(vec![entra], |_| {}).await;
    let client = b.flow.public_client().await;
    idp.set_claims(json!({
        "tid": "tenant-a", "oid": "o", "email": "someone-else@example.com", "email_verified": null,
        "preferred_username": ALICE,
    }));
    let (status, html) = b.land_page(&client).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains(ALICE), "{html}");
    b.server.stop().await;
}

#[tokio::test]
async fn cognito_string_booleans_are_understood() {
    let idp = TestProvider::start().await;
    let cognito = upstream("cognito", UpstreamKind::Cognito, &idp.issuer);
    let b = broker(vec![cognito], |_| {}).await;
    let client = b.flow.public_client().await;
    for (verified, status) in [("false", 403), ("true", 200)] {
        idp.set_claims(json!({ "email_verified": verified }));
        let (got, html) = b.land_page(&client).await;
        assert_eq!(got, status, "email_verified {verified:?}: {html}");
    }
    b.server.stop().await;
}

/// Every link of a page, unescaped.
fn links(html: &str) -> Vec<String> {
    let marker = "href=\"";
    html.match_indices(marker)
        .map(|(i, _)| {
            let rest = &html[i + marker.len()..];
            unescape(&rest[..rest.find('"').unwrap()])
        })
        .collect()
}

#[tokio::test]
async fn several_upstreams_get_a_chooser_and_idp_hint_skips_it() {
    let (first, second) = (TestProvider::start().await, TestProvider::start().await);
    let mut corp = upstream("corp", UpstreamKind::Oidc, &second.issuer);
    corp.display_name = Some("Corp SSO".into());
    let b = broker(
        vec![
            upstream("google", UpstreamKind::Google, &first.issuer),
            corp,
        ],
        |s| {
            s.branding.product_name = "Acme Tools".into();
            s.branding.primary_color = "#aa0000".into();
        },
    )
    .await;
    let client = b.flow.public_client().await;
    let pkce = Pkce::new();

    let chooser = b.authorize(&client, &pkce, &[]).await;
    assert_eq!(chooser.status(), 200);
    let html = chooser.text().await.unwrap();
    for text in [
        "Continue with Google",
        "Continue with Corp SSO",
        "Acme Tools",
        "#aa0000",
    ] {
        assert!(html.contains(text), "{text}: {html}");
    }
    let links = links(&html);
    assert_eq!(links.len(), 2, "{html}");
    let to_second = b.flow.get(&links[1]).await;
    assert_eq!(to_second.status(), 303);
    assert!(location(&to_second).starts_with(&second.base));

    let hinted = b.authorize(&client, &pkce, &[("idp_hint", "google")]).await;
    assert!(location(&hinted).starts_with(&first.base));
    let unknown = b.authorize(&client, &pkce, &[("idp_hint", "nope")]).await;
    assert_eq!(unknown.status(), 400);
    b.server.stop().await;
}

#[tokio::test]
async fn the_same_email_from_another_provider_needs_linking() {
    let (first, second) = (TestProvider::start().await, TestProvider::start().await);
    second.set_claims(json!({"sub": "other-subject"}));
    let upstreams = vec![
        upstream("first", UpstreamKind::Oidc, &first.issuer),
        upstream("second", UpstreamKind::Oidc, &second.issuer),
    ];
    for (link, status, says) in [
        (false, 403, "another account or identity provider"),
        (true, 200, "Allow"),
    ] {
        let b = broker(upstreams.clone(), |s| s.allowlist.link_providers = link).await;
        let client = b.flow.public_client().await;
        let page = b.land(&client, &[("idp_hint", "first")]).await;
        assert_eq!(page.status(), 200);
        b.flow.sign_out().await;
        let page = b.land(&client, &[("idp_hint", "second")]).await;
        assert_eq!(page.status().as_u16(), status, "link_providers = {link}");
        assert!(page.text().await.unwrap().contains(says));
        b.server.stop().await;
    }
}

#[tokio::test]
async fn the_broker_session_skips_the_provider_until_logout_or_suspension() {
    let (idp, b) = corp_broker().await;
    let first = b.flow.public_client().await;
    let pkce = Pkce::new();
    let consent = b.land(&first, &[]).await.text().await.unwrap();
    b.allow(&consent).await;
    assert_eq!(idp.token_requests(), 1);

    // A second client: straight to consent, the provider is not asked.
    let second = b.flow.public_client().await;
    let page = b.authorize(&second, &pkce, &[]).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Allow") && html.contains(ALICE), "{html}");
    assert_eq!(idp.authorizations().len(), 1);
    // And once approved, the first client gets its code without a page.
    let again = b.authorize(&first, &pkce, &[]).await;
    assert_eq!(again.status(), 303);
    assert!(location(&again).contains("code="), "{}", location(&again));

    // A suspended person's session no longer counts.
    b.store
        .set_user_status(
            &Email::parse(ALICE).unwrap(),
            mcp_auth_broker::allowlist::Status::Suspended,
        )
        .await
        .unwrap();
    let upstream = b.authorize(&first, &pkce, &[]).await;
    assert!(location(&upstream).starts_with(&idp.base));
    b.store
        .set_user_status(
            &Email::parse(ALICE).unwrap(),
            mcp_auth_broker::allowlist::Status::Active,
        )
        .await
        .unwrap();

    // After /logout the provider is asked again.
    let skipped = b.authorize(&first, &pkce, &[]).await;
    assert!(location(&skipped).contains("code="));
    b.flow.sign_out().await;
    let asked = b.authorize(&first, &pkce, &[]).await;
    assert!(location(&asked).starts_with(&idp.base));
    b.server.stop().await;
}

#[tokio::test]
async fn a_provider_that_is_down_gets_a_page_with_a_retry_link() {
    let gone = Reserved::new().await;
    let issuer = gone.base.clone();
    drop(gone);
    let b = broker(vec![upstream("corp", UpstreamKind::Oidc, &issuer)], |_| {}).await;
    let client = b.flow.public_client().await;
    let before = b.count("auth_requests").await;
    let page = b.authorize(&client, &Pkce::new(), &[]).await;
    assert_eq!(page.status(), 502);
    let html = page.text().await.unwrap();
    assert!(html.contains("corp cannot be reached"), "{html}");
    assert!(
        html.contains("Try again") && html.contains("idp_hint=corp"),
        "{html}"
    );
    assert!(
        !html.contains("Choose another way"),
        "one provider: nothing else to choose\n{html}"
    );
    assert_eq!(
        b.count("auth_requests").await,
        before,
        "nothing half-stored"
    );
    b.server.stop().await;
}

#[tokio::test]
async fn a_provider_that_is_down_offers_the_others() {
    let gone = Reserved::new().await;
    let issuer = gone.base.clone();
    drop(gone);
    let up = TestProvider::start().await;
    let b = broker(
        vec![
            upstream("corp", UpstreamKind::Oidc, &issuer),
            upstream("google", UpstreamKind::Google, &up.issuer),
        ],
        |_| {},
    )
    .await;
    let client = b.flow.public_client().await;
    let pkce = Pkce::new();
    let page = b.authorize(&client, &pkce, &[("idp_hint", "corp")]).await;
    assert_eq!(page.status(), 502);
    let html = page.text().await.unwrap();
    let links = links(&html);
    assert!(html.contains("Choose another way to sign in"), "{html}");
    let back = links
        .iter()
        .find(|l| l.contains("/authorize?") && !l.contains("idp_hint"))
        .unwrap_or_else(|| panic!("no link back to the chooser: {html}"));
    let chooser = b.flow.get(back).await;
    assert_eq!(chooser.status(), 200);
    let html = chooser.text().await.unwrap();
    assert!(html.contains("Continue with Google"), "{html}");
    b.server.stop().await;
}

#[tokio::test]
async fn provider_errors_and_late_returns_explain_and_restart() {
    let (_idp, b) = corp_broker().await;
    let client = b.flow.public_client().await;
    let pkce = Pkce::new();

    // The provider says no.
    let to_idp = b.authorize(&client, &pkce, &[]).await;
    let state = param(&url::Url::parse(&location(&to_idp)).unwrap(), "state").unwrap();
    let page = b
        .flow
        .get(&b.flow.url(&format!(
            "/callback?state={state}&error=access_denied&error_description=The+user+cancelled"
        )))
        .await;
    assert_eq!(page.status(), 400);
    let html = page.text().await.unwrap();
    assert!(html.contains("corp said: The user cancelled"), "{html}");
    assert!(html.contains("Try again"), "{html}");

    // The person comes back after the login's time is up.
    let to_idp = b.authorize(&client, &pkce, &[]).await;
    let to_callback = b.flow.get(&location(&to_idp)).await;
    b.sql("UPDATE auth_requests SET expires_at = 0").await;
    let page = b.flow.get(&location(&to_callback)).await;
    assert_eq!(page.status(), 400);
    let html = page.text().await.unwrap();
    assert!(html.contains("took longer than the 10 minutes"), "{html}");
    let marker = "class=\"button primary\" href=\"";
    let start = html.find(marker).expect("a restart link") + marker.len();
    let restart = unescape(&html[start..start + html[start..].find('"').unwrap()]);
    // The restart keeps the client's PKCE challenge, so the flow completes.
    let restarted = b.flow.get(&restart).await;
    assert_eq!(restarted.status(), 303, "{restart}");
    let to_callback = b.flow.get(&location(&restarted)).await;
    let consent = b
        .flow
        .get(&location(&to_callback))
        .await
        .text()
        .await
        .unwrap();
    let code = b.allow(&consent).await;
    let (status, tokens) = b.flow.redeem(&client, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    b.server.stop().await;
}

#[tokio::test]
async fn a_key_rollover_at_the_provider_is_followed() {
    let (idp, b) = corp_broker().await;
    let client = b.flow.public_client().await;
    assert_eq!(b.land_page(&client).await.0, 200);
    idp.roll_keys();
    let (status, html) = b.land_page(&client).await;
    assert_eq!(status, 200, "the new key is fetched: {html}");
    b.server.stop().await;
}

#[tokio::test]
async fn a_domain_rule_creates_the_person_who_can_then_be_suspended() {
    let idp = TestProvider::start().await;
    idp.set_claims(json!({"email": "newcomer@corp.example", "name": "New Comer"}));
    let b = broker(
        vec![upstream("corp", UpstreamKind::Oidc, &idp.issuer)],
        |_| {},
    )
    .await;
    b.store
        .add_domain(&mcp_auth_broker::allowlist::Domain::parse("corp.example").unwrap())
        .await
        .unwrap();
    let client = b.flow.public_client().await;
    let pkce = Pkce::new();
    b.flow.sign_out().await;
    let to_idp = b.authorize(&client, &pkce, &[]).await;
    let to_callback = b.flow.get(&location(&to_idp)).await;
    let consent = b
        .flow
        .get(&location(&to_callback))
        .await
        .text()
        .await
        .unwrap();
    assert!(!hidden(&consent, "csrf").is_empty());
    let code = b.allow(&consent).await;
    let (_, tokens) = b.flow.redeem(&client, &code, &pkce).await;
    let token = tokens["access_token"].as_str().unwrap();
    assert!(b.flow.whoami(token).await.is_ok());

    let email = Email::parse("newcomer@corp.example").unwrap();
    let row = b
        .store
        .user(&email)
        .await
        .unwrap()
        .expect("created at first login");
    assert_eq!(row.name.as_deref(), Some("New Comer"));
    b.store
        .set_user_status(&email, mcp_auth_broker::allowlist::Status::Suspended)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while b.flow.whoami(token).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "still admitted");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    b.server.stop().await;
}

/// An attribute value as the browser reads it.
fn unescape(html: &str) -> String {
    html.replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
}
