//! Three broker processes on one database, as behind a load balancer: a
//! login hops between them, refresh reuse is caught across them, and a
//! suspension or a key rotation done by the CLI reaches all of them.
//! Runs on whichever engine the suite runs on (PostgreSQL in CI).

mod support;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::flow::{hidden, location, param, Flow, Pkce, REDIRECT};
use support::{broker_binary, write, TestDb};
use tokio::process::{Child, Command};

const ALICE: &str = "alice@example.com";

struct Cluster {
    _db: TestDb,
    _dir: tempfile::TempDir,
    config: PathBuf,
    replicas: Vec<(String, Child)>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Cluster {
    async fn start() -> Cluster {
        let db = TestDb::new().await;
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let public = format!("http://127.0.0.1:{}", ports[0]);
        // One config for all; only the listening port differs. The dev
        // provider's secret is fixed so every replica can finish its logins.
        let config = write(
            dir.path(),
            "broker.toml",
            &format!(
                "[server]\npublic_url = \"{public}\"\nhousekeeping_interval = \"1s\"\n\
                 [database]\nurl = \"{}\"\n\
                 [tokens]\nrefresh_grace = \"1s\"\n\
                 [revocation]\nmax_staleness = \"2s\"\npoll_interval = \"500ms\"\n\
                 [rate_limit]\nenabled = false\n\
                 [[upstreams]]\nid = \"dev\"\nkind = \"dev\"\nissuer = \"{public}/dev-idp\"\n\
                 client_id = \"mcp-auth-broker-dev\"\nclient_secret = \"a-dev-secret-the-replicas-share\"\n",
                db.url
            ),
        );
        let mut cluster = Cluster {
            _db: db,
            _dir: dir,
            config,
            replicas: Vec::new(),
        };
        cluster.cli(&["users", "add", ALICE]).await;
        for port in ports {
            let child = Command::new(broker_binary())
                .args(["--config", cluster.config.to_str().unwrap(), "serve"])
                .env_clear()
                .env("BROKER__SERVER__BIND", format!("127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("start a replica");
            cluster
                .replicas
                .push((format!("http://127.0.0.1:{port}"), child));
        }
        for (base, _) in &cluster.replicas {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !reqwest::get(format!("{base}/readyz"))
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                assert!(Instant::now() < deadline, "replica {base} did not start");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        cluster
    }

    fn base(&self, replica: usize) -> &str {
        &self.replicas[replica].0
    }

    /// `url` as the load balancer would send it to `replica`.
    fn via(&self, replica: usize, url: &str) -> String {
        let mut url = url::Url::parse(url).unwrap();
        let target = url::Url::parse(self.base(replica)).unwrap();
        url.set_port(target.port()).unwrap();
        url.to_string()
    }

    async fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(broker_binary())
            .args(["--config", self.config.to_str().unwrap()])
            .args(args)
            .env_clear()
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    async fn jwks_kids(&self, replica: usize) -> Vec<String> {
        let jwks: Value = reqwest::get(format!("{}/jwks.json", self.base(replica)))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Waits until `check` holds, for at most `limit`.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn form_action(html: &str) -> String {
    let start = html.find("action=\"").unwrap() + "action=\"".len();
    html[start..start + html[start..].find('"').unwrap()]
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_behave_as_one() {
    let cluster = Cluster::start().await;
    let flows: Vec<Flow> = (0..3).map(|i| Flow::new(cluster.base(i))).collect();
    let browser = &flows[0].browser;

    // Registered at replica 3; /authorize at 1; the callback at 2; consent
    // and the code's redemption at 3. (The development provider plays the
    // one external IdP, so it is always asked at the public URL.)
    let client = flows[2].public_client().await;
    let pkce = Pkce::new();
    let to_idp = browser
        .get(flows[0].authorize_url(&client, &pkce, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(to_idp.status(), 303);
    let form = browser
        .get(location(&to_idp))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let to_callback = browser
        .post(form_action(&form))
        .form(&[
            ("ticket", hidden(&form, "ticket")),
            ("email", ALICE.to_owned()),
            ("email_verified", "true".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(to_callback.status(), 303);
    let consent = browser
        .get(cluster.via(1, &location(&to_callback)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(consent.contains("Allow"), "{consent}");
    let done = browser
        .post(cluster.via(2, &form_action(&consent)))
        .form(&[
            ("request", hidden(&consent, "request")),
            ("csrf", hidden(&consent, "csrf")),
            ("decision", "allow".to_owned()),
        ])
        .send()
        .await
        .unwrap();
    let target = url::Url::parse(&location(&done)).unwrap();
    assert!(target.as_str().starts_with(REDIRECT));
    let code = param(&target, "code").unwrap();
    let (status, tokens) = flows[2].redeem(&client, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    for flow in &flows {
        assert_eq!(flow.whoami(&access).await.unwrap()["email"], ALICE);
    }

    // Refresh at 1; the old token replayed at 2 after the grace window is
    // reuse: the family dies, the new token too (at 3).
    let refresh = |flow: &Flow, token: &str| {
        let form = [
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", token.to_owned()),
            ("client_id", client.clone()),
        ];
        let http = flow.http.clone();
        let url = flow.url("/token");
        async move {
            let r = http.post(url).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let old = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, rotated) = refresh(&flows[0], &old).await;
    assert_eq!(status, 200, "{rotated}");
    // Past the grace window (whole seconds, so a little more than 1 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, body) = refresh(&flows[1], &old).await;
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant"))
    );
    let (status, _) = refresh(&flows[2], rotated["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400, "the whole family is revoked");

    // A key rotated by the CLI: every replica publishes it, signs with it,
    // and every replica accepts what another signed with it.
    let before = cluster.jwks_kids(0).await;
    cluster.cli(&["keys", "rotate"]).await;
    let mut new_kid = String::new();
    for replica in 0..3 {
        within(
            Duration::from_secs(10),
            "the new key in every JWKS",
            || async { cluster.jwks_kids(replica).await.len() > before.len() },
        )
        .await;
    }
    for kid in cluster.jwks_kids(0).await {
        if !before.contains(&kid) {
            new_kid = kid;
        }
    }
    let fresh = flows[1].access_token(ALICE).await;
    let fresh_access = fresh["access_token"].as_str().unwrap();
    assert_eq!(
        mcp_auth_broker::tokens::header_kid(fresh_access).as_deref(),
        Some(new_kid.as_str())
    );
    for flow in &flows {
        assert!(flow.whoami(fresh_access).await.is_ok(), "{}", flow.base);
    }

    // Suspended with the CLI: refused by all three within max_staleness.
    cluster.cli(&["users", "suspend", ALICE]).await;
    for flow in &flows {
        within(Duration::from_secs(5), "suspension enforced", || async {
            flow.whoami(fresh_access).await.is_err()
        })
        .await;
    }
}
