//! Hostile inputs, one attack per row: each row attacks a broker started by
//! the test kit over real HTTP, checks the refusal has the right shape for
//! where it happens, and checks that nothing stored changed (or exactly the
//! change the refusal is meant to make, such as revoking a family).
//!
//! Refusal shapes:
//! * /token, /register, /revoke: OAuth JSON (`error`, `error_description`),
//!   `Cache-Control: no-store`, `WWW-Authenticate` with every 401;
//! * /authorize once the redirect URI is trusted: a 303 back to it with
//!   `error`, `state` and `iss`, never a `code`;
//! * /authorize before that, /callback, /consent: the broker's own HTML page
//!   (unframeable) and no `Location` header;
//! * /mcp, /userinfo: 401 (or 403) with a `WWW-Authenticate: Bearer` challenge.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use mcp_auth_broker::allowlist::Email;
use mcp_auth_broker::store::now;
use mcp_auth_broker::tokens::{self, AccessClaims, KeySet};
use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, Row};
use support::cimd::{Answer, ClientKey, ClientSite, ASSERTION_TYPE};
use support::flow::{hidden, location, param, Flow, McpReply, Pkce, REDIRECT};
use support::{TestDb, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

const ALICE: &str = "alice@example.com";
const STATE: &str = "st4te";

// ---------------------------------------------------------------------------
// The table machinery: one `#[tokio::test]` per row, and the row count.
// ---------------------------------------------------------------------------

macro_rules! attacks {
    ($(
        $(#[$meta:meta])*
        $name:ident => |$ctx:ident| async move $body:block
    )*) => {
        /// Every row of the table, by name.
        const ATTACKS: &[&str] = &[$(stringify!($name)),*];

        $(
            #[tokio::test]
            $(#[$meta])*
            async fn $name() {
                let started = Instant::now();
                let owned = Ctx::start().await;
                {
                    let $ctx = &owned;
                    $body
                }
                owned.stop().await;
                eprintln!("{}: refused as expected in {:?}", stringify!($name), started.elapsed());
            }
        )*
    };
}

// ---------------------------------------------------------------------------
// The context of one row: a broker, its database, and a driver.
// ---------------------------------------------------------------------------

struct Ctx {
    db: TestDb,
    server: TestServer,
    flow: Flow,
}

/// Row counts of every table that holds OAuth or allowlist state, plus the
/// counts of the state changes a refusal could sneak in (a code marked
/// used, a token revoked, a login bound, a person suspended…).
type Snapshot = BTreeMap<String, i64>;

const TABLES: [&str; 8] = [
    "oauth_clients",
    "auth_requests",
    "auth_codes",
    "refresh_tokens",
    "consents",
    "revoked_jtis",
    "allowed_users",
    "signing_keys",
];

const STATES: [(&str, &str); 7] = [
    (
        "auth_requests.bound",
        "auth_requests WHERE csrf_hash IS NOT NULL",
    ),
    ("auth_codes.used", "auth_codes WHERE used_at IS NOT NULL"),
    (
        "refresh_tokens.used",
        "refresh_tokens WHERE used_at IS NOT NULL",
    ),
    (
        "refresh_tokens.revoked",
        "refresh_tokens WHERE revoked_at IS NOT NULL",
    ),
    (
        "allowed_users.active",
        "allowed_users WHERE status = 'active'",
    ),
    (
        "oauth_clients.used",
        "oauth_clients WHERE last_used_at IS NOT NULL",
    ),
    (
        "oauth_clients.disabled",
        "oauth_clients WHERE disabled <> 0",
    ),
];

/// An answer, read whole.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    async fn of(r: Response) -> Reply {
        Reply {
            status: r.status(),
            headers: r.headers().clone(),
            text: r.text().await.unwrap_or_default(),
        }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }
}

impl Ctx {
    async fn start() -> Ctx {
        let (db, server, flow) = support::dev_broker(&[ALICE]).await;
        Ctx { db, server, flow }
    }

    async fn stop(self) {
        self.server.stop().await;
    }

    fn base(&self) -> &str {
        &self.server.base
    }

    /// A second broker on the same database that fetches documents from
    /// loopback http (`registration.cimd_allow_insecure_hosts`), for rows
    /// that need a client web site; its driver.
    async fn lax_broker(&self) -> (TestServer, Flow) {
        let mut settings = self.db.settings();
        settings.registration.cimd_allow_insecure_hosts = true;
        let server = TestServer::start_dev(settings).await;
        let flow = Flow::new(&server.base);
        (server, flow)
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    // -- the database -------------------------------------------------------

    async fn conn(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.db.url)
            .await
            .expect("test database reachable")
    }

    async fn sql(&self, statement: &str) {
        let mut conn = self.conn().await;
        conn.execute(statement).await.expect(statement);
        conn.close().await.ok();
    }

    async fn snapshot(&self) -> Snapshot {
        let mut conn = self.conn().await;
        let mut snapshot = Snapshot::new();
        let queries = TABLES
            .iter()
            .map(|t| (t.to_string(), t.to_string()))
            .chain(STATES.iter().map(|(k, q)| (k.to_string(), q.to_string())));
        for (key, from) in queries {
            let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {from}"))
                .fetch_one(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("count {from}: {e}"));
            snapshot.insert(key, row.try_get::<i64, _>("n").unwrap());
        }
        conn.close().await.ok();
        snapshot
    }

    /// Nothing stored changed since `before`.
    async fn assert_unchanged(&self, before: &Snapshot) {
        self.assert_delta(before, &[]).await;
    }

    /// Exactly these counters moved by exactly these amounts since `before`.
    async fn assert_delta(&self, before: &Snapshot, expected: &[(&str, i64)]) {
        let after = self.snapshot().await;
        let mut want = before.clone();
        for (key, delta) in expected {
            *want.get_mut(*key).expect("a known counter") += delta;
        }
        assert_eq!(
            after, want,
            "stored state after the attack (before: {before:?})"
        );
    }

    // -- clients, logins, tokens -------------------------------------------

    async fn public_client(&self) -> String {
        self.flow.public_client().await
    }

    async fn register(&self, metadata: Value) -> Reply {
        Reply::of(
            self.flow
                .http
                .post(self.flow.url("/register"))
                .json(&metadata)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A confidential client (`client_secret_post` or `_basic`) with the
    /// usual redirect: its id and secret.
    async fn confidential_client(&self, method: &str) -> (String, String) {
        let r = self
            .register(json!({
                "client_name": "Confidential",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": method,
                "grant_types": ["authorization_code", "refresh_token"],
            }))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let body = r.json();
        (
            body["client_id"].as_str().unwrap().to_owned(),
            body["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// Alice logs in and allows `client`: the authorization code.
    async fn code(&self, client: &str, pkce: &Pkce) -> String {
        param(&self.flow.authorize(client, pkce, ALICE).await, "code").unwrap()
    }

    async fn redeem(&self, client: &str, code: &str, pkce: &Pkce) -> Reply {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce.verifier),
            ("client_id", client),
        ])
        .await
    }

    /// A public client and the tokens Alice's login bought it.
    async fn login(&self) -> (String, String, String) {
        let client = self.public_client().await;
        let pkce = Pkce::new();
        let code = self.code(&client, &pkce).await;
        let r = self.redeem(&client, &code, &pkce).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let body = r.json();
        (
            client,
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        )
    }

    async fn refresh(&self, client: &str, token: &str, extra: &[(&str, &str)]) -> Reply {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client),
        ];
        form.extend_from_slice(extra);
        self.token(&form).await
    }

    // -- raw requests --------------------------------------------------------

    async fn token(&self, form: &[(&str, &str)]) -> Reply {
        Reply::of(
            self.flow
                .http
                .post(self.flow.url("/token"))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
        basic: Option<(&str, &str)>,
    ) -> Reply {
        let mut request = self
            .flow
            .http
            .post(self.flow.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        Reply::of(request.send().await.unwrap()).await
    }

    async fn revoke(&self, form: &[(&str, &str)]) -> Reply {
        Reply::of(
            self.flow
                .http
                .post(self.flow.url("/revoke"))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    // -- pages ---------------------------------------------------------------

    /// Alice's login up to the consent page: its HTML.
    async fn consent_page(&self, client: &str, pkce: &Pkce) -> String {
        let r = self
            .flow
            .login(&self.flow.authorize_url(client, pkce, &[]), ALICE, true)
            .await;
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("Allow"), "consent page expected: {html}");
        html
    }

    async fn post_consent(
        &self,
        via: &reqwest::Client,
        request: &str,
        csrf: &str,
        decision: &str,
    ) -> Response {
        via.post(self.flow.url("/consent"))
            .form(&[("request", request), ("csrf", csrf), ("decision", decision)])
            .send()
            .await
            .unwrap()
    }

    /// /authorize in the browser, stopping at the provider: the pending
    /// request's id (the upstream `state`) and the provider's URL.
    async fn start_login(&self, client: &str, pkce: &Pkce) -> (String, String) {
        self.flow.sign_out().await;
        let r = self
            .flow
            .get(&self.flow.authorize_url(client, pkce, &[]))
            .await;
        assert_eq!(r.status(), 303);
        let to_idp = location(&r);
        let id = param(&Url::parse(&to_idp).unwrap(), "state").unwrap();
        (id, to_idp)
    }

    // -- bearer tokens -------------------------------------------------------

    async fn mcp_list(&self, token: &str) -> McpReply {
        self.flow
            .mcp(
                Some(token),
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            )
            .await
    }

    async fn userinfo(&self, token: &str) -> Reply {
        Reply::of(
            self.flow
                .http
                .get(self.flow.url("/userinfo"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// `token` is refused at both resource endpoints with `invalid_token`.
    async fn assert_bearer_refused(&self, token: &str) {
        let reply = self.mcp_list(token).await;
        assert_eq!(reply.status, 401, "/mcp accepted it: {:?}", reply.body);
        assert_invalid_token(reply.challenge.as_deref(), self.base());
        let info = self.userinfo(token).await;
        assert_eq!(info.status, 401, "/userinfo accepted it: {}", info.text);
        assert_invalid_token(info.header("www-authenticate").as_deref(), self.base());
        assert!(info.json().get("email").is_none());
    }

    /// A suspension or removal reaches the bearer endpoints within
    /// `revocation.max_staleness`: waits for /userinfo to stop accepting
    /// `token`, then checks both endpoints' refusals.
    async fn assert_bearer_refused_soon(&self, token: &str) {
        let limit = self.db.settings().revocation.max_staleness.0 * 2;
        support::eventually::within(limit, || async {
            (self.userinfo(token).await.status != 200).then_some(())
        })
        .await
        .expect("refused within max_staleness");
        self.assert_bearer_refused(token).await;
    }

    /// The control: `token` works, so a refusal is the tampering's doing.
    async fn assert_bearer_works(&self, token: &str) {
        let info = self.userinfo(token).await;
        assert_eq!(info.status, 200, "the control token: {}", info.text);
    }

    /// Our signing keys and claims that would be accepted, for forgery.
    async fn forge_kit(&self) -> (KeySet, AccessClaims) {
        let store = self.db.store().await;
        let keys = KeySet::load_or_create(&store).await.unwrap();
        let alice = store
            .user(&Email::parse(ALICE).unwrap())
            .await
            .unwrap()
            .unwrap();
        let at = now();
        let claims = AccessClaims {
            iss: self.base().to_owned(),
            sub: alice.user_id,
            aud: format!("{}/mcp", self.base()),
            exp: at + 600,
            iat: at,
            nbf: at,
            jti: uuid::Uuid::new_v4().to_string(),
            client_id: "forged".into(),
            scope: "mcp:tools".into(),
            email: ALICE.into(),
        };
        store.close().await;
        (keys, claims)
    }
}

// ---------------------------------------------------------------------------
// Assertions on the shape of a refusal.
// ---------------------------------------------------------------------------

/// RFC 6749 §5.2 JSON with this status and `error`, never cached, no token.
fn assert_oauth_error(r: &Reply, status: u16, error: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    let body = r.json();
    assert_eq!(body["error"], error, "{}", r.text);
    assert!(body["error_description"].is_string(), "{}", r.text);
    for leaked in [
        "access_token",
        "refresh_token",
        "client_id",
        "client_secret",
    ] {
        assert!(
            body.get(leaked).is_none(),
            "{leaked} in a refusal: {}",
            r.text
        );
    }
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert!(r
        .header("content-type")
        .unwrap_or_default()
        .starts_with("application/json"));
    if status == 401 {
        assert!(
            r.header("www-authenticate").is_some(),
            "a 401 without WWW-Authenticate"
        );
    }
}

/// The broker's own page, never a redirect: the redirect URI is not trusted.
async fn assert_page(r: Response, status: u16) -> String {
    let headers = r.headers().clone();
    let got = r.status();
    let html = r.text().await.unwrap();
    assert_eq!(got.as_u16(), status, "{html}");
    assert!(
        headers.get("location").is_none(),
        "redirected to {:?}",
        headers.get("location")
    );
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(
        headers.get("set-cookie").is_none(),
        "a refusal set a cookie"
    );
    html
}

/// The error redirect of RFC 6749 §4.1.2.1 with `iss` (RFC 9207), to the
/// trusted redirect URI, without a code.
fn assert_error_redirect(r: &Response, redirect: &str, error: &str, state: &str, iss: &str) -> Url {
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers().get_all("location").iter().count(), 1);
    let target = Url::parse(&location(r)).unwrap();
    assert!(target.as_str().starts_with(redirect), "{target}");
    assert_eq!(param(&target, "error").as_deref(), Some(error), "{target}");
    assert!(param(&target, "error_description").is_some());
    assert_eq!(param(&target, "state").as_deref(), Some(state));
    assert_eq!(param(&target, "iss").as_deref(), Some(iss));
    assert!(param(&target, "code").is_none(), "{target}");
    target
}

/// An RFC 6750 challenge naming `invalid_token` and pointing at discovery.
fn assert_invalid_token(challenge: Option<&str>, base: &str) {
    let challenge = challenge.expect("WWW-Authenticate");
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\""
        )),
        "{challenge}"
    );
}

// ---------------------------------------------------------------------------
// Building hostile requests.
// ---------------------------------------------------------------------------

/// The parameters of an /authorize request, to tamper with one at a time.
#[derive(Clone)]
struct Authz(Vec<(String, String)>);

impl Authz {
    fn new(client: &str, pkce: &Pkce) -> Authz {
        Authz(
            [
                ("response_type", "code"),
                ("client_id", client),
                ("redirect_uri", REDIRECT),
                ("code_challenge", pkce.challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("state", STATE),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        )
    }

    fn set(mut self, key: &str, value: &str) -> Authz {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(pair) => pair.1 = value.to_owned(),
            None => self.0.push((key.to_owned(), value.to_owned())),
        }
        self
    }

    fn without(mut self, key: &str) -> Authz {
        self.0.retain(|(k, _)| k != key);
        self
    }

    /// Appends `key` even if present: a duplicate parameter.
    fn also(mut self, key: &str, value: &str) -> Authz {
        self.0.push((key.to_owned(), value.to_owned()));
        self
    }

    fn url(&self, ctx: &Ctx) -> String {
        let mut url = Url::parse(&ctx.flow.url("/authorize")).unwrap();
        for (k, v) in &self.0 {
            url.query_pairs_mut().append_pair(k, v);
        }
        url.to_string()
    }
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A JWT with `header` and `claims` and the given raw signature.
fn jwt(header: &Value, claims: &impl serde::Serialize, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header),
        b64(&serde_json::to_value(claims).unwrap()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

fn hs256_header(kid: &str) -> Header {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.to_owned());
    header
}

/// The public half of our signing key as SPKI DER, what anyone can rebuild
/// from /jwks.json.
async fn public_key_der(ctx: &Ctx, kid: &str) -> Vec<u8> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair as _;
    let store = ctx.db.store().await;
    let stored = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == kid)
        .unwrap();
    store.close().await;
    let body: String = stored
        .private_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&STANDARD.decode(body).unwrap()).unwrap();
    pair.public_key().as_der().unwrap().as_ref().to_vec()
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A registration document padded to `size` bytes.
fn huge_registration(size: usize) -> Vec<u8> {
    let head = br#"{"redirect_uris":["https://a.example/cb"],"client_name":""#;
    let tail = br#""}"#;
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(head);
    body.resize(size - tail.len(), b'A');
    body.extend_from_slice(tail);
    body
}

/// POSTs `body` over a raw socket, chunked (no Content-Length, so the limit
/// can only be enforced while reading), and reads the status code.
async fn post_chunked(addr: SocketAddr, path: &str, content_type: &str, body: Vec<u8>) -> u16 {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let writer = async move {
        wr.write_all(head.as_bytes()).await?;
        for chunk in body.chunks(64 * 1024) {
            wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            wr.write_all(chunk).await?;
            wr.write_all(b"\r\n").await?;
        }
        wr.write_all(b"0\r\n\r\n").await?;
        wr.flush().await
    };
    let reader = async move {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // Until the status line is in: the server may reset the socket
        // once it has answered a body it will not read.
        while !buf.windows(2).any(|w| w == b"\r\n") {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf
    };
    let (_, buf) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(writer, reader)
    })
    .await
    .expect("the broker answers an oversized body promptly");
    let status_line = String::from_utf8_lossy(&buf);
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {status_line:?}"))
}

// ---------------------------------------------------------------------------
// The table.
// ---------------------------------------------------------------------------

attacks! {
    // ----- redirect URIs at /authorize: refused on our page, never followed

    open_redirect_via_unregistered_redirect_uri => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        for evil in [
            "https://evil.example/callback",
            "http://evil.example:7777/callback",
            "http://127.0.0.1:7777/callback/../../evil",
        ] {
            let url = Authz::new(&client, &pkce).set("redirect_uri", evil).url(ctx);
            assert_page(ctx.flow.get(&url).await, 400).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    open_redirect_via_lookalike_loopback_host => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        for lookalike in [
            "http://127.0.0.1.evil.example:7777/callback",
            "http://127.0.0.1.nip.io:7777/callback",
            "http://localhost.evil.example:7777/callback",
            "http://127.0.0.1:7777.evil.example/callback",
        ] {
            let url = Authz::new(&client, &pkce).set("redirect_uri", lookalike).url(ctx);
            assert_page(ctx.flow.get(&url).await, 400).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    open_redirect_via_lookalike_claude_host => |ctx| async move {
        let real = "https://claude.ai/api/mcp/auth_callback";
        let r = ctx.register(json!({"redirect_uris": [real], "token_endpoint_auth_method": "none"})).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let client = r.json()["client_id"].as_str().unwrap().to_owned();
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        for lookalike in [
            "https://claude.ai.evil.example/api/mcp/auth_callback",
            "https://evilclaude.ai/api/mcp/auth_callback",
            "https://claude.ai:8443/api/mcp/auth_callback",
            "https://CLAUDE.AI.evil.example/api/mcp/auth_callback",
            "https://claude.ai/api/mcp/auth_callback/../../evil",
            "https://claude.ai/api/mcp/auth_callback?next=https://evil.example",
        ] {
            let url = Authz::new(&client, &pkce).set("redirect_uri", lookalike).url(ctx);
            assert_page(ctx.flow.get(&url).await, 400).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    open_redirect_via_userinfo_at_authorize => |ctx| async move {
        let r = ctx.register(json!({
            "redirect_uris": ["https://app.example/cb", REDIRECT],
            "token_endpoint_auth_method": "none",
        })).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let client = r.json()["client_id"].as_str().unwrap().to_owned();
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        for smuggled in [
            "https://user@app.example/cb",
            "https://app.example@evil.example/cb",
            "https://app.example:443@evil.example/cb",
            "http://evil.example@127.0.0.1:7777/callback",
            "http://127.0.0.1:7777@evil.example/callback",
        ] {
            let url = Authz::new(&client, &pkce).set("redirect_uri", smuggled).url(ctx);
            assert_page(ctx.flow.get(&url).await, 400).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    redirect_uri_with_fragment_at_authorize => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        for uri in [
            "http://127.0.0.1:7777/callback#",
            "http://127.0.0.1:7777/callback#https://evil.example",
            "http://127.0.0.1:51999/callback#x",
        ] {
            let url = Authz::new(&client, &pkce).set("redirect_uri", uri).url(ctx);
            assert_page(ctx.flow.get(&url).await, 400).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    loopback_host_swapped_for_another_loopback_name => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        for uri in [
            "http://localhost:7777/callback",
            "http://[::1]:7777/callback",
            "https://127.0.0.1:7777/callback",
            "http://127.0.0.2:7777/callback",
        ] {
            let url = Authz::new(&client, &pkce).set("redirect_uri", uri).url(ctx);
            assert_page(ctx.flow.get(&url).await, 400).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    redirect_uri_omitted_when_several_are_registered => |ctx| async move {
        let r = ctx.register(json!({
            "redirect_uris": ["https://app.example/cb", REDIRECT],
            "token_endpoint_auth_method": "none",
        })).await;
        let client = r.json()["client_id"].as_str().unwrap().to_owned();
        let before = ctx.snapshot().await;
        let url = Authz::new(&client, &Pkce::new()).without("redirect_uri").url(ctx);
        assert_page(ctx.flow.get(&url).await, 400).await;
        ctx.assert_unchanged(&before).await;
    }

    unknown_client_at_authorize => |ctx| async move {
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        for client in ["no-such-client", "00000000-0000-0000-0000-000000000000", "' OR '1'='1"] {
            let url = Authz::new(client, &pkce).set("redirect_uri", "https://evil.example/cb").url(ctx);
            assert_page(ctx.flow.get(&url).await, 400).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    missing_client_id_at_authorize => |ctx| async move {
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        let url = Authz::new("x", &pkce).without("client_id").url(ctx);
        assert_page(ctx.flow.get(&url).await, 400).await;
        let url = Authz::new("", &pkce).url(ctx);
        assert_page(ctx.flow.get(&url).await, 400).await;
        ctx.assert_unchanged(&before).await;
    }

    disabled_client_at_authorize_and_token => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        ctx.sql(&format!("UPDATE oauth_clients SET disabled = 1 WHERE client_id = '{client}'")).await;
        let before = ctx.snapshot().await;
        let url = Authz::new(&client, &pkce).url(ctx);
        assert_page(ctx.flow.get(&url).await, 400).await;
        assert_oauth_error(&ctx.redeem(&client, &code, &pkce).await, 401, "invalid_client");
        ctx.assert_unchanged(&before).await;
    }

    duplicate_parameters_at_authorize => |ctx| async move {
        let client = ctx.public_client().await;
        let other = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        for url in [
            Authz::new(&client, &pkce).also("client_id", &other).url(ctx),
            Authz::new(&client, &pkce).also("redirect_uri", "https://evil.example/cb").url(ctx),
            Authz::new(&client, &pkce).also("code_challenge_method", "plain").url(ctx),
        ] {
            assert_page(ctx.flow.get(&url).await, 400).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    // ----- redirect URIs at registration


    userinfo_redirect_uri_at_registration => |ctx| async move {
        let before = ctx.snapshot().await;
        for uri in [
            "https://user@app.example/cb",
            "https://user:pass@app.example/cb",
            "https://app.example@evil.example/cb",
            "http://evil.example@127.0.0.1/cb",
        ] {
            let r = ctx.register(json!({"redirect_uris": [uri]})).await;
            assert_oauth_error(&r, 400, "invalid_redirect_uri");
        }
        ctx.assert_unchanged(&before).await;
    }

    fragment_redirect_uri_at_registration => |ctx| async move {
        let before = ctx.snapshot().await;
        for uri in ["https://app.example/cb#x", "https://app.example/cb#", "http://127.0.0.1/cb#frag"] {
            let r = ctx.register(json!({"redirect_uris": [uri]})).await;
            assert_oauth_error(&r, 400, "invalid_redirect_uri");
        }
        ctx.assert_unchanged(&before).await;
    }

    javascript_redirect_uri_at_registration => |ctx| async move {
        let before = ctx.snapshot().await;
        for uris in [
            json!(["javascript:alert(document.cookie)"]),
            json!(["JaVaScRiPt:alert(1)"]),
            json!(["javascript://%0aalert(1)"]),
            json!(["https://good.example/cb", "javascript:alert(1)"]),
        ] {
            let r = ctx.register(json!({"redirect_uris": uris})).await;
            assert_oauth_error(&r, 400, "invalid_redirect_uri");
        }
        ctx.assert_unchanged(&before).await;
    }

    data_redirect_uri_at_registration => |ctx| async move {
        let before = ctx.snapshot().await;
        for uri in [
            "data:text/html,<script>alert(1)</script>",
            "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        ] {
            let r = ctx.register(json!({"redirect_uris": [uri]})).await;
            assert_oauth_error(&r, 400, "invalid_redirect_uri");
        }
        ctx.assert_unchanged(&before).await;
    }

    file_redirect_uri_at_registration => |ctx| async move {
        let before = ctx.snapshot().await;
        for uri in ["file:///etc/passwd", "file://localhost/etc/passwd", "file://127.0.0.1/cb"] {
            let r = ctx.register(json!({"redirect_uris": [uri]})).await;
            assert_oauth_error(&r, 400, "invalid_redirect_uri");
        }
        ctx.assert_unchanged(&before).await;
    }

    plain_http_non_loopback_redirect_at_registration => |ctx| async move {
        let before = ctx.snapshot().await;
        for uri in [
            "http://evil.example/cb",
            "http://localhost.evil.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "http://localhost./cb",
            "http://0.0.0.0/cb",
            "http://[::ffff:127.0.0.1]/cb",
            "http://10.0.0.1/cb",
            "/relative/cb",
        ] {
            let r = ctx.register(json!({"redirect_uris": [uri]})).await;
            assert_oauth_error(&r, 400, "invalid_redirect_uri");
        }
        ctx.assert_unchanged(&before).await;
    }

    // ----- /authorize parameters once the redirect URI is trusted

    implicit_flow_via_response_type_token => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        for response_type in ["token", "code token", "id_token", "code id_token", ""] {
            let url = Authz::new(&client, &pkce).set("response_type", response_type).url(ctx);
            let r = ctx.flow.get(&url).await;
            assert_error_redirect(&r, REDIRECT, "unsupported_response_type", STATE, ctx.base());
        }
        let url = Authz::new(&client, &pkce).without("response_type").url(ctx);
        let r = ctx.flow.get(&url).await;
        assert_error_redirect(&r, REDIRECT, "unsupported_response_type", STATE, ctx.base());
        ctx.assert_unchanged(&before).await;
    }

    pkce_downgrade_to_plain => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        // plain: the challenge is the verifier itself.
        for method in ["plain", "PLAIN", "s256", "S512"] {
            let url = Authz::new(&client, &pkce)
                .set("code_challenge", &pkce.verifier)
                .set("code_challenge_method", method)
                .url(ctx);
            let r = ctx.flow.get(&url).await;
            assert_error_redirect(&r, REDIRECT, "invalid_request", STATE, ctx.base());
        }
        ctx.assert_unchanged(&before).await;
    }

    pkce_method_omitted_to_default_to_plain => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        let url = Authz::new(&client, &pkce).without("code_challenge_method").url(ctx);
        let r = ctx.flow.get(&url).await;
        assert_error_redirect(&r, REDIRECT, "invalid_request", STATE, ctx.base());
        ctx.assert_unchanged(&before).await;
    }

    pkce_missing_challenge => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        for url in [
            Authz::new(&client, &pkce).without("code_challenge").url(ctx),
            Authz::new(&client, &pkce).set("code_challenge", "").url(ctx),
            Authz::new(&client, &pkce).without("code_challenge").without("code_challenge_method").url(ctx),
        ] {
            let r = ctx.flow.get(&url).await;
            assert_error_redirect(&r, REDIRECT, "invalid_request", STATE, ctx.base());
        }
        ctx.assert_unchanged(&before).await;
    }

    pkce_short_challenge => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        for challenge in ["abc", &pkce.challenge[..42]] {
            let url = Authz::new(&client, &pkce).set("code_challenge", challenge).url(ctx);
            let r = ctx.flow.get(&url).await;
            assert_error_redirect(&r, REDIRECT, "invalid_request", STATE, ctx.base());
        }
        ctx.assert_unchanged(&before).await;
    }

    pkce_overlong_challenge => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        for len in [129, 4096] {
            let url = Authz::new(&client, &pkce).set("code_challenge", &"a".repeat(len)).url(ctx);
            let r = ctx.flow.get(&url).await;
            assert_error_redirect(&r, REDIRECT, "invalid_request", STATE, ctx.base());
        }
        ctx.assert_unchanged(&before).await;
    }

    pkce_challenge_with_illegal_characters => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        let padded = format!("{}=", pkce.challenge);
        let standard_b64 = pkce.challenge.replace('-', "+").replace('_', "/") + "+/";
        let with_space = format!("{} ", &pkce.challenge);
        for challenge in [padded.as_str(), standard_b64.as_str(), with_space.as_str(), "é".repeat(43).as_str()] {
            let url = Authz::new(&client, &pkce).set("code_challenge", challenge).url(ctx);
            let r = ctx.flow.get(&url).await;
            assert_error_redirect(&r, REDIRECT, "invalid_request", STATE, ctx.base());
        }
        ctx.assert_unchanged(&before).await;
    }

    scope_injection_at_authorize => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        for scope in [
            "mcp:tools mcp:root",
            "mcp:root",
            "mcp:tools\nmcp:root",
            "mcp:tools\tmcp:root",
            "mcp:tools+mcp:root",
            "openid offline_access",
            "mcp:*",
        ] {
            let url = Authz::new(&client, &pkce).set("scope", scope).url(ctx);
            let r = ctx.flow.get(&url).await;
            assert_error_redirect(&r, REDIRECT, "invalid_scope", STATE, ctx.base());
        }
        ctx.assert_unchanged(&before).await;
    }

    resource_pointing_elsewhere_at_authorize => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        let base = ctx.base().to_owned();
        for resource in [
            "https://evil.example/mcp".to_string(),
            format!("{base}.evil.example/mcp"),
            format!("{base}/mcp/../admin"),
            format!("{base}/mcp?x=1"),
            format!("{base}/MCP"),
            base.clone(),
            String::new(),
        ] {
            let url = Authz::new(&client, &pkce).set("resource", &resource).url(ctx);
            let r = ctx.flow.get(&url).await;
            assert_error_redirect(&r, REDIRECT, "invalid_target", STATE, ctx.base());
        }
        ctx.assert_unchanged(&before).await;
    }

    crlf_header_injection_in_state => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let evil = "x\r\nSet-Cookie: pwned=1\r\nLocation: https://evil.example/\r\n\r\n<script>alert(1)</script>";
        // Refused (PKCE plain): the state goes back percent-encoded.
        let before = ctx.snapshot().await;
        let url = Authz::new(&client, &pkce).set("state", evil).set("code_challenge_method", "plain").url(ctx);
        let r = ctx.flow.get(&url).await;
        let raw = r.headers()["location"].as_bytes().to_vec();
        assert!(!raw.iter().any(|b| *b == b'\r' || *b == b'\n' || *b == b' '), "{raw:?}");
        assert!(String::from_utf8_lossy(&raw).contains("%0D%0ASet-Cookie"), "{}", String::from_utf8_lossy(&raw));
        assert!(r.headers().get("set-cookie").is_none());
        assert_error_redirect(&r, REDIRECT, "invalid_request", evil, ctx.base());
        ctx.assert_unchanged(&before).await;
        // Even with a valid request, control characters in state are refused
        // before anything is stored, and echoed back encoded.
        let before = ctx.snapshot().await;
        let url = Authz::new(&client, &pkce).set("state", evil).url(ctx);
        let r = ctx.flow.get(&url).await;
        assert!(r.headers().get("set-cookie").is_none());
        let raw = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(raw.contains("%0D%0ASet-Cookie"), "{raw}");
        assert_error_redirect(&r, REDIRECT, "invalid_request", evil, ctx.base());
        ctx.assert_unchanged(&before).await;
    }

    // ----- PKCE at /token

    missing_verifier_at_token => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        let r = ctx.token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
        ]).await;
        assert_oauth_error(&r, 400, "invalid_request");
        ctx.assert_unchanged(&before).await;
    }

    short_verifier_guess_at_token => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        for guess in ["", "a", &pkce.verifier[..42]] {
            let r = ctx.token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", guess),
                ("client_id", &client),
            ]).await;
            assert_eq!(r.status, 400, "{}", r.text);
            assert!(["invalid_grant", "invalid_request"].contains(&r.json()["error"].as_str().unwrap_or("")), "{}", r.text);
        }
        ctx.assert_unchanged(&before).await;
    }

    overlong_verifier_guess_at_token => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        let overlong = format!("{}{}", pkce.verifier, "A".repeat(129));
        for guess in [overlong.as_str(), &"x".repeat(100_000)] {
            let r = ctx.token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", guess),
                ("client_id", &client),
            ]).await;
            assert_eq!(r.status, 400, "{}", r.text);
            assert!(["invalid_grant", "invalid_request"].contains(&r.json()["error"].as_str().unwrap_or("")), "{}", r.text);
        }
        ctx.assert_unchanged(&before).await;
    }


    weak_short_verifier_matching_its_challenge => |ctx| async move {
        // A client (or a malicious page driving it) picks a brute-forceable
        // verifier; RFC 7636 §4.1 says 43 to 128 unreserved characters.
        let weak = "abc".to_string();
        let pkce = Pkce {
            challenge: URL_SAFE_NO_PAD.encode(Sha256::digest(weak.as_bytes())),
            verifier: weak,
        };
        let client = ctx.public_client().await;
        let code = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        let r = ctx.redeem(&client, &code, &pkce).await;
        assert_eq!(r.status, 400, "a 3-character verifier was accepted: {}", r.text);
        assert!(["invalid_grant", "invalid_request"].contains(&r.json()["error"].as_str().unwrap_or("")), "{}", r.text);
        ctx.assert_unchanged(&before).await;
    }


    malformed_long_verifier_matching_its_challenge => |ctx| async move {
        let long = format!("{} not/base64url", "v".repeat(200));
        let pkce = Pkce {
            challenge: URL_SAFE_NO_PAD.encode(Sha256::digest(long.as_bytes())),
            verifier: long,
        };
        let client = ctx.public_client().await;
        let code = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        let r = ctx.redeem(&client, &code, &pkce).await;
        assert_eq!(r.status, 400, "a 215-character verifier with a space and a slash was accepted: {}", r.text);
        ctx.assert_unchanged(&before).await;
    }

    wrong_verifier_at_token => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        let r = ctx.redeem(&client, &code, &Pkce::new()).await;
        assert_oauth_error(&r, 400, "invalid_grant");
        ctx.assert_unchanged(&before).await;
        // The failed attempt did not burn the code for its rightful owner.
        assert_eq!(ctx.redeem(&client, &code, &pkce).await.status, 200);
    }

    pkce_plain_downgrade_at_token => |ctx| async move {
        // The verifier sent is the challenge itself, as `plain` would have it.
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        let r = ctx.token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce.challenge),
            ("code_challenge_method", "plain"),
            ("client_id", &client),
        ]).await;
        assert_oauth_error(&r, 400, "invalid_grant");
        ctx.assert_unchanged(&before).await;
    }

    // ----- authorization codes

    code_replay_revokes_what_it_bought => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        let first = ctx.redeem(&client, &code, &pkce).await;
        assert_eq!(first.status, 200, "{}", first.text);
        let access = first.json()["access_token"].as_str().unwrap().to_owned();
        let refresh = first.json()["refresh_token"].as_str().unwrap().to_owned();
        ctx.assert_bearer_works(&access).await;
        let before = ctx.snapshot().await;
        let replay = ctx.redeem(&client, &code, &pkce).await;
        assert_oauth_error(&replay, 400, "invalid_grant");
        // The refusal's own write: the access jti and the refresh family go.
        ctx.assert_delta(&before, &[("revoked_jtis", 1), ("refresh_tokens.revoked", 1)]).await;
        ctx.assert_bearer_refused(&access).await;
        assert_oauth_error(&ctx.refresh(&client, &refresh, &[]).await, 400, "invalid_grant");
    }

    code_for_another_client => |ctx| async move {
        let client = ctx.public_client().await;
        let thief = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        assert_oauth_error(&ctx.redeem(&thief, &code, &pkce).await, 400, "invalid_grant");
        let (conf, secret) = ctx.confidential_client("client_secret_post").await;
        let r = ctx.token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce.verifier),
            ("client_id", &conf),
            ("client_secret", &secret),
        ]).await;
        assert_oauth_error(&r, 400, "invalid_grant");
        ctx.assert_delta(&before, &[("oauth_clients", 1)]).await; // only the thief's registration
        assert_eq!(ctx.redeem(&client, &code, &pkce).await.status, 200, "not burned");
    }

    code_with_another_redirect_uri => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        for redirect in [
            Some("http://127.0.0.1:7777/other"),
            Some("http://127.0.0.1:9999/callback"),
            Some("https://evil.example/callback"),
            Some(""),
            None,
        ] {
            let mut form = vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("code_verifier", pkce.verifier.as_str()),
                ("client_id", client.as_str()),
            ];
            if let Some(redirect) = redirect {
                form.push(("redirect_uri", redirect));
            }
            assert_oauth_error(&ctx.token(&form).await, 400, "invalid_grant");
        }
        ctx.assert_unchanged(&before).await;
    }

    forged_random_code => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let real = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        let hash_of_real = mcp_auth_broker::secrets::hash(&real);
        for forged in [
            mcp_auth_broker::secrets::generate(),
            "forged".to_string(),
            hash_of_real, // the stored form of a real code is not a code
            format!("{real}x"),
            real[..42].to_string(),
            "' OR '1'='1".to_string(),
        ] {
            let r = ctx.redeem(&client, &forged, &pkce).await;
            assert_oauth_error(&r, 400, "invalid_grant");
        }
        ctx.assert_unchanged(&before).await;
    }

    expired_code => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        ctx.sql(&format!("UPDATE auth_codes SET expires_at = {}", now() - 5)).await;
        let before = ctx.snapshot().await;
        assert_oauth_error(&ctx.redeem(&client, &code, &pkce).await, 400, "invalid_grant");
        ctx.assert_unchanged(&before).await;
    }

    resource_pointing_elsewhere_at_token => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        for resource in ["https://evil.example/mcp".to_string(), ctx.base().to_string()] {
            let r = ctx.token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &pkce.verifier),
                ("client_id", &client),
                ("resource", &resource),
            ]).await;
            assert_oauth_error(&r, 400, "invalid_target");
        }
        ctx.assert_unchanged(&before).await;
    }

    // ----- the token endpoint's own input

    unsupported_grant_type => |ctx| async move {
        let client = ctx.public_client().await;
        let before = ctx.snapshot().await;
        for grant in [
            "password",
            "client_credentials",
            "implicit",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "AUTHORIZATION_CODE",
            "",
        ] {
            let r = ctx.token(&[
                ("grant_type", grant),
                ("client_id", &client),
                ("username", ALICE),
                ("password", "hunter2"),
            ]).await;
            assert_oauth_error(&r, 400, "unsupported_grant_type");
        }
        let r = ctx.token(&[("client_id", &client)]).await;
        assert_oauth_error(&r, 400, "invalid_request");
        ctx.assert_unchanged(&before).await;
    }

    json_body_at_token => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        let json_body = json!({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": pkce.verifier,
            "client_id": client,
        })
        .to_string();
        let r = ctx.post("/token", "application/json", json_body.clone(), None).await;
        assert_oauth_error(&r, 400, "invalid_request");
        // The same JSON labelled as a form: one meaningless key, no client.
        let r = ctx.post("/token", "application/x-www-form-urlencoded", json_body, None).await;
        assert_oauth_error(&r, 401, "invalid_client");
        ctx.assert_unchanged(&before).await;
        assert_eq!(ctx.redeem(&client, &code, &pkce).await.status, 200, "not burned");
    }

    duplicate_parameters_at_token => |ctx| async move {
        // serde_urlencoded refuses a repeated field, so the whole form is
        // refused as invalid_request, whichever copy would have won.
        let client = ctx.public_client().await;
        let other = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let base = format!(
            "grant_type=authorization_code&redirect_uri={}&code_verifier={}",
            enc(REDIRECT),
            enc(&pkce.verifier)
        );
        for tail in [
            format!("code={}&code=forged&client_id={client}", enc(&code)),
            format!("code=forged&code={}&client_id={client}", enc(&code)),
            format!("code={0}&code={0}&client_id={client}", enc(&code)),
            format!("code={}&client_id={other}&client_id={client}", enc(&code)),
            format!("code={}&client_id={client}&grant_type=refresh_token", enc(&code)),
        ] {
            let r = ctx.post("/token", "application/x-www-form-urlencoded", format!("{base}&{tail}"), None).await;
            assert_oauth_error(&r, 400, "invalid_request");
            assert!(r.json()["error_description"].as_str().unwrap().contains("duplicate field"), "{}", r.text);
        }
        ctx.assert_unchanged(&before).await;
        assert_eq!(ctx.redeem(&client, &code, &pkce).await.status, 200, "not burned");
    }

    unknown_client_at_token => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        for id in ["nobody", "' OR '1'='1", ""] {
            assert_oauth_error(&ctx.redeem(id, &code, &pkce).await, 401, "invalid_client");
        }
        let r = ctx.token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce.verifier),
        ]).await;
        assert_oauth_error(&r, 401, "invalid_client");
        ctx.assert_unchanged(&before).await;
    }

    confidential_client_with_wrong_secret => |ctx| async move {
        let (client, secret) = ctx.confidential_client("client_secret_post").await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        let hash = mcp_auth_broker::secrets::hash(&secret);
        for wrong in ["wrong", "", &secret[..42], hash.as_str(), &format!("{secret} ")] {
            let r = ctx.token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &pkce.verifier),
                ("client_id", &client),
                ("client_secret", wrong),
            ]).await;
            assert_oauth_error(&r, 401, "invalid_client");
        }
        let form = format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={}",
            url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
            pkce.verifier
        );
        let r = ctx.post("/token", "application/x-www-form-urlencoded", form, Some((&client, "wrong"))).await;
        assert_oauth_error(&r, 401, "invalid_client");
        ctx.assert_unchanged(&before).await;
    }

    confidential_client_without_secret => |ctx| async move {
        let (client, _) = ctx.confidential_client("client_secret_basic").await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        let before = ctx.snapshot().await;
        let r = ctx.redeem(&client, &code, &pkce).await;
        assert_oauth_error(&r, 401, "invalid_client");
        ctx.assert_unchanged(&before).await;
    }

    basic_auth_client_id_differs_from_form => |ctx| async move {
        let (conf, secret) = ctx.confidential_client("client_secret_basic").await;
        let victim = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&victim, &pkce).await;
        let before = ctx.snapshot().await;
        let form = format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={}&client_id={victim}",
            url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
            pkce.verifier
        );
        let r = ctx.post("/token", "application/x-www-form-urlencoded", form, Some((&conf, &secret))).await;
        assert_oauth_error(&r, 400, "invalid_request");
        ctx.assert_unchanged(&before).await;
    }

    // ----- refresh tokens

    refresh_token_reuse_after_grace_revokes_family => |ctx| async move {
        let (client, _, first) = ctx.login().await;
        let r = ctx.refresh(&client, &first, &[]).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let second = r.json()["refresh_token"].as_str().unwrap().to_owned();
        ctx.sql("UPDATE refresh_tokens SET used_at = used_at - 120 WHERE used_at IS NOT NULL").await;
        let before = ctx.snapshot().await;
        assert_oauth_error(&ctx.refresh(&client, &first, &[]).await, 400, "invalid_grant");
        // The refusal's own write: both tokens of the family are revoked.
        ctx.assert_delta(&before, &[("refresh_tokens.revoked", 2)]).await;
        assert_oauth_error(&ctx.refresh(&client, &second, &[]).await, 400, "invalid_grant");
    }

    refresh_with_widened_scope => |ctx| async move {
        let (client, _, refresh) = ctx.login().await;
        let before = ctx.snapshot().await;
        for scope in ["mcp:tools mcp:admin", "mcp:admin", "mcp:tools\nmcp:admin", "openid"] {
            let r = ctx.refresh(&client, &refresh, &[("scope", scope)]).await;
            assert_oauth_error(&r, 400, "invalid_scope");
        }
        ctx.assert_unchanged(&before).await;
    }

    refresh_token_of_another_client => |ctx| async move {
        let (client, _, refresh) = ctx.login().await;
        let thief = ctx.public_client().await;
        let before = ctx.snapshot().await;
        assert_oauth_error(&ctx.refresh(&thief, &refresh, &[]).await, 400, "invalid_grant");
        ctx.assert_unchanged(&before).await;
        assert_eq!(ctx.refresh(&client, &refresh, &[]).await.status, 200, "the owner's token survives");
    }

    refresh_with_resource_pointing_elsewhere => |ctx| async move {
        let (client, _, refresh) = ctx.login().await;
        let before = ctx.snapshot().await;
        let r = ctx.refresh(&client, &refresh, &[("resource", "https://evil.example/mcp")]).await;
        assert_oauth_error(&r, 400, "invalid_target");
        ctx.assert_unchanged(&before).await;
    }

    removed_user_at_refresh => |ctx| async move {
        let (client, _, refresh) = ctx.login().await;
        ctx.sql(&format!("DELETE FROM allowed_users WHERE email = '{ALICE}'")).await;
        let before = ctx.snapshot().await;
        assert_oauth_error(&ctx.refresh(&client, &refresh, &[]).await, 400, "invalid_grant");
        ctx.assert_unchanged(&before).await;
    }

    access_token_presented_as_refresh_token => |ctx| async move {
        let (client, access, _) = ctx.login().await;
        let before = ctx.snapshot().await;
        assert_oauth_error(&ctx.refresh(&client, &access, &[]).await, 400, "invalid_grant");
        assert_oauth_error(&ctx.refresh(&client, "", &[]).await, 400, "invalid_grant");
        ctx.assert_unchanged(&before).await;
    }

    // ----- bearer tokens at /mcp and /userinfo

    access_token_alg_none => |ctx| async move {
        let (keys, claims) = ctx.forge_kit().await;
        ctx.assert_bearer_works(&tokens::mint(&keys, &claims).unwrap()).await;
        let kid = keys.signing().kid.clone();
        let before = ctx.snapshot().await;
        for alg in ["none", "None", "NONE", "nOnE"] {
            let header = json!({"alg": alg, "typ": "at+jwt", "kid": kid});
            ctx.assert_bearer_refused(&jwt(&header, &claims, b"")).await;
            let unsigned = format!("{}.{}", b64(&header), b64(&serde_json::to_value(&claims).unwrap()));
            ctx.assert_bearer_refused(&unsigned).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    hs256_rs256_key_confusion => |ctx| async move {
        let (keys, claims) = ctx.forge_kit().await;
        let kid = keys.signing().kid.clone();
        let der = public_key_der(ctx, &kid).await;
        let jwks = ctx.flow.http.get(ctx.flow.url("/jwks.json")).send().await.unwrap().text().await.unwrap();
        let n = serde_json::to_value(&keys.signing().jwk).unwrap()["n"].as_str().unwrap().to_owned();
        let before = ctx.snapshot().await;
        // HS256 "signed" with public key material in every usual encoding.
        let secrets: Vec<Vec<u8>> = vec![
            pem("PUBLIC KEY", &der).into_bytes(),
            pem("PUBLIC KEY", &der).trim_end().as_bytes().to_vec(),
            der.clone(),
            n.clone().into_bytes(),
            URL_SAFE_NO_PAD.decode(&n).unwrap(),
            jwks.clone().into_bytes(),
        ];
        for secret in &secrets {
            let token = encode(&hs256_header(&kid), &claims, &EncodingKey::from_secret(secret)).unwrap();
            ctx.assert_bearer_refused(&token).await;
        }
        // An RS256 header over an HMAC made with the public key.
        let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": kid});
        let input = format!("{}.{}", b64(&header), b64(&serde_json::to_value(&claims).unwrap()));
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, pem("PUBLIC KEY", &der).as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        ctx.assert_bearer_refused(&format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))).await;
        ctx.assert_unchanged(&before).await;
    }

    forged_kid => |ctx| async move {
        let (keys, claims) = ctx.forge_kit().await;
        let foreign = tokens::ephemeral_rs256().unwrap();
        let before = ctx.snapshot().await;
        for kid in [
            foreign.kid.clone(),
            keys.signing().kid.clone(), // ours, but signed by the attacker's key
            "' OR '1'='1".to_string(),
            "../../../../dev/null".to_string(),
            "https://evil.example/jwks.json".to_string(),
            String::new(),
        ] {
            let mut header = Header::new(Algorithm::RS256);
            header.typ = Some("at+jwt".into());
            header.kid = Some(kid);
            ctx.assert_bearer_refused(&encode(&header, &claims, &foreign.encoding).unwrap()).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    embedded_jwk_and_jku_header_injection => |ctx| async move {
        let (_, claims) = ctx.forge_kit().await;
        let foreign = tokens::ephemeral_rs256().unwrap();
        let before = ctx.snapshot().await;
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(foreign.kid.clone());
        header.jwk = foreign.jwk.clone();
        header.jku = Some("https://evil.example/jwks.json".into());
        header.x5u = Some("https://evil.example/cert.pem".into());
        ctx.assert_bearer_refused(&encode(&header, &claims, &foreign.encoding).unwrap()).await;
        header.kid = None;
        ctx.assert_bearer_refused(&encode(&header, &claims, &foreign.encoding).unwrap()).await;
        ctx.assert_unchanged(&before).await;
    }

    token_without_kid => |ctx| async move {
        let (keys, claims) = ctx.forge_kit().await;
        let before = ctx.snapshot().await;
        // Signed with our real key: only the missing kid is wrong.
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("at+jwt".into());
        ctx.assert_bearer_refused(&encode(&header, &claims, &keys.signing().encoding).unwrap()).await;
        ctx.assert_unchanged(&before).await;
    }

    expired_access_token => |ctx| async move {
        let (keys, mut claims) = ctx.forge_kit().await;
        claims.iat = now() - 7200;
        claims.nbf = claims.iat;
        claims.exp = now() - 3600;
        let expired = tokens::mint(&keys, &claims).unwrap();
        claims.exp = now() - 31; // just past the 30 s leeway
        let just_expired = tokens::mint(&keys, &claims).unwrap();
        let before = ctx.snapshot().await;
        ctx.assert_bearer_refused(&expired).await;
        ctx.assert_bearer_refused(&just_expired).await;
        ctx.assert_unchanged(&before).await;
    }

    not_yet_valid_access_token => |ctx| async move {
        let (keys, mut claims) = ctx.forge_kit().await;
        claims.nbf = now() + 3600;
        claims.iat = claims.nbf;
        claims.exp = claims.nbf + 600;
        let token = tokens::mint(&keys, &claims).unwrap();
        let before = ctx.snapshot().await;
        ctx.assert_bearer_refused(&token).await;
        ctx.assert_unchanged(&before).await;
    }

    wrong_audience => |ctx| async move {
        let (keys, claims) = ctx.forge_kit().await;
        let before = ctx.snapshot().await;
        for aud in [
            "https://other.example/mcp".to_string(),
            ctx.base().to_string(),
            format!("{}/mcp/", ctx.base()),
            format!("{}/MCP", ctx.base()),
            String::new(),
        ] {
            let mut c = claims.clone();
            c.aud = aud;
            ctx.assert_bearer_refused(&tokens::mint(&keys, &c).unwrap()).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    wrong_issuer => |ctx| async move {
        let (keys, claims) = ctx.forge_kit().await;
        let before = ctx.snapshot().await;
        let localhost = ctx.base().replace("127.0.0.1", "localhost");
        for iss in [
            "https://evil.example".to_string(),
            format!("{}/", ctx.base()),
            format!("{}/dev-idp", ctx.base()),
            localhost,
            String::new(),
        ] {
            let mut c = claims.clone();
            c.iss = iss;
            ctx.assert_bearer_refused(&tokens::mint(&keys, &c).unwrap()).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    wrong_token_type_id_token_confusion => |ctx| async move {
        let (keys, claims) = ctx.forge_kit().await;
        let before = ctx.snapshot().await;
        for typ in [None, Some("JWT"), Some("id_token+jwt"), Some("at+jwt; charset=x")] {
            let mut header = Header::new(Algorithm::RS256);
            header.typ = typ.map(str::to_owned);
            header.kid = Some(keys.signing().kid.clone());
            ctx.assert_bearer_refused(&encode(&header, &claims, &keys.signing().encoding).unwrap()).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    tampered_payload_to_escalate => |ctx| async move {
        let (_, access, _) = ctx.login().await;
        ctx.assert_bearer_works(&access).await;
        let parts: Vec<&str> = access.split('.').collect();
        let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["scope"] = json!("mcp:tools mcp:admin");
        claims["email"] = json!("admin@example.com");
        claims["exp"] = json!(now() + 86_400 * 365);
        let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
        let mut flipped = access.clone();
        flipped.replace_range(flipped.len() - 6.., "AAAAAA");
        let before = ctx.snapshot().await;
        ctx.assert_bearer_refused(&tampered).await;
        ctx.assert_bearer_refused(&flipped).await;
        ctx.assert_bearer_refused(&format!("{}.{}.", parts[0], parts[1])).await;
        ctx.assert_unchanged(&before).await;
    }

    opaque_grants_presented_as_bearer => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let code = ctx.code(&client, &pkce).await;
        let (_, _, refresh) = ctx.login().await;
        let (_, secret) = ctx.confidential_client("client_secret_post").await;
        let before = ctx.snapshot().await;
        for token in [refresh.as_str(), code.as_str(), secret.as_str(), "x.y.z", "not-a-jwt"] {
            ctx.assert_bearer_refused(token).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    access_token_smuggled_outside_the_authorization_header => |ctx| async move {
        let (_, access, _) = ctx.login().await;
        let before = ctx.snapshot().await;
        let mcp = ctx.flow.http
            .post(format!("{}?access_token={access}", ctx.flow.url("/mcp")))
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send().await.unwrap();
        assert_eq!(mcp.status(), 401);
        assert!(mcp.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer resource_metadata="));
        let form = ctx.flow.http.post(ctx.flow.url("/userinfo"))
            .form(&[("access_token", access.as_str())]).send().await.unwrap();
        assert_eq!(form.status(), 401);
        assert!(form.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        for header in [format!("Basic {access}"), format!("Token {access}"), format!("Bearer{access}")] {
            let r = ctx.flow.http.get(ctx.flow.url("/userinfo")).header("authorization", header).send().await.unwrap();
            assert_eq!(r.status(), 401);
            assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        }
        ctx.assert_unchanged(&before).await;
    }

    revoked_jti => |ctx| async move {
        let (client, access, _) = ctx.login().await;
        ctx.assert_bearer_works(&access).await;
        let r = ctx.revoke(&[("token", &access), ("client_id", &client)]).await;
        assert_eq!(r.status, 200);
        let before = ctx.snapshot().await;
        ctx.assert_bearer_refused(&access).await;
        ctx.assert_unchanged(&before).await;
    }

    suspended_user_at_mcp => |ctx| async move {
        let (_, access, _) = ctx.login().await;
        ctx.assert_bearer_works(&access).await;
        ctx.sql(&format!("UPDATE allowed_users SET status = 'suspended' WHERE email = '{ALICE}'")).await;
        let before = ctx.snapshot().await;
        ctx.assert_bearer_refused_soon(&access).await;
        ctx.assert_unchanged(&before).await;
    }

    removed_user_at_mcp => |ctx| async move {
        let (_, access, _) = ctx.login().await;
        ctx.sql(&format!("DELETE FROM allowed_users WHERE email = '{ALICE}'")).await;
        let before = ctx.snapshot().await;
        ctx.assert_bearer_refused_soon(&access).await;
        ctx.assert_unchanged(&before).await;
    }

    insufficient_scope_token => |ctx| async move {
        let (keys, mut claims) = ctx.forge_kit().await;
        claims.scope = "openid profile".into();
        let token = tokens::mint(&keys, &claims).unwrap();
        let before = ctx.snapshot().await;
        let reply = ctx.mcp_list(&token).await;
        assert_eq!(reply.status, 403);
        let challenge = reply.challenge.unwrap();
        assert!(challenge.starts_with("Bearer error=\"insufficient_scope\", scope=\"mcp:tools\""), "{challenge}");
        ctx.assert_unchanged(&before).await;
    }

    // ----- dynamic client registration

    oversized_registration_body_10_mib => |ctx| async move {
        let before = ctx.snapshot().await;
        let body = huge_registration(10 * 1024 * 1024);
        let r = ctx.post("/register", "application/json", body, None).await;
        assert_oauth_error(&r, 413, "invalid_request");
        assert!(r.json().get("client_id").is_none());
        ctx.assert_unchanged(&before).await;
    }

    oversized_chunked_registration_body => |ctx| async move {
        let before = ctx.snapshot().await;
        let status = post_chunked(ctx.addr(), "/register", "application/json", huge_registration(10 * 1024 * 1024)).await;
        assert_eq!(status, 413);
        // Just over the limit is refused too; just under is parsed (and refused
        // for its oversized client_name, not stored).
        let status = post_chunked(ctx.addr(), "/register", "application/json", huge_registration(1024 * 1024 + 1)).await;
        assert_eq!(status, 413);
        let r = ctx.post("/register", "application/json", huge_registration(1024 * 1024), None).await;
        assert_oauth_error(&r, 400, "invalid_client_metadata");
        ctx.assert_unchanged(&before).await;
    }

    malformed_json_at_register => |ctx| async move {
        let before = ctx.snapshot().await;
        for body in [
            "{not json",
            "",
            "null",
            "\"https://a.example/cb\"",
            "{\"redirect_uris\": [\"https://a.example/cb\"]",
            "{\"redirect_uris\": [\"https://a.example/cb\"]} trailing",
            "{\"redirect_uris\": [\"https://a.example/cb\"],}",
            "{\"redirect_uris\": [1]}",
            "{\"redirect_uris\": [\"https://a.example/cb\"], \"client_name\": 7}",
            "\u{feff}{\"redirect_uris\": [\"https://a.example/cb\"]}",
        ] {
            let r = ctx.post("/register", "application/json", body.to_string(), None).await;
            assert_oauth_error(&r, 400, "invalid_client_metadata");
        }
        ctx.assert_unchanged(&before).await;
    }

    deeply_nested_json_at_register => |ctx| async move {
        let before = ctx.snapshot().await;
        let depth = 100_000;
        let arrays = format!("{{\"redirect_uris\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
        let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        for body in [arrays, objects] {
            let r = ctx.post("/register", "application/json", body, None).await;
            assert_oauth_error(&r, 400, "invalid_client_metadata");
        }
        ctx.assert_unchanged(&before).await;
    }

    overlong_client_name_at_register => |ctx| async move {
        let before = ctx.snapshot().await;
        let r = ctx.register(json!({"redirect_uris": ["https://a.example/cb"], "client_name": "é".repeat(201)})).await;
        assert_oauth_error(&r, 400, "invalid_client_metadata");
        ctx.assert_unchanged(&before).await;
    }

    // ----- the person's side: callback and consent

    consent_csrf_forgery => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let html = ctx.consent_page(&client, &pkce).await;
        let request = hidden(&html, "request");
        let real = hidden(&html, "csrf");
        let before = ctx.snapshot().await;
        for forged in [mcp_auth_broker::secrets::generate(), String::new(), mcp_auth_broker::secrets::hash(&real)] {
            let r = ctx.post_consent(&ctx.flow.browser, &request, &forged, "allow").await;
            assert_page(r, 403).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    consent_from_another_browser => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let html = ctx.consent_page(&client, &pkce).await;
        let request = hidden(&html, "request");
        let csrf = hidden(&html, "csrf");
        // The attacker's browser has a login of its own, hence a cookie.
        let attacker = Flow::new(ctx.base());
        let other = attacker.get(&attacker.authorize_url(&client, &Pkce::new(), &[])).await;
        assert_eq!(other.status(), 303);
        let before = ctx.snapshot().await;
        assert_page(ctx.post_consent(&ctx.flow.http, &request, &csrf, "allow").await, 403).await;
        assert_page(ctx.post_consent(&attacker.browser, &request, &csrf, "allow").await, 403).await;
        ctx.assert_unchanged(&before).await;
    }

    consent_replayed_after_completion => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let html = ctx.consent_page(&client, &pkce).await;
        let request = hidden(&html, "request");
        let csrf = hidden(&html, "csrf");
        let done = ctx.post_consent(&ctx.flow.browser, &request, &csrf, "allow").await;
        assert_eq!(done.status(), 303);
        let before = ctx.snapshot().await;
        for decision in ["allow", "deny"] {
            assert_page(ctx.post_consent(&ctx.flow.browser, &request, &csrf, decision).await, 400).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    denied_login_forges_an_allow_decision => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let denied = ctx.flow.login(&ctx.flow.authorize_url(&client, &pkce, &[]), "eve@example.com", true).await;
        let html = assert_page(denied, 403).await;
        let request = hidden(&html, "request");
        let csrf = hidden(&html, "csrf");
        let before = ctx.snapshot().await;
        for decision in ["allow", "ALLOW", "yes"] {
            assert_page(ctx.post_consent(&ctx.flow.browser, &request, &csrf, decision).await, 400).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    callback_with_forged_state => |ctx| async move {
        let client = ctx.public_client().await;
        let _pending = ctx.start_login(&client, &Pkce::new()).await;
        let before = ctx.snapshot().await;
        for query in ["state=forged&code=x", "code=x", "state=&code=x", "state=%27%20OR%20%271%27%3D%271&code=x"] {
            let r = ctx.flow.get(&format!("{}?{query}", ctx.flow.url("/callback"))).await;
            assert_page(r, 400).await;
        }
        ctx.assert_unchanged(&before).await;
    }

    login_csrf_callback_replayed_in_another_browser => |ctx| async move {
        // The attacker signs in at the provider and sends the victim the
        // callback URL; the victim's browser did not start that login.
        let client = ctx.public_client().await;
        let (_, to_idp) = ctx.start_login(&client, &Pkce::new()).await;
        let form = ctx.flow.get(&to_idp).await.text().await.unwrap();
        let to_callback = ctx.flow.browser.post(ctx.flow.url("/dev-idp/authorize"))
            .form(&[("ticket", hidden(&form, "ticket")), ("email", ALICE.to_owned()), ("email_verified", "true".to_owned())])
            .send().await.unwrap();
        assert_eq!(to_callback.status(), 303);
        let callback = location(&to_callback);
        let before = ctx.snapshot().await;
        let victim = Flow::new(ctx.base());
        assert_page(victim.get(&callback).await, 403).await;
        assert_page(ctx.flow.http.get(&callback).send().await.unwrap(), 403).await;
        ctx.assert_unchanged(&before).await;
    }

    markup_injection_in_client_name_and_upstream_error => |ctx| async move {
        let script = "<script>alert(1)</script>";
        let r = ctx.register(json!({
            "client_name": format!("Evil\"><img src=x onerror=alert(1)>{script}"),
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
        })).await;
        let client = r.json()["client_id"].as_str().unwrap().to_owned();
        let html = ctx.consent_page(&client, &Pkce::new()).await;
        assert!(!html.contains(script) && !html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"), "{html}");
        // The provider's error_description is reflected on our page, escaped.
        let (id, _) = ctx.start_login(&client, &Pkce::new()).await;
        let before = ctx.snapshot().await;
        let mut url = Url::parse(&ctx.flow.url("/callback")).unwrap();
        url.query_pairs_mut()
            .append_pair("state", &id)
            .append_pair("error", "access_denied")
            .append_pair("error_description", script);
        let html = assert_page(ctx.flow.get(url.as_str()).await, 400).await;
        assert!(!html.contains(script), "{html}");
        ctx.assert_unchanged(&before).await;
    }

    // ----- revocation

    revoke_without_client_authentication => |ctx| async move {
        let (_, access, refresh) = ctx.login().await;
        let (conf, _) = ctx.confidential_client("client_secret_basic").await;
        let before = ctx.snapshot().await;
        assert_oauth_error(&ctx.revoke(&[("token", &refresh)]).await, 401, "invalid_client");
        assert_oauth_error(&ctx.revoke(&[("token", &access), ("client_id", "nobody")]).await, 401, "invalid_client");
        assert_oauth_error(&ctx.revoke(&[("token", &access), ("client_id", &conf)]).await, 401, "invalid_client");
        assert_oauth_error(&ctx.revoke(&[("token", &access), ("client_id", &conf), ("client_secret", "wrong")]).await, 401, "invalid_client");
        ctx.assert_unchanged(&before).await;
        ctx.assert_bearer_works(&access).await;
    }

    revoke_another_clients_tokens => |ctx| async move {
        // RFC 7009 §2.2: 200 either way, so the endpoint is no oracle; but
        // nothing of the owner's is revoked.
        let (client, access, refresh) = ctx.login().await;
        let attacker = ctx.public_client().await;
        let before = ctx.snapshot().await;
        for token in [refresh.as_str(), access.as_str()] {
            let r = ctx.revoke(&[("token", token), ("client_id", &attacker)]).await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.text, "");
        }
        ctx.assert_unchanged(&before).await;
        ctx.assert_bearer_works(&access).await;
        assert_eq!(ctx.refresh(&client, &refresh, &[]).await.status, 200);
    }

    // ----- bytes the database may not take (PostgreSQL TEXT refuses NUL)


    nul_byte_in_client_id => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        let nul = format!("{client}\u{0}");
        let url = Authz::new(&nul, &pkce).url(ctx);
        assert_page(ctx.flow.get(&url).await, 400).await;
        let r = ctx.token(&[("grant_type", "authorization_code"), ("client_id", &nul), ("code", "x"), ("code_verifier", "x")]).await;
        assert_oauth_error(&r, 401, "invalid_client");
        assert_oauth_error(&ctx.revoke(&[("token", "x"), ("client_id", &nul)]).await, 401, "invalid_client");
        ctx.assert_unchanged(&before).await;
    }


    nul_byte_in_login_state => |ctx| async move {
        let client = ctx.public_client().await;
        let (id, _) = ctx.start_login(&client, &Pkce::new()).await;
        let before = ctx.snapshot().await;
        let mut url = Url::parse(&ctx.flow.url("/callback")).unwrap();
        url.query_pairs_mut().append_pair("state", &format!("{id}\u{0}")).append_pair("code", "x");
        assert_page(ctx.flow.get(url.as_str()).await, 400).await;
        let r = ctx.post_consent(&ctx.flow.browser, &format!("{id}\u{0}"), "x", "allow").await;
        assert_page(r, 400).await;
        ctx.assert_unchanged(&before).await;
    }


    nul_byte_in_client_state_at_authorize => |ctx| async move {
        // `state` is opaque: carrying it on or refusing it (back to the
        // trusted redirect URI) are both fine; a database error is not.
        let client = ctx.public_client().await;
        let url = Authz::new(&client, &Pkce::new()).set("state", "a\u{0}b").url(ctx);
        let before = ctx.snapshot().await;
        let r = ctx.flow.get(&url).await;
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
        let target = location(&r);
        if target.starts_with(REDIRECT) {
            assert_error_redirect(&r, REDIRECT, "invalid_request", "a\u{0}b", ctx.base());
            ctx.assert_unchanged(&before).await;
        } else {
            assert!(target.starts_with(&ctx.flow.url("/dev-idp/authorize")), "{target}");
            ctx.assert_delta(&before, &[("auth_requests", 1)]).await;
        }
    }


    nul_byte_in_registration_metadata => |ctx| async move {
        let before = ctx.snapshot().await;
        let r = ctx.register(json!({"redirect_uris": ["https://a.example/cb"], "client_name": "a\u{0}b"})).await;
        if r.status == 201 {
            assert_eq!(r.json()["client_name"], "a\u{0}b");
            ctx.assert_delta(&before, &[("oauth_clients", 1)]).await;
        } else {
            assert_oauth_error(&r, 400, "invalid_client_metadata");
            ctx.assert_unchanged(&before).await;
        }
    }

    // ----- the Host header is not the issuer

    host_header_poisoning => |ctx| async move {
        let client = ctx.public_client().await;
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        let poisoned = |r: reqwest::RequestBuilder| {
            r.header("host", "evil.example")
                .header("x-forwarded-host", "evil.example")
                .header("x-forwarded-proto", "https")
                .header("forwarded", "host=evil.example;proto=https")
        };
        // An error redirect's iss is the configured issuer.
        let url = Authz::new(&client, &pkce).set("code_challenge_method", "plain").url(ctx);
        let r = poisoned(ctx.flow.http.get(&url)).send().await.unwrap();
        let target = assert_error_redirect(&r, REDIRECT, "invalid_request", STATE, ctx.base());
        assert!(!target.as_str().contains("evil.example"), "{target}");
        // So are discovery and the resource's challenge.
        let metadata: Value = poisoned(ctx.flow.http.get(ctx.flow.url("/.well-known/oauth-authorization-server")))
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(metadata["issuer"], ctx.base());
        assert!(!metadata.to_string().contains("evil.example"), "{metadata}");
        let r = poisoned(ctx.flow.http.get(ctx.flow.url("/userinfo"))).bearer_auth("x.y.z").send().await.unwrap();
        let r = Reply::of(r).await;
        assert_eq!(r.status, 401);
        assert_invalid_token(r.header("www-authenticate").as_deref(), ctx.base());
        ctx.assert_unchanged(&before).await;
    }

    // ----- client ID metadata documents and private_key_jwt

    cimd_document_on_private_ip => |ctx| async move {
        let site = ClientSite::start().await;
        let port = Url::parse(&site.base).unwrap().port().unwrap();
        site.document("/client.json", json!({}));
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        for client_id in [
            format!("https://127.0.0.1:{port}/client.json"),
            format!("https://localhost:{port}/client.json"),
            "https://169.254.169.254/latest/meta-data/client.json".to_owned(),
            "https://192.168.0.1/client.json".to_owned(),
            // ::ffff:10.0.0.1, written canonically
            "https://[::ffff:a00:1]/client.json".to_owned(),
        ] {
            let url = Authz::new(&client_id, &pkce).url(ctx);
            let html = assert_page(ctx.flow.get(&url).await, 400).await;
            assert!(html.contains("private"), "{client_id}: {html}");
        }
        assert_eq!(site.hits("/client.json"), 0, "never connected");
        ctx.assert_unchanged(&before).await;
    }

    cimd_document_redirects_to_an_internal_address => |ctx| async move {
        let (lax, flow) = ctx.lax_broker().await;
        let site = ClientSite::start().await;
        let mut moved = Answer::json(&json!({}));
        moved.status = 302;
        moved.location = Some("http://169.254.169.254/latest/meta-data/".into());
        site.put("/client.json", moved);
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        let url = lax_authorize_url(&flow, &site.url("/client.json"), &pkce, REDIRECT);
        let html = assert_page(flow.get(&url).await, 400).await;
        assert!(html.contains("redirects are not followed"), "{html}");
        ctx.assert_unchanged(&before).await;
        lax.stop().await;
    }

    cimd_client_id_mismatch => |ctx| async move {
        let (lax, flow) = ctx.lax_broker().await;
        let site = ClientSite::start().await;
        // A document that claims to be another client (say, a trusted one).
        site.put("/client.json", Answer::json(&json!({
            "client_id": "https://chatgpt.com/oauth/client.json",
            "client_name": "ChatGPT",
            "redirect_uris": [REDIRECT],
        })));
        let pkce = Pkce::new();
        let before = ctx.snapshot().await;
        for client_id in [site.url("/client.json"), "https://chatgpt.com/oauth/client.json".to_owned()] {
            let url = lax_authorize_url(&flow, &client_id, &pkce, REDIRECT);
            assert_page(flow.get(&url).await, 400).await;
        }
        ctx.assert_unchanged(&before).await;
        lax.stop().await;
    }

    cimd_redirect_uri_not_listed => |ctx| async move {
        let (lax, flow) = ctx.lax_broker().await;
        let site = ClientSite::start().await;
        let client_id = site.document("/client.json", json!({"redirect_uris": ["https://app.example/cb"]}));
        let pkce = Pkce::new();
        // A first, honest request caches the client.
        let honest = lax_authorize_url(&flow, &client_id, &pkce, "https://app.example/cb");
        assert_eq!(flow.get(&honest).await.status(), 303);
        let before = ctx.snapshot().await;
        for evil in [REDIRECT, "https://evil.example/cb", "https://app.example/cb/../evil"] {
            let url = lax_authorize_url(&flow, &client_id, &pkce, evil);
            assert_page(flow.get(&url).await, 400).await;
        }
        ctx.assert_unchanged(&before).await;
        lax.stop().await;
    }

    private_key_jwt_assertion_replay => |ctx| async move {
        let (lax, flow) = ctx.lax_broker().await;
        let (client_id, key, site) = key_client().await;
        let pkce = Pkce::new();
        let code = param(&flow.authorize(&client_id, &pkce, ALICE).await, "code").unwrap();
        let assertion = key.assertion(&client_id, &lax.base, json!({}));
        let first = assertion_token(&flow, &[
            ("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT),
            ("code_verifier", &pkce.verifier), ("client_id", &client_id),
        ], &assertion).await;
        assert_eq!(first.status, 200, "{}", first.text);
        let refresh = first.json()["refresh_token"].as_str().unwrap().to_owned();
        let before = ctx.snapshot().await;
        let replayed = assertion_token(&flow, &[
            ("grant_type", "refresh_token"), ("refresh_token", &refresh), ("client_id", &client_id),
        ], &assertion).await;
        assert_oauth_error(&replayed, 401, "invalid_client");
        assert!(replayed.text.contains("already used"), "{}", replayed.text);
        ctx.assert_unchanged(&before).await;
        drop(site);
        lax.stop().await;
    }

    private_key_jwt_wrong_audience => |ctx| async move {
        let (lax, flow) = ctx.lax_broker().await;
        let (client_id, key, _site) = key_client().await;
        let pkce = Pkce::new();
        let code = param(&flow.authorize(&client_id, &pkce, ALICE).await, "code").unwrap();
        let before = ctx.snapshot().await;
        for audience in ["https://evil.example", "https://accounts.google.com", &format!("{}/revoke", lax.base)] {
            let r = assertion_token(&flow, &[
                ("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT),
                ("code_verifier", &pkce.verifier), ("client_id", &client_id),
            ], &key.assertion(&client_id, audience, json!({}))).await;
            assert_oauth_error(&r, 401, "invalid_client");
            assert!(r.text.contains("aud"), "{}", r.text);
        }
        ctx.assert_unchanged(&before).await;
        lax.stop().await;
    }

    private_key_jwt_hmac_signed_with_the_public_key => |ctx| async move {
        let (lax, flow) = ctx.lax_broker().await;
        let (client_id, key, _site) = key_client().await;
        let pkce = Pkce::new();
        let code = param(&flow.authorize(&client_id, &pkce, ALICE).await, "code").unwrap();
        let before = ctx.snapshot().await;
        let now = now();
        let claims = json!({"iss": client_id, "sub": client_id, "aud": lax.base, "jti": "x1", "exp": now + 60});
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        for secret in [key.jwk.to_string(), key.jwk["x"].as_str().unwrap().to_owned()] {
            let forged = encode(&header, &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap();
            let r = assertion_token(&flow, &[
                ("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT),
                ("code_verifier", &pkce.verifier), ("client_id", &client_id),
            ], &forged).await;
            assert_oauth_error(&r, 401, "invalid_client");
        }
        ctx.assert_unchanged(&before).await;
        lax.stop().await;
    }
}

/// /authorize on another broker for a document client.
fn lax_authorize_url(flow: &Flow, client_id: &str, pkce: &Pkce, redirect: &str) -> String {
    let mut url = Url::parse(&flow.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", STATE);
    url.to_string()
}

/// A `private_key_jwt` document client (inline JWKS) and its key and site.
async fn key_client() -> (String, ClientKey, ClientSite) {
    let site = ClientSite::start().await;
    let key = ClientKey::new("k1");
    let client_id = site.document(
        "/client.json",
        json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": key.jwks()}),
    );
    (client_id, key, site)
}

/// /token with a client assertion added to `form`.
async fn assertion_token(flow: &Flow, form: &[(&str, &str)], assertion: &str) -> Reply {
    let mut form = form.to_vec();
    form.push(("client_assertion_type", ASSERTION_TYPE));
    form.push(("client_assertion", assertion));
    Reply::of(
        flow.http
            .post(flow.url("/token"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[test]
fn table_has_at_least_40_attacks() {
    println!("hostile-input table: {} attacks", ATTACKS.len());
    assert!(ATTACKS.len() >= 40, "{} attacks", ATTACKS.len());
    let mut names = ATTACKS.to_vec();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), ATTACKS.len(), "every attack has its own name");
}
