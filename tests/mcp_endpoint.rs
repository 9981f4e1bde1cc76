//! `/mcp`: the challenge that starts discovery, the tools with a real token,
//! and every token the bearer layer must refuse.

mod support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use mcp_auth_broker::allowlist::{Email, Status};
use mcp_auth_broker::store::now;
use mcp_auth_broker::tokens::{self, AccessClaims, KeySet};
use serde_json::json;
use support::flow::Flow;
use support::{TestDb, TestServer};

async fn setup() -> (TestDb, TestServer, Flow) {
    support::dev_broker(&["alice@example.com"]).await
}

#[tokio::test]
async fn no_token_gets_the_discovery_challenge() {
    let (_db, server, flow) = setup().await;
    let reply = flow
        .mcp(
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.challenge.unwrap(),
        format!("Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:tools\"", server.base)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_real_token_lists_and_calls_tools() {
    let (_db, server, flow) = setup().await;
    let token = flow.access_token("alice@example.com").await;
    let access = token["access_token"].as_str().unwrap();
    let list = flow
        .mcp(
            Some(access),
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}),
        )
        .await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    let names: Vec<&str> = list.body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"whoami"), "{names:?}");
    let me = flow
        .whoami(access)
        .await
        .unwrap_or_else(|r| panic!("{} {:?}", r.status, r.body));
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["role"], "user");
    assert_eq!(me["scopes"], json!(["mcp:tools"]));
    assert!(me["client_id"].is_string() && me["token_expires_at"].is_string());
    server.stop().await;
}

#[tokio::test]
async fn an_oversized_body_of_unknown_length_gets_a_json_rpc_413() {
    let (_db, server, flow) = setup().await;
    let token = flow.access_token("alice@example.com").await;
    // Chunked, so only the bearer layer's read of the body finds it too big.
    let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![b' '; 32 * 1024]));
    let r = flow
        .http
        .post(server.url("/mcp"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["error"]["code"], -32600, "{body}");
    server.stop().await;
}

#[tokio::test]
async fn suspended_person_is_refused_within_max_staleness() {
    let (db, server, flow) = setup().await;
    let token = flow.access_token("alice@example.com").await;
    let access = token["access_token"].as_str().unwrap();
    assert!(flow.whoami(access).await.is_ok());
    db.store()
        .await
        .set_user_status(
            &Email::parse("alice@example.com").unwrap(),
            Status::Suspended,
        )
        .await
        .unwrap();
    let limit = db.settings().revocation.max_staleness.0 * 2;
    let (refused, _) =
        support::eventually::within(limit, || async { flow.whoami(access).await.err() })
            .await
            .expect("refused within max_staleness");
    assert_eq!(refused.status, 401);
    assert!(refused
        .challenge
        .unwrap()
        .contains("error=\"invalid_token\""));
    server.stop().await;
}

/// Claims that would be accepted, for tampering one field at a time.
async fn good_claims(db: &TestDb, server: &TestServer) -> (KeySet, AccessClaims) {
    let store = db.store().await;
    let keys = KeySet::load_or_create(&store).await.unwrap();
    let alice = store
        .user(&Email::parse("alice@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let at = now();
    let claims = AccessClaims {
        iss: server.base.clone(),
        sub: alice.user_id,
        aud: format!("{}/mcp", server.base),
        exp: at + 600,
        iat: at,
        nbf: at,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: "test".into(),
        scope: "mcp:tools".into(),
        email: "alice@example.com".into(),
    };
    (keys, claims)
}

#[tokio::test]
async fn forged_and_misdirected_tokens_are_refused() {
    let (db, server, flow) = setup().await;
    let (keys, claims) = good_claims(&db, &server).await;
    let good = tokens::mint(&keys, &claims).unwrap();
    assert!(flow.whoami(&good).await.is_ok(), "the control token works");
    let kid = keys.signing().kid.clone();

    let b64 = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let body = serde_json::to_value(&claims).unwrap();
    let alg_none = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        b64(body.clone())
    );

    // HS256 "signed" with public key material: the RS/HS confusion attack.
    let public_n = keys.signing().jwk.to_owned();
    let n = serde_json::to_value(&public_n).unwrap()["n"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.typ = Some("at+jwt".into());
    hs_header.kid = Some(kid.clone());
    let hs256 = encode(&hs_header, &claims, &EncodingKey::from_secret(n.as_bytes())).unwrap();

    let with = |f: &dyn Fn(&mut AccessClaims)| {
        let mut c = claims.clone();
        f(&mut c);
        tokens::mint(&keys, &c).unwrap()
    };
    let wrong_aud = with(&|c| c.aud = "https://other.example/mcp".into());
    let wrong_iss = with(&|c| c.iss = "https://evil.example".into());
    let expired = with(&|c| {
        c.exp = now() - 3600;
        c.iat = now() - 7200;
        c.nbf = c.iat;
    });
    let not_yet = with(&|c| c.nbf = now() + 3600);
    let mut tampered = good.clone();
    tampered.replace_range(tampered.len() - 6.., "AAAAAA");

    // A token signed by a key that is not ours, with our kid.
    let foreign_key = tokens::ephemeral_rs256().unwrap();
    let mut foreign_header = Header::new(Algorithm::RS256);
    foreign_header.typ = Some("at+jwt".into());
    foreign_header.kid = Some(kid.clone());
    let foreign = encode(&foreign_header, &claims, &foreign_key.encoding).unwrap();
    // A valid signature but not an access token (typ).
    let mut id_header = Header::new(Algorithm::RS256);
    id_header.kid = Some(kid.clone());
    let wrong_typ = encode(&id_header, &claims, &keys.signing().encoding).unwrap();

    for (name, token) in [
        ("alg none", alg_none),
        ("HS256 with the RSA public key", hs256),
        ("wrong aud", wrong_aud),
        ("wrong iss", wrong_iss),
        ("expired", expired),
        ("not yet valid", not_yet),
        ("tampered signature", tampered),
        ("foreign key", foreign),
        ("wrong typ", wrong_typ),
        ("garbage", "not-a-jwt".to_string()),
    ] {
        let reply = flow
            .mcp(
                Some(&token),
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            )
            .await;
        assert_eq!(reply.status, 401, "{name} was accepted");
        assert!(
            reply
                .challenge
                .as_deref()
                .unwrap_or_default()
                .starts_with("Bearer error=\"invalid_token\""),
            "{name}"
        );
    }

    let no_scope = with(&|c| c.scope = "other".into());
    let reply = flow
        .mcp(
            Some(&no_scope),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    assert_eq!(reply.status, 403);
    assert!(reply
        .challenge
        .unwrap()
        .contains("error=\"insufficient_scope\", scope=\"mcp:tools\""));
    server.stop().await;
}

#[tokio::test]
async fn a_key_created_by_another_replica_is_learned() {
    use aws_lc_rs::encoding::AsDer;
    use base64::engine::general_purpose::STANDARD;
    let (db, server, flow) = setup().await;
    // Another replica adds a newer key to the shared database after this one started.
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = pair.as_der().unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(der.as_ref())
    );
    let store = db.store().await;
    store
        .insert_signing_key(&mcp_auth_broker::store::StoredKey {
            kid: "other-replica-key".into(),
            algorithm: "RS256".into(),
            private_key: pem,
            created_at: now() + 1,
        })
        .await
        .unwrap();
    let (keys, claims) = good_claims(&db, &server).await;
    assert_eq!(keys.signing().kid, "other-replica-key");
    let token = tokens::mint(&keys, &claims).unwrap();
    let me = flow
        .whoami(&token)
        .await
        .unwrap_or_else(|r| panic!("{} {:?}", r.status, r.challenge));
    assert_eq!(me["email"], "alice@example.com");
    let jwks: serde_json::Value = flow.get_json("/jwks.json").await;
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "the learned key is published too: {jwks} db: {:?}",
        db.store()
            .await
            .signing_keys()
            .await
            .unwrap()
            .iter()
            .map(|k| (k.kid.clone(), k.created_at))
            .collect::<Vec<_>>()
    );
    server.stop().await;
}
