//! Signing algorithms and key rotation.

mod support;

use jsonwebtoken::decode_header;
use mcp_auth_broker::allowlist::{Email, UserChange};
use mcp_auth_broker::store::now;
use mcp_auth_broker::tokens::{self, AccessClaims};
use mcp_auth_broker::AppState;
use serde_json::Value;
use sqlx::{Connection, Executor};
use support::flow::Flow;
use support::{TestDb, TestServer};

async fn broker_with(
    db: &TestDb,
    algorithm: &str,
    hs256_secret: Option<&str>,
) -> (TestServer, Flow) {
    db.store()
        .await
        .upsert_user(
            &Email::parse("alice@example.com").unwrap(),
            &UserChange::default(),
        )
        .await
        .unwrap();
    let mut settings = db.settings();
    settings.tokens.algorithm = algorithm.into();
    settings.tokens.hs256_secret = hs256_secret.map(str::to_owned);
    let server = TestServer::start_dev(settings).await;
    let flow = Flow::new(&server.base);
    (server, flow)
}

async fn jwks(flow: &Flow) -> Value {
    flow.get_json("/jwks.json").await
}

#[tokio::test]
async fn es256_tokens_work_end_to_end() {
    let db = TestDb::new().await;
    let (server, flow) = broker_with(&db, "ES256", None).await;
    let token = flow.access_token("alice@example.com").await;
    let access = token["access_token"].as_str().unwrap();
    let header = decode_header(access).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let keys = jwks(&flow).await;
    let key = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header.kid.clone().unwrap())
        .expect("published");
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(key.get("d").is_none());
    assert_eq!(
        flow.whoami(access).await.unwrap()["email"],
        "alice@example.com"
    );
    server.stop().await;
}

#[tokio::test]
async fn hs256_tokens_work_and_publish_nothing() {
    let db = TestDb::new().await;
    let (server, flow) =
        broker_with(&db, "HS256", Some("a-shared-secret-of-at-least-32-bytes!!")).await;
    let token = flow.access_token("alice@example.com").await;
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(
        decode_header(access).unwrap().alg,
        jsonwebtoken::Algorithm::HS256
    );
    assert!(flow.whoami(access).await.is_ok());
    assert!(
        jwks(&flow).await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["kty"] != "oct"),
        "no secret in JWKS"
    );
    server.stop().await;
}

fn claims_for(state: &AppState, sub: &str) -> AccessClaims {
    let at = now();
    AccessClaims {
        iss: state.settings().issuer().into(),
        sub: sub.into(),
        aud: state.settings().mcp_resource(),
        exp: at + 600,
        iat: at,
        nbf: at,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: "c".into(),
        scope: "mcp:tools".into(),
        email: "alice@example.com".into(),
    }
}

#[tokio::test]
async fn rotation_keeps_old_tokens_valid_until_the_old_key_retires() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let state = AppState::build(db.settings(), store.clone()).await.unwrap();
    let resource = state.settings().mcp_resource();
    let before = tokens::mint(&state.keys(), &claims_for(&state, "u")).unwrap();
    let old_kid = state.keys().signing().kid.clone();

    // `keys rotate`, as an admin runs it against the same database.
    let dir = tempfile::tempdir().unwrap();
    let config = support::write(
        dir.path(),
        "broker.toml",
        &format!("[database]\nurl = \"{}\"\n", db.url),
    );
    let out = std::process::Command::new(support::broker_binary())
        .args(["--config", config.to_str().unwrap(), "keys", "rotate"])
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("created signing key"));

    state.maintain_keys().await.unwrap();
    let new_kid = state.keys().signing().kid.clone();
    assert_ne!(new_kid, old_kid, "new tokens use the new key at once");
    assert!(
        state.validate_access(&before, &resource).await.is_ok(),
        "old tokens still validate"
    );
    assert_eq!(state.keys().jwks().keys.len(), 2);

    // Once every token the old key signed has expired, it retires.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    conn.execute("UPDATE signing_keys SET created_at = created_at - 7200")
        .await
        .unwrap();
    state.maintain_keys().await.unwrap();
    let published: Vec<String> = state
        .keys()
        .jwks()
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(
        published,
        vec![new_kid.clone()],
        "the retired key is gone from JWKS"
    );
    assert!(state.validate_access(&before, &resource).await.is_err());
    let after = tokens::mint(&state.keys(), &claims_for(&state, "u")).unwrap();
    assert!(state.validate_access(&after, &resource).await.is_ok());
}

#[tokio::test]
async fn automatic_rotation_when_the_key_is_old() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let mut settings = db.settings();
    settings.tokens.rotate_every = Some(mcp_auth_broker::config::HumanDuration(
        std::time::Duration::from_secs(7200),
    ));
    let state = AppState::build(settings, store.clone()).await.unwrap();
    let first = state.keys().signing().kid.clone();
    state.maintain_keys().await.unwrap();
    assert_eq!(state.keys().signing().kid, first, "a young key is kept");
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    conn.execute("UPDATE signing_keys SET created_at = created_at - 10000")
        .await
        .unwrap();
    state.maintain_keys().await.unwrap();
    assert_ne!(state.keys().signing().kid, first, "rotated");
}

#[tokio::test]
async fn private_keys_can_be_sealed_at_rest() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let mut settings = db.settings();
    settings.tokens.algorithm = "ES256".into();
    settings.tokens.key_encryption_secret = Some("a-key-encryption-secret-of-32-chars+".into());
    let state = AppState::build(settings.clone(), store.clone())
        .await
        .unwrap();
    let stored = store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].private_key.starts_with("sealed:v1:"));
    assert!(
        !stored[0].private_key.contains("PRIVATE KEY"),
        "no plaintext key in the database"
    );
    let token = tokens::mint(&state.keys(), &claims_for(&state, "u")).unwrap();
    assert!(state
        .validate_access(&token, &state.settings().mcp_resource())
        .await
        .is_ok());

    // A replica without the secret, or with a wrong one, refuses to start.
    for secret in [None, Some("another-secret-that-is-32-characters")] {
        let mut other = settings.clone();
        other.tokens.key_encryption_secret = secret.map(str::to_owned);
        let error = AppState::build(other, store.clone())
            .await
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains("key_encryption_secret"), "{error}");
    }
}

fn pem_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    use aws_lc_rs::encoding::AsDer;
    use base64::Engine;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = pair.as_der().unwrap();
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    support::write(
        dir,
        name,
        &format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"),
    )
}

#[tokio::test]
async fn keys_can_come_from_pem_files() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (
        pem_file(dir.path(), "old.pem"),
        pem_file(dir.path(), "new.pem"),
    );
    let mut settings = db.settings();
    settings.tokens.private_key_files = vec![old.clone()];
    let before = AppState::build(settings.clone(), store.clone())
        .await
        .unwrap();
    let old_token = tokens::mint(&before.keys(), &claims_for(&before, "u")).unwrap();

    settings.tokens.private_key_files = vec![new, old];
    let state = AppState::build(settings.clone(), store.clone())
        .await
        .unwrap();
    assert!(state.keys().signing().kid.starts_with("file-"));
    assert_ne!(
        state.keys().signing().kid,
        before.keys().signing().kid,
        "the first file signs"
    );
    assert!(
        state
            .validate_access(&old_token, &state.settings().mcp_resource())
            .await
            .is_ok(),
        "the old file still verifies"
    );
    assert_eq!(state.keys().jwks().keys.len(), 2);
    assert!(
        store.signing_keys().await.unwrap().is_empty(),
        "nothing generated or stored"
    );

    settings.tokens.private_key_files = vec![dir.path().join("missing.pem")];
    let error = AppState::build(settings, store)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("private_key_files"), "{error}");
}
