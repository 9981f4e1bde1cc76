//! The operations CLI against a broker people really used: clients, bulk
//! token revocation, key retirement, the audit log, `config check` and
//! `doctor`.

mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::flow::Flow;
use support::oidc_provider::{TestProvider, CLIENT_ID, CLIENT_SECRET};

const ALICE: &str = "alice@example.com";

struct Admin {
    _dir: tempfile::TempDir,
    config: String,
}

impl Admin {
    fn new(toml: &str) -> Admin {
        let dir = tempfile::tempdir().unwrap();
        let config = support::write(dir.path(), "broker.toml", toml)
            .display()
            .to_string();
        Admin { _dir: dir, config }
    }

    fn for_db(url: &str) -> Admin {
        Admin::new(&format!("[database]\nurl = \"{url}\"\n"))
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(support::broker_binary())
            .args(["--config", &self.config])
            .args(args)
            .env_clear()
            .output()
            .expect("run the broker binary")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

async fn refused_soon(flow: &Flow, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while flow.whoami(token).await.is_ok() {
        assert!(Instant::now() < deadline, "the access token still works");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// Several threads: the CLI runs as a blocking child process, and the
// broker in this process must keep running (and finish its own
// transactions) meanwhile, or the two wait on each other's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_tokens_keys_and_audit() {
    let (db, server, flow) = support::dev_broker(&[ALICE]).await;
    let admin = Admin::for_db(&db.url);
    let (first, first_tokens) = flow.client_and_tokens(ALICE).await;
    let (second, second_tokens) = flow.client_and_tokens(ALICE).await;

    let listed: Value = serde_json::from_str(&admin.ok(&["clients", "list", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let shown = admin.ok(&["clients", "show", &first]);
    assert!(shown.contains("people with grants: 1"), "{shown}");
    assert_eq!(
        admin.run(&["clients", "show", "nope"]).status.code(),
        Some(1)
    );

    // Disabling a client: refused at /token, its access token stops.
    admin.ok(&["clients", "disable", &first]);
    let (status, body) = flow
        .token(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                first_tokens["refresh_token"].as_str().unwrap(),
            ),
            ("client_id", &first),
        ])
        .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    refused_soon(&flow, first_tokens["access_token"].as_str().unwrap()).await;
    assert!(admin.ok(&["clients", "list"]).contains("disabled"));
    admin.ok(&["clients", "enable", &first]);

    // Bulk revocation by person.
    let second_access = second_tokens["access_token"].as_str().unwrap();
    assert!(flow.whoami(second_access).await.is_ok());
    let out = admin.ok(&["tokens", "revoke", "--user", ALICE]);
    assert!(out.contains("revoked"), "{out}");
    refused_soon(&flow, second_access).await;
    let usage = admin.run(&["tokens", "revoke"]);
    assert_eq!(usage.status.code(), Some(2), "a selector is required");

    admin.ok(&["clients", "delete", &second]);
    assert_eq!(
        admin.run(&["clients", "delete", &second]).status.code(),
        Some(1)
    );

    // Keys: the only key cannot be retired; after a rotation the old one can.
    let keys: Value = serde_json::from_str(&admin.ok(&["keys", "list", "--json"])).unwrap();
    let old = keys[0]["kid"].as_str().unwrap().to_owned();
    assert_eq!(admin.run(&["keys", "retire", &old]).status.code(), Some(2));
    admin.ok(&["keys", "rotate"]);
    admin.ok(&["keys", "retire", &old]);
    let keys = admin.ok(&["keys", "list"]);
    assert!(!keys.contains(&old), "{keys}");

    // The audit log has the logins.
    let audit: Value =
        serde_json::from_str(&admin.ok(&["audit", "tail", "--user", ALICE, "--json"])).unwrap();
    let events: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        events.iter().filter(|e| **e == "login_ok").count() >= 2,
        "{events:?}"
    );
    let table = admin.ok(&["audit", "tail", "--since", "10m"]);
    assert!(table.contains("login_ok"), "{table}");
    assert_eq!(
        admin
            .run(&["audit", "tail", "--since", "soon"])
            .status
            .code(),
        Some(2)
    );
    server.stop().await;
}

// Several threads: the CLI runs as a blocking child process while this
// test's provider and broker must keep answering it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_masks_secrets_and_doctor_reports_each_problem() {
    let db = support::TestDb::new().await;
    let admin = Admin::new(&format!(
        "[database]\nurl = \"{}\"\n[registration]\ninitial_access_token = \"a-registration-token-of-32-chars!!\"\n\
         [[upstreams]]\nid = \"broken\"\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:9/nowhere\"\nclient_id = \"c\"\nclient_secret = \"supersecret\"\n",
        db.url
    ));
    let shown = admin.ok(&["config", "check"]);
    assert!(shown.contains("client_secret = \"********\""), "{shown}");
    assert!(
        !shown.contains("supersecret") && !shown.contains("a-registration-token"),
        "{shown}"
    );
    assert!(shown.contains("client_idle_expiry = \"90d\""), "{shown}");
    let invalid = Admin::new("[server]\npublic_url = \"http://broker.example.com\"\n");
    assert_eq!(invalid.run(&["config", "check"]).status.code(), Some(2));

    let out = admin.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("FAIL  upstream broken (http://127.0.0.1:9/nowhere): cannot read the provider's discovery document"), "{report}");
    assert!(report.contains("FAIL  public URL"), "{report}");

    // A healthy setup: migrated database, a live provider, the broker up.
    let idp = TestProvider::start().await;
    let mut settings = db.settings();
    settings.upstreams.push(support::oidc_upstream(
        "corp",
        &idp.issuer,
        CLIENT_ID,
        CLIENT_SECRET,
    ));
    let server = support::TestServer::start(settings).await;
    let healthy = Admin::new(&format!(
        "[database]\nurl = \"{}\"\n[server]\npublic_url = \"{}\"\n\
         [[upstreams]]\nid = \"corp\"\nkind = \"oidc\"\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n",
        db.url, server.base, idp.issuer
    ));
    let report = healthy.ok(&["doctor"]);
    for line in [
        "ok    database",
        "ok    upstream corp",
        "ok    clock",
        "ok    public URL",
    ] {
        assert!(report.contains(line), "{line}: {report}");
    }
    server.stop().await;
}
