//! An upstream that lies: ID tokens with a bad signature, a wrong nonce, a
//! wrong audience, or an unverified email are refused at the callback.

mod support;

use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::response::Redirect;
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::{encode, Algorithm, Header};
use mcp_auth_broker::allowlist::{Email, UserChange};
use mcp_auth_broker::store::now;
use mcp_auth_broker::tokens::{ephemeral_rs256, SigningKey};
use serde_json::{json, Value};
use support::flow::{location, Flow, Pkce};
use support::{Reserved, TestDb};

/// What the fake provider does wrong on the next token request.
#[derive(Clone, Copy, Debug)]
enum Lie {
    Nothing,
    BadSignature,
    WrongNonce,
    WrongAudience,
    WrongIssuer,
    Expired,
    UnverifiedEmail,
}

struct Fake {
    issuer: String,
    key: Arc<SigningKey>,
    other_key: Arc<SigningKey>,
    lie: Mutex<Lie>,
}

async fn discovery(State(f): State<Arc<Fake>>) -> Json<Value> {
    let i = &f.issuer;
    Json(json!({
        "issuer": i, "authorization_endpoint": format!("{i}/authorize"), "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"), "response_types_supported": ["code"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn jwks(State(f): State<Arc<Fake>>) -> Json<Value> {
    Json(json!({ "keys": [f.key.jwk] }))
}

/// Approves at once; the code carries the nonce to the token endpoint.
async fn authorize(Query(q): Query<std::collections::HashMap<String, String>>) -> Redirect {
    let mut target = url::Url::parse(&q["redirect_uri"]).unwrap();
    target
        .query_pairs_mut()
        .append_pair("code", &q["nonce"])
        .append_pair("state", &q["state"]);
    Redirect::to(target.as_str())
}

async fn token(
    State(f): State<Arc<Fake>>,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> Json<Value> {
    let lie = *f.lie.lock().unwrap();
    let at = now();
    let mut claims = json!({
        "iss": f.issuer, "sub": "fake-1", "aud": "fake-client", "iat": at, "exp": at + 300,
        "nonce": form["code"], "email": "alice@example.com", "email_verified": true,
    });
    let mut key = &f.key;
    match lie {
        Lie::Nothing => {}
        Lie::BadSignature => key = &f.other_key,
        Lie::WrongNonce => claims["nonce"] = json!("another-nonce"),
        Lie::WrongAudience => claims["aud"] = json!("someone-else"),
        Lie::WrongIssuer => claims["iss"] = json!("https://evil.example"),
        Lie::Expired => claims["exp"] = json!(at - 3600),
        Lie::UnverifiedEmail => claims["email_verified"] = json!(false),
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(f.key.kid.clone()); // always claims to be the published key
    let id_token = encode(&header, &claims, &key.encoding).unwrap();
    Json(
        json!({ "access_token": "opaque", "token_type": "Bearer", "expires_in": 300, "id_token": id_token }),
    )
}

#[tokio::test]
async fn lying_upstreams_are_refused() {
    let idp = Reserved::new().await;
    let fake = Arc::new(Fake {
        issuer: idp.base.clone(),
        key: ephemeral_rs256().unwrap(),
        other_key: ephemeral_rs256().unwrap(),
        lie: Mutex::new(Lie::Nothing),
    });
    let router = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(fake.clone());
    let issuer = idp.base.clone();
    let listener = idp.into_listener();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let db = TestDb::new().await;
    let store = db.store().await;
    store
        .upsert_user(
            &Email::parse("alice@example.com").unwrap(),
            &UserChange::default(),
        )
        .await
        .unwrap();
    let mut settings = db.settings();
    settings.upstreams.push(support::oidc_upstream(
        "fake",
        &issuer,
        "fake-client",
        "fake-secret",
    ));
    let server = Reserved::new().await.serve(settings).await;
    let flow = Flow::new(&server.base);
    let client = flow.public_client().await;

    for (lie, status, says) in [
        (Lie::BadSignature, 502, "could not be verified"),
        (Lie::WrongNonce, 502, "could not be verified"),
        (Lie::WrongAudience, 502, "could not be verified"),
        (Lie::WrongIssuer, 502, "could not be verified"),
        (Lie::Expired, 502, "could not be verified"),
        (
            Lie::UnverifiedEmail,
            403,
            "has not verified alice@example.com",
        ),
        (Lie::Nothing, 200, "Allow"),
    ] {
        *fake.lie.lock().unwrap() = lie;
        let to_idp = flow
            .get(&flow.authorize_url(&client, &Pkce::new(), &[]))
            .await;
        let to_callback = flow.get(&location(&to_idp)).await;
        let page = flow.get(&location(&to_callback)).await;
        assert_eq!(page.status().as_u16(), status, "{lie:?}");
        let html = page.text().await.unwrap();
        assert!(html.contains(says), "{lie:?}: {html}");
    }
    let failures = store
        .audit_events(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.0 == "login_failed")
        .count();
    assert_eq!(failures, 5);
    server.stop().await;
}
