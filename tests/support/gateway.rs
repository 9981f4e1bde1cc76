//! For the gateway tests: a broker with backends, a Streamable HTTP caller
//! for any path, and the backend JWT's check against the broker's JWKS.

use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use mcp_auth_broker::allowlist::{Email, Role, UserChange};
use mcp_auth_broker::config::{BackendSettings, Settings};
use mcp_auth_broker::store::Store;
use mcp_auth_broker::tokens::AccessClaims;
use serde_json::Value;

use super::flow::Flow;
use super::{TestDb, TestServer};

pub const PROTOCOL: &str = "2025-06-18";

/// A backend at `path` relaying to `url`, with the defaults of the config
/// file (scope mcp:tools, every role, 25 s).
pub fn backend(path: &str, url: &str) -> BackendSettings {
    let file = format!("[[mcp.backends]]\npath = \"{path}\"\nurl = \"{url}\"\n");
    let parsed: toml::Value = toml::from_str(&file).unwrap();
    parsed["mcp"]["backends"][0].clone().try_into().unwrap()
}

/// A dev-mode broker with `people` on the allowlist and `backends`.
pub async fn broker(
    people: &[(&str, Role)],
    backends: Vec<BackendSettings>,
) -> (TestDb, TestServer, Flow, Store) {
    broker_with(people, backends, |_| {}).await
}

/// `broker`, with other settings changed first.
pub async fn broker_with(
    people: &[(&str, Role)],
    backends: Vec<BackendSettings>,
    tweak: impl FnOnce(&mut Settings),
) -> (TestDb, TestServer, Flow, Store) {
    let db = TestDb::new().await;
    let store = db.store().await;
    for (email, role) in people {
        let change = UserChange {
            role: Some(*role),
            ..Default::default()
        };
        store
            .upsert_user(&Email::parse(email).unwrap(), &change)
            .await
            .unwrap();
    }
    let mut settings = db.settings();
    settings.mcp.backends = backends;
    tweak(&mut settings);
    let server = TestServer::start_dev(settings).await;
    let flow = Flow::new(&server.base);
    (db, server, flow, store)
}

/// One Streamable HTTP request to `path`: a POST of `message`, or (with
/// `None`) a GET for the SSE stream.
pub async fn send(
    flow: &Flow,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    session: Option<&str>,
    message: Option<&Value>,
) -> reqwest::Response {
    let accept = if method == reqwest::Method::GET {
        "text/event-stream"
    } else {
        "application/json, text/event-stream"
    };
    let mut request = flow
        .http
        .request(method, flow.url(path))
        .header("accept", accept)
        .header("mcp-protocol-version", PROTOCOL);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    if let Some(message) = message {
        request = request.json(message);
    }
    request.send().await.unwrap()
}

/// The JSON-RPC messages of an answer, JSON or SSE (`data:` lines).
pub async fn messages(response: reqwest::Response) -> Vec<Value> {
    let sse = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
    let text = response.text().await.unwrap();
    if !sse {
        return vec![serde_json::from_str(&text).unwrap_or(Value::String(text))];
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|data| serde_json::from_str(data.trim()).unwrap())
        .collect()
}

/// Reads an SSE body until `events` more complete events have come (lines
/// end in LF or CRLF).
pub async fn read_events(response: &mut reqwest::Response, events: usize) -> String {
    let mut text = String::new();
    while text.replace("\r\n", "\n").matches("\n\n").count() < events {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("the next SSE event in time")
            .unwrap()
            .unwrap_or_else(|| panic!("the stream ended after {text:?}"));
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    text
}

/// Checks a JWT the broker minted for a backend the way a backend would:
/// with the key of /jwks.json its header names, for `audience`.
pub async fn verify_backend_jwt(flow: &Flow, jwt: &str, audience: &str) -> AccessClaims {
    let jwks: JwkSet = serde_json::from_value(flow.get_json("/jwks.json").await).unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let jwk = jwks
        .find(header.kid.as_deref().expect("a kid"))
        .expect("the key is published in JWKS");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[flow.base.as_str()]);
    jsonwebtoken::decode::<AccessClaims>(jwt, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("the backend JWT verifies with the broker's JWKS")
        .claims
}
