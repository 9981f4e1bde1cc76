//! A client's web site for client ID metadata documents: serves whatever a
//! test puts at a path (document, JWKS, redirect, slow or huge answers) and
//! counts fetches; and a client key that signs `private_key_jwt` assertions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::flow::REDIRECT;

#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub cache_control: Option<String>,
    pub location: Option<String>,
    pub delay: Duration,
}

impl Answer {
    pub fn json(body: &Value) -> Answer {
        Answer {
            status: 200,
            body: body.to_string(),
            cache_control: Some("max-age=300".into()),
            location: None,
            delay: Duration::ZERO,
        }
    }
}

#[derive(Default)]
struct Site {
    answers: HashMap<String, Answer>,
    hits: HashMap<String, usize>,
}

pub struct ClientSite {
    pub base: String,
    site: Arc<Mutex<Site>>,
    task: tokio::task::JoinHandle<()>,
}

impl ClientSite {
    pub async fn start() -> ClientSite {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let site = Arc::new(Mutex::new(Site::default()));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(site.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        ClientSite { base, site, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn put(&self, path: &str, answer: Answer) {
        self.site
            .lock()
            .unwrap()
            .answers
            .insert(path.to_owned(), answer);
    }

    /// A metadata document at `path` whose client_id is its own URL, for
    /// the usual test redirect URI; `extra` fields are merged in.
    pub fn document(&self, path: &str, extra: Value) -> String {
        let client_id = self.url(path);
        let mut document = json!({
            "client_id": client_id,
            "client_name": "Document Client",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        });
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            document[k] = v;
        }
        self.put(path, Answer::json(&document));
        client_id
    }

    pub fn hits(&self, path: &str) -> usize {
        self.site
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for ClientSite {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(site): State<Arc<Mutex<Site>>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let answer = {
        let mut site = site.lock().unwrap();
        *site.hits.entry(path.clone()).or_default() += 1;
        site.answers.get(&path).cloned()
    };
    let Some(answer) = answer else {
        return StatusCode::NOT_FOUND.into_response();
    };
    tokio::time::sleep(answer.delay).await;
    let mut response = (
        StatusCode::from_u16(answer.status).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        answer.body,
    )
        .into_response();
    for (name, value) in [
        (header::CACHE_CONTROL, answer.cache_control),
        (header::LOCATION, answer.location),
    ] {
        if let Some(value) = value {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_str(&value).unwrap());
        }
    }
    response
}

/// An ES256 key of the client's, as `private_key_jwt` uses it.
pub struct ClientKey {
    kid: String,
    key: EncodingKey,
    pub jwk: Value,
}

impl ClientKey {
    pub fn new(kid: &str) -> ClientKey {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let der = pair.to_pkcs8v1().unwrap();
        let key = EncodingKey::from_ec_der(der.as_ref());
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap()).unwrap();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        ClientKey {
            kid: kid.to_owned(),
            key,
            jwk,
        }
    }

    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk] })
    }

    /// An assertion for `client_id` with these claims over the defaults
    /// (iss = sub = client_id, aud = `audience`, a fresh jti, 2 min).
    pub fn assertion(&self, client_id: &str, audience: &str, overrides: Value) -> String {
        let now = mcp_auth_broker::store::now();
        let mut claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "exp": now + 120,
        });
        for (k, v) in overrides.as_object().cloned().unwrap_or_default() {
            claims[k] = v;
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
