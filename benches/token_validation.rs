//! What /mcp spends on a bearer token before any tool runs: `identify`, cold
//! (RS256 signature check) and from the verified-token cache, with the
//! revocation view consulted in both as on every request; and the bare
//! signature check for reference. Numbers and the machine: BENCHMARKS.md.
//!
//!     cargo bench --bench token_validation

use std::collections::HashMap;

use criterion::{criterion_group, criterion_main, Criterion};
use mcp_auth_broker::allowlist::Email;
use mcp_auth_broker::bearer::identify;
use mcp_auth_broker::config::{Settings, Sources};
use mcp_auth_broker::store::{now, Store};
use mcp_auth_broker::tokens::{self, AccessClaims};
use mcp_auth_broker::AppState;
use tokio::runtime::Runtime;

/// A broker state on a scratch SQLite database with one person, its
/// revocation view loaded, and a token of theirs.
async fn broker(dir: &tempfile::TempDir, cache_entries: &str) -> (AppState, String) {
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let env: HashMap<String, String> = [
        ("BROKER__DATABASE__URL", url.as_str()),
        ("BROKER__REVOCATION__VERIFIED_TOKEN_CACHE", cache_entries),
        // No watcher runs here: keep the one load good for the whole run.
        ("BROKER__REVOCATION__MAX_STALENESS", "1h"),
        ("BROKER__REVOCATION__POLL_INTERVAL", "30m"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = Settings::load(&Sources { file: None, env }).expect("bench settings");
    let store = Store::connect(&settings.database).await.expect("connect");
    store.migrate().await.expect("migrate");
    let email = Email::parse("bench@example.com").unwrap();
    store
        .upsert_user(&email, &Default::default())
        .await
        .unwrap();
    let user = store.user(&email).await.unwrap().unwrap();
    let app = AppState::build(settings, store).await.expect("state");
    app.revocation().refresh(app.store()).await.expect("view");
    let at = now();
    let claims = AccessClaims {
        iss: app.settings().issuer().to_owned(),
        sub: user.user_id,
        aud: app.mcp_resource().to_owned(),
        exp: at + 3600,
        iat: at,
        nbf: at,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: "bench".into(),
        scope: "mcp:tools".into(),
        email: email.to_string(),
    };
    let token = tokens::mint(&app.keys(), &claims).unwrap();
    identify(&app, Some(&token), Some("mcp:tools"))
        .await
        .expect("the benchmarked path is the success path");
    (app, token)
}

fn token_validation(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cold, token) = rt.block_on(broker(&dir, "0"));
    let (cached, _) = rt.block_on(broker(&dir, "10000"));
    let mut group = c.benchmark_group("token_validation");

    group.bench_function("rs256_signature_only", |b| {
        let keys = cold.keys();
        let (issuer, audience) = (cold.settings().issuer(), cold.mcp_resource());
        b.iter(|| tokens::validate(&keys, &token, issuer, audience).unwrap())
    });
    group.bench_function("identify_cold_rs256", |b| {
        b.to_async(&rt).iter(|| async {
            identify(&cold, Some(&token), Some("mcp:tools"))
                .await
                .unwrap()
        })
    });
    group.bench_function("identify_cached", |b| {
        b.to_async(&rt).iter(|| async {
            identify(&cached, Some(&token), Some("mcp:tools"))
                .await
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, token_validation);
criterion_main!(benches);
