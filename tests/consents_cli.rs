//! `mcp-auth-broker consents list|revoke` against a broker that a person
//! really approved clients on: revoking takes the tokens with it.

mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::flow::Flow;

const ALICE: &str = "alice@example.com";

fn consents(db_url: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let config = support::write(
        dir.path(),
        "broker.toml",
        &format!("[database]\nurl = \"{db_url}\"\n"),
    );
    Command::new(support::broker_binary())
        .args(["--config", config.to_str().unwrap(), "consents"])
        .args(args)
        .env_clear()
        .output()
        .expect("run the broker binary")
}

async fn refresh(flow: &Flow, client: &str, tokens: &Value) -> (u16, Value) {
    let (status, body) = flow
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", client),
        ])
        .await;
    (status.as_u16(), body)
}

// Several threads: the CLI runs as a blocking child process, and the
// broker in this process must keep running (and finish its own
// transactions) meanwhile, or the two wait on each other's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_consent_revokes_that_clients_tokens_only() {
    let (db, server, flow) = support::dev_broker(&[ALICE]).await;
    let (first, first_tokens) = flow.client_and_tokens(ALICE).await;
    let (second, second_tokens) = flow.client_and_tokens(ALICE).await;

    let out = consents(&db.url, &["list", "--user", ALICE, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&first.as_str()) && ids.contains(&second.as_str()));
    assert_eq!(listed[0]["client_name"], "Test Client");

    let out = consents(&db.url, &["revoke", "--user", ALICE, "--client", &first]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&first));

    let (status, body) = refresh(&flow, &first, &first_tokens).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let access = first_tokens["access_token"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while flow.whoami(access).await.is_ok() {
        assert!(Instant::now() < deadline, "the access token still works");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The other client keeps its grant.
    let (status, _) = refresh(&flow, &second, &second_tokens).await;
    assert_eq!(status, 200);
    assert!(flow
        .whoami(second_tokens["access_token"].as_str().unwrap())
        .await
        .is_ok());

    let out = consents(&db.url, &["list", "--user", ALICE]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&second) && !text.contains(&first), "{text}");

    // Nothing left to revoke for that client, or no such person: exit 1.
    let again = consents(&db.url, &["revoke", "--user", ALICE, "--client", &first]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let nobody = consents(&db.url, &["list", "--user", "nobody@example.com"]);
    assert_eq!(
        nobody.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&nobody.stderr)
    );
    let bad = consents(&db.url, &["list", "--user", "not an email"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    let out = consents(&db.url, &["revoke", "--user", ALICE]);
    assert_eq!(out.status.code(), Some(0));
    let (status, _) = refresh(&flow, &second, &second_tokens).await;
    assert_eq!(status, 400);
    server.stop().await;
}
