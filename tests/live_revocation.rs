//! Live revocation over real HTTP: a suspension, a removal, a revoked token
//! or a withdrawn grant stops an access token on every replica within
//! `revocation.max_staleness` (1 s here), though tokens are validated
//! locally; and a replica that cannot vouch for tokens answers 503, never
//! 500 and never "yes". Two replicas share one database, as behind a load
//! balancer; the changes are made the way the CLI and admins make them.

mod support;

use std::time::Duration;

use mcp_auth_broker::allowlist::{Email, Status};
use mcp_auth_broker::config::{HumanDuration, Settings};
use mcp_auth_broker::store::{now, Store};
use serde_json::Value;
use sqlx::{Connection, Executor};
use support::eventually::within;
use support::flow::{Flow, McpReply};
use support::{TestDb, TestServer};
use tokio::sync::oneshot;

const ALICE: &str = "alice@example.com";
const MAX_STALENESS: Duration = Duration::from_secs(1);
/// The promise is `max_staleness`; the tests allow twice that for the
/// round trips of a busy test machine.
const DEADLINE: Duration = Duration::from_secs(2);

fn with_staleness(db: &TestDb, max_staleness: Duration, poll_interval: Duration) -> Settings {
    let mut settings = db.settings();
    settings.revocation.max_staleness = HumanDuration(max_staleness);
    settings.revocation.poll_interval = HumanDuration(poll_interval);
    settings
}

fn fast(db: &TestDb) -> Settings {
    with_staleness(db, MAX_STALENESS, Duration::from_millis(200))
}

/// A second broker on the same database and the same public URL (a load
/// balancer's view): it validates the tokens the first one issued.
struct Replica {
    flow: Flow,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    async fn start(mut settings: Settings, public_url: &str) -> Replica {
        settings.server.public_url = public_url.to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let flow = Flow::new(&format!("http://{}", listener.local_addr().unwrap()));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            mcp_auth_broker::server::serve(settings, listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("replica runs");
        });
        within(Duration::from_secs(20), || async {
            let r = flow.http.get(flow.url("/healthz")).send().await.ok()?;
            (r.status() == 200).then_some(())
        })
        .await
        .expect("the replica starts");
        Replica { flow, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

struct Cluster {
    db: TestDb,
    store: Store,
    a: TestServer,
    flow: Flow,
    b: Replica,
}

impl Cluster {
    async fn start() -> Cluster {
        let db = TestDb::new().await;
        let store = db.store().await;
        store
            .upsert_user(&email(ALICE), &Default::default())
            .await
            .unwrap();
        let a = TestServer::start_dev(fast(&db)).await;
        let flow = Flow::new(&a.base);
        let b = Replica::start(fast(&db), &a.base).await;
        Cluster {
            db,
            store,
            a,
            flow,
            b,
        }
    }

    fn replicas(&self) -> [&Flow; 2] {
        [&self.flow, &self.b.flow]
    }

    /// A new client and Alice's tokens for it, from a browser of its own
    /// (so no sign-in session carries over between logins).
    async fn login(&self) -> (String, Value) {
        Flow::new(&self.a.base).client_and_tokens(ALICE).await
    }

    async fn alice_id(&self) -> String {
        self.store
            .user(&email(ALICE))
            .await
            .unwrap()
            .unwrap()
            .user_id
    }

    async fn assert_works_everywhere(&self, token: &str) {
        for flow in self.replicas() {
            let me = flow
                .whoami(token)
                .await
                .unwrap_or_else(|r| panic!("{} refused: {} {:?}", flow.base, r.status, r.body));
            assert_eq!(me["email"], ALICE);
        }
    }

    /// Every replica refuses `token` as invalid within the deadline.
    async fn assert_refused_everywhere(&self, token: &str, reason: &str) {
        for flow in self.replicas() {
            refused_soon(flow, token, reason).await;
        }
    }

    async fn stop(self) {
        self.b.stop().await;
        self.a.stop().await;
        drop(self.db);
    }
}

fn email(raw: &str) -> Email {
    Email::parse(raw).unwrap()
}

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

/// Waits for `flow` to refuse `token`, then checks the refusal is a 401
/// `invalid_token` that says why.
async fn refused_soon(flow: &Flow, token: &str, reason: &str) -> McpReply {
    let (refused, took) = within(DEADLINE, || async { flow.whoami(token).await.err() })
        .await
        .unwrap_or_else(|| panic!("{} still accepts the token after {DEADLINE:?}", flow.base));
    assert_eq!(refused.status, 401, "{:?}", refused.body);
    let challenge = refused.challenge.clone().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains(reason), "{challenge}");
    eprintln!("{}: refused after {took:?}", flow.base);
    refused
}

/// Waits for `flow` to accept `token` again.
async fn accepted_soon(flow: &Flow, token: &str) {
    within(DEADLINE, || async { flow.whoami(token).await.ok() })
        .await
        .unwrap_or_else(|| panic!("{} still refuses the token after {DEADLINE:?}", flow.base));
}

#[tokio::test]
async fn suspension_stops_tokens_on_every_replica_within_max_staleness() {
    let cluster = Cluster::start().await;
    let tokens = cluster.flow.access_token(ALICE).await;
    cluster.assert_works_everywhere(access(&tokens)).await;

    // As `mcp-auth-broker users suspend` does it: an UPDATE.
    cluster
        .store
        .set_user_status(&email(ALICE), Status::Suspended)
        .await
        .unwrap();
    cluster
        .assert_refused_everywhere(access(&tokens), "no longer allowed")
        .await;
    cluster.stop().await;
}

#[tokio::test]
async fn removal_stops_tokens_on_every_replica_within_max_staleness() {
    let cluster = Cluster::start().await;
    let tokens = cluster.flow.access_token(ALICE).await;
    cluster.assert_works_everywhere(access(&tokens)).await;

    // As `mcp-auth-broker users remove` does it: a DELETE, which leaves no
    // row for an `updated_at` cursor to find.
    assert!(cluster.store.remove_user(&email(ALICE)).await.unwrap());
    cluster
        .assert_refused_everywhere(access(&tokens), "no longer allowed")
        .await;
    cluster.stop().await;
}

#[tokio::test]
async fn reactivation_lets_the_person_back_in() {
    let cluster = Cluster::start().await;
    let tokens = cluster.flow.access_token(ALICE).await;
    cluster
        .store
        .set_user_status(&email(ALICE), Status::Suspended)
        .await
        .unwrap();
    cluster
        .assert_refused_everywhere(access(&tokens), "no longer allowed")
        .await;

    cluster
        .store
        .set_user_status(&email(ALICE), Status::Active)
        .await
        .unwrap();
    for flow in cluster.replicas() {
        accepted_soon(flow, access(&tokens)).await;
    }
    cluster.stop().await;
}

#[tokio::test]
async fn revoked_access_token_is_refused_here_at_once_and_everywhere_soon() {
    let cluster = Cluster::start().await;
    let (client, tokens) = cluster.flow.client_and_tokens(ALICE).await;
    cluster.assert_works_everywhere(access(&tokens)).await;

    let revoked = cluster
        .flow
        .http
        .post(cluster.flow.url("/revoke"))
        .form(&[("token", access(&tokens)), ("client_id", &client)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    // The replica that took the revocation applies it before answering.
    let refused = cluster.flow.whoami(access(&tokens)).await.unwrap_err();
    assert_eq!(refused.status, 401);
    refused_soon(&cluster.b.flow, access(&tokens), "revoked").await;
    cluster.stop().await;
}

#[tokio::test]
async fn withdrawn_grant_stops_that_clients_older_tokens_only() {
    let cluster = Cluster::start().await;
    let (withdrawn, old) = cluster.login().await;
    let (_, other) = cluster.login().await;
    let alice = cluster.alice_id().await;

    // What a `consents revoke` command does.
    let at = now();
    assert!(cluster
        .store
        .revoke_grant_of(&alice, &withdrawn, at)
        .await
        .unwrap());
    cluster
        .assert_refused_everywhere(access(&old), "withdrew")
        .await;
    cluster.assert_works_everywhere(access(&other)).await;

    // The refresh family went with it, and so did the consent.
    let (status, body) = cluster
        .flow
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", old["refresh_token"].as_str().unwrap()),
            ("client_id", &withdrawn),
        ])
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(!cluster
        .store
        .has_consent(&alice, &withdrawn, &["mcp:tools"])
        .await
        .unwrap());

    // Timestamps are in seconds: a token of the revocation's own second
    // counts as older. A new login after it gets a working token.
    within(DEADLINE, || async { (now() > at).then_some(()) })
        .await
        .unwrap();
    let browser = Flow::new(&cluster.a.base);
    let pkce = support::flow::Pkce::new();
    let redirect = browser.authorize(&withdrawn, &pkce, ALICE).await;
    let code = support::flow::param(&redirect, "code").unwrap();
    let (status, fresh) = browser.redeem(&withdrawn, &code, &pkce).await;
    assert_eq!(status, 200, "{fresh}");
    cluster.assert_works_everywhere(access(&fresh)).await;
    cluster.stop().await;
}

/// A person whose allowlist row appeared after the view's last refresh
/// (as at a first login through an allowed domain) is looked up, not
/// refused. The poll interval is long enough that no refresh intervenes.
#[tokio::test]
async fn a_person_added_since_the_last_refresh_is_admitted() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let settings = with_staleness(&db, Duration::from_secs(120), Duration::from_secs(60));
    let server = TestServer::start_dev(settings).await;
    let flow = Flow::new(&server.base);
    store
        .upsert_user(&email("newcomer@example.com"), &Default::default())
        .await
        .unwrap();
    let tokens = flow.access_token("newcomer@example.com").await;
    let me = flow
        .whoami(access(&tokens))
        .await
        .unwrap_or_else(|r| panic!("refused: {} {:?}", r.status, r.body));
    assert_eq!(me["email"], "newcomer@example.com");
    server.stop().await;
}

/// Takes away (or gives back) one table the revocation view reads, so that
/// its refreshes fail while everything else works: the database "down" for
/// the view alone, on either engine.
async fn grants_table(db: &TestDb, present: bool) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let statement = if present {
        "CREATE TABLE revoked_grants (user_id TEXT NOT NULL, client_id TEXT NOT NULL, \
         revoked_at BIGINT NOT NULL, PRIMARY KEY (user_id, client_id))"
    } else {
        "DROP TABLE revoked_grants"
    };
    conn.execute(statement).await.unwrap();
    conn.close().await.unwrap();
}

/// 503 with Retry-After: a temporary condition, not the token's fault
/// (401) and not a crash (500).
fn assert_unavailable(reply: &McpReply) {
    assert_eq!(reply.status, 503, "{:?}", reply.body);
    assert!(reply.challenge.is_none(), "{:?}", reply.challenge);
}

#[tokio::test]
async fn before_the_first_load_bearer_requests_get_503_not_500() {
    let db = TestDb::new().await;
    let store = db.store().await;
    store
        .upsert_user(&email(ALICE), &Default::default())
        .await
        .unwrap();
    grants_table(&db, false).await;
    let server = TestServer::start_dev(fast(&db)).await;
    let flow = Flow::new(&server.base);
    // Logins do not need the view; using the token does.
    let tokens = flow.access_token(ALICE).await;
    let reply = flow.whoami(access(&tokens)).await.unwrap_err();
    assert_unavailable(&reply);
    let info = flow
        .http
        .get(flow.url("/userinfo"))
        .bearer_auth(access(&tokens))
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 503);
    assert_eq!(info.headers()["retry-after"], "1");

    grants_table(&db, true).await;
    accepted_soon(&flow, access(&tokens)).await;
    server.stop().await;
}

#[tokio::test]
async fn a_view_that_cannot_refresh_fails_closed_after_max_staleness() {
    let cluster = Cluster::start().await;
    let tokens = cluster.flow.access_token(ALICE).await;
    cluster.assert_works_everywhere(access(&tokens)).await;

    grants_table(&cluster.db, false).await;
    for flow in cluster.replicas() {
        let (reply, _) = within(DEADLINE, || async {
            flow.whoami(access(&tokens)).await.err()
        })
        .await
        .expect("fails closed within max_staleness");
        assert_unavailable(&reply);
    }

    grants_table(&cluster.db, true).await;
    for flow in cluster.replicas() {
        accepted_soon(flow, access(&tokens)).await;
    }
    cluster.stop().await;
}
