//! A test OpenID provider on loopback that can be shaped like Google, Entra
//! (a `{tenantid}` issuer template) or Cognito (string booleans), told which
//! claims its next ID token carries, made to lie, and made to roll its keys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::{encode, Algorithm, Header};
use mcp_auth_broker::store::now;
use mcp_auth_broker::tokens::{ephemeral_rs256, SigningKey};
use serde_json::{json, Value};

use super::Reserved;

pub const CLIENT_ID: &str = "fake-client";
pub const CLIENT_SECRET: &str = "fake-secret";

struct Inner {
    base: String,
    /// What discovery says the issuer is (for Entra: the template).
    discovery_issuer: String,
    signing: Mutex<Arc<SigningKey>>,
    /// Signs, but is never published.
    rogue: Arc<SigningKey>,
    sign_with_rogue: Mutex<bool>,
    /// Claims of the next ID token over the defaults; `null` removes one.
    claims: Mutex<Value>,
    /// Query strings /authorize received.
    authorizations: Mutex<Vec<HashMap<String, String>>>,
    token_requests: AtomicUsize,
}

pub struct TestProvider {
    pub base: String,
    /// The issuer to configure at the broker.
    pub issuer: String,
    inner: Arc<Inner>,
}

impl TestProvider {
    /// A plain provider whose issuer is its base URL.
    pub async fn start() -> TestProvider {
        Self::start_at("", None).await
    }

    /// Entra's shape: the broker is configured with `{base}/{tenant}/v2.0`;
    /// discovery answers with the tenant's id in the issuer, or for
    /// `organizations`/`common` with the `{tenantid}` template.
    pub async fn entra(tenant: &str, discovered_tid: &str) -> TestProvider {
        Self::start_at(
            &format!("/{tenant}/v2.0"),
            Some(&format!("/{discovered_tid}/v2.0")),
        )
        .await
    }

    async fn start_at(path: &str, discovered: Option<&str>) -> TestProvider {
        let reserved = Reserved::new().await;
        let base = reserved.base.clone();
        let issuer = format!("{base}{path}");
        let inner = Arc::new(Inner {
            base: base.clone(),
            discovery_issuer: discovered.map_or(issuer.clone(), |d| format!("{base}{d}")),
            signing: Mutex::new(ephemeral_rs256().unwrap()),
            rogue: ephemeral_rs256().unwrap(),
            sign_with_rogue: Mutex::new(false),
            claims: Mutex::new(json!({})),
            authorizations: Mutex::new(Vec::new()),
            token_requests: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .fallback(discovery)
            .with_state(inner.clone());
        let listener = reserved.into_listener();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        TestProvider {
            base,
            issuer,
            inner,
        }
    }

    /// The next ID tokens carry these claims (over sub, email, verified…).
    pub fn set_claims(&self, claims: Value) {
        *self.inner.claims.lock().unwrap() = claims;
    }

    /// Sign with a key that is not in the JWKS.
    pub fn sign_with_unpublished_key(&self, yes: bool) {
        *self.inner.sign_with_rogue.lock().unwrap() = yes;
    }

    /// A new signing key, published in place of the old one.
    pub fn roll_keys(&self) {
        *self.inner.signing.lock().unwrap() = ephemeral_rs256().unwrap();
    }

    pub fn authorizations(&self) -> Vec<HashMap<String, String>> {
        self.inner.authorizations.lock().unwrap().clone()
    }

    pub fn token_requests(&self) -> usize {
        self.inner.token_requests.load(Ordering::SeqCst)
    }
}

/// `…/.well-known/openid-configuration` under any path prefix.
async fn discovery(State(p): State<Arc<Inner>>, request: Request) -> Response {
    if !request
        .uri()
        .path()
        .ends_with("/.well-known/openid-configuration")
    {
        return StatusCode::NOT_FOUND.into_response();
    }
    let b = &p.base;
    Json(json!({
        "issuer": p.discovery_issuer,
        "authorization_endpoint": format!("{b}/authorize"),
        "token_endpoint": format!("{b}/token"),
        "jwks_uri": format!("{b}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
    .into_response()
}

async fn jwks(State(p): State<Arc<Inner>>) -> Json<Value> {
    Json(json!({ "keys": [p.signing.lock().unwrap().jwk] }))
}

/// Approves at once; the code carries the nonce to the token endpoint.
async fn authorize(
    State(p): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Redirect {
    p.authorizations.lock().unwrap().push(q.clone());
    let mut target = url::Url::parse(&q["redirect_uri"]).unwrap();
    target
        .query_pairs_mut()
        .append_pair("code", &q["nonce"])
        .append_pair("state", &q["state"]);
    Redirect::to(target.as_str())
}

async fn token(
    State(p): State<Arc<Inner>>,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    p.token_requests.fetch_add(1, Ordering::SeqCst);
    let at = now();
    let overrides = p.claims.lock().unwrap().clone();
    let issuer = match overrides.get("tid").and_then(Value::as_str) {
        Some(tid) => p.discovery_issuer.replace("{tenantid}", tid),
        None => p.discovery_issuer.clone(),
    };
    let mut claims = json!({
        "iss": issuer, "sub": "subject-1", "aud": CLIENT_ID, "iat": at, "exp": at + 300,
        "nonce": form["code"], "email": "alice@example.com", "email_verified": true,
    });
    for (k, v) in overrides.as_object().cloned().unwrap_or_default() {
        match v {
            Value::Null => {
                claims.as_object_mut().unwrap().remove(&k);
            }
            v => claims[k] = v,
        }
    }
    let published = p.signing.lock().unwrap().clone();
    let key = if *p.sign_with_rogue.lock().unwrap() {
        p.rogue.clone()
    } else {
        published.clone()
    };
    let mut header = Header::new(Algorithm::RS256);
    // A forgery claims to be the published key.
    header.kid = Some(published.kid.clone());
    let id_token = encode(&header, &claims, &key.encoding).unwrap();
    Json(json!({
        "access_token": "opaque", "token_type": "Bearer", "expires_in": 300, "id_token": id_token,
    }))
}
