//! One gateway request: check the caller, relay to the backend with only
//! the headers Streamable HTTP needs (never the client's token), and stream
//! the answer back as it comes (JSON or SSE). POST bodies are one small
//! JSON-RPC message, read whole (bounded by `server.max_body_bytes`) to
//! learn the tools called; GET and DELETE carry none.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::credentials::identity_headers;
use super::error::{Failure, GatewayError};
use super::rpc::{self, Inspected};
use super::Backend;
use crate::bearer::{bearer_of, identify_for, Audience, BearerError, Identity};
use crate::tool_audit::ToolCall;
use crate::AppState;

const MCP_SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// The client's headers a backend gets; nothing else crosses (no
/// Authorization, no cookies, no hop-by-hop headers, no X-Forwarded-* a
/// client made up).
const REQUEST_HEADERS: [HeaderName; 6] = [
    header::ACCEPT,
    header::CONTENT_TYPE,
    MCP_SESSION_ID,
    MCP_PROTOCOL_VERSION,
    LAST_EVENT_ID,
    REQUEST_ID,
];

/// The backend's headers a client gets (no Set-Cookie for the broker's
/// origin, no challenges of the backend's own, no hop-by-hop headers).
const RESPONSE_HEADERS: [HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    header::RETRY_AFTER,
    MCP_SESSION_ID,
    MCP_PROTOCOL_VERSION,
    ACCEL_BUFFERING,
];

/// A JSON answer to a `tools/call` up to this size is read whole, to audit
/// whether the tool failed; anything else streams untouched.
const SMALL_ANSWER: u64 = 64 * 1024;

/// The whole exchange, answered in the protocol's shape whatever happens.
pub async fn forward(app: &AppState, backend: &Arc<Backend>, request: Request) -> Response {
    let response = relay(app, backend, request)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    metrics::counter!(
        "broker_gateway_requests_total",
        "backend" => backend.path.clone(),
        "status" => response.status().as_str().to_owned()
    )
    .increment(1);
    response
}

async fn relay(
    app: &AppState,
    backend: &Arc<Backend>,
    request: Request,
) -> Result<Response, GatewayError> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let who = caller(app, backend, &parts.headers).await?;
    let (body, rpc) = read(app, &parts.method, body).await?;
    let result = if backend.admits(who.user.role) {
        exchange(
            app,
            backend,
            &who,
            &parts.method,
            &parts.headers,
            body,
            &rpc,
        )
        .await
    } else {
        Err(GatewayError::Call {
            backend: backend.clone(),
            id: rpc.id.clone(),
            failure: Failure::RoleNotAllowed(who.user.role),
        })
    };
    let outcome = match &result {
        Ok((_, outcome)) => outcome,
        Err(e) => e.outcome(),
    };
    for tool in rpc.tool_calls {
        app.tool_audit().record(ToolCall {
            email: who.user.email.to_string(),
            client_id: who.claims.client_id.clone(),
            tool,
            backend: backend.path.clone(),
            outcome,
            duration: started.elapsed(),
        });
    }
    result.map(|(response, _)| response)
}

/// A live token for this backend (not another resource), with its scopes,
/// of a person still allowed in.
async fn caller(
    app: &AppState,
    backend: &Arc<Backend>,
    headers: &HeaderMap,
) -> Result<Identity, GatewayError> {
    let refused = |e| GatewayError::Bearer(e, backend.clone());
    let token = headers.get(header::AUTHORIZATION).and_then(bearer_of);
    let who = identify_for(app, token, Audience::Only(&backend.resource), None)
        .await
        .map_err(refused)?;
    if !backend
        .scopes
        .iter()
        .all(|needed| who.claims.scopes().any(|s| s == needed))
    {
        let needed = BearerError::InsufficientScope(backend.scope_hint.clone().into());
        return Err(refused(needed));
    }
    Ok(who)
}

/// A POST's body, and what it calls.
async fn read(
    app: &AppState,
    method: &Method,
    body: Body,
) -> Result<(Option<Bytes>, Inspected), GatewayError> {
    if method != Method::POST {
        return Ok((None, Inspected::default()));
    }
    let limit = app.settings().server.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| GatewayError::TooLarge { limit })?;
    let rpc = rpc::inspect(&bytes);
    Ok((Some(bytes), rpc))
}

/// Sends the request on and turns the backend's answer into ours, with the
/// outcome to audit.
async fn exchange(
    app: &AppState,
    backend: &Arc<Backend>,
    who: &Identity,
    method: &Method,
    client_headers: &HeaderMap,
    body: Option<Bytes>,
    rpc: &Inspected,
) -> Result<(Response, &'static str), GatewayError> {
    let failed = |failure| GatewayError::Call {
        backend: backend.clone(),
        id: rpc.id.clone(),
        failure,
    };
    let mut headers = outgoing_headers(app, backend, who, client_headers)
        .ok_or_else(|| failed(Failure::Credentials))?;
    open_session(app, backend, who, &mut headers).ok_or_else(|| failed(Failure::UnknownSession))?;
    let mut outgoing = app
        .gateway()
        .client
        .request(method.clone(), backend.url.clone())
        .headers(headers);
    if let Some(body) = body {
        outgoing = outgoing.body(body);
    }
    let deadline = tokio::time::Instant::now() + backend.timeout;
    let answer = match tokio::time::timeout_at(deadline, outgoing.send()).await {
        Err(_) => return Err(failed(Failure::Timeout)),
        Ok(Err(e)) => {
            tracing::warn!(backend = %backend.path, error = %e.without_url(), "gateway backend unreachable");
            return Err(failed(Failure::Unreachable));
        }
        Ok(Ok(answer)) => answer,
    };
    let status = answer.status();
    let bad_answer = |why: String| failed(Failure::BadAnswer(why));
    if status == StatusCode::UNAUTHORIZED {
        // Passing it on would send the client to re-authorize with the
        // broker, in a loop: the backend refuses the broker, not the client.
        return Err(bad_answer(
            "refused the broker's credentials (HTTP 401): check its identity_headers / forward_token settings".into(),
        ));
    }
    if status.is_redirection() {
        return Err(bad_answer(format!(
            "answered with a redirect (HTTP {}), which the gateway does not follow",
            status.as_u16()
        )));
    }
    let mut headers = kept(answer.headers(), &RESPONSE_HEADERS);
    seal_session(app, backend, who, &mut headers)
        .ok_or_else(|| bad_answer("sent a session id that is not visible ASCII".into()))?;
    let small_json = !rpc.tool_calls.is_empty()
        && status.is_success()
        && is_json(answer.headers())
        && answer.content_length().is_some_and(|n| n <= SMALL_ANSWER);
    let (body, outcome) = if small_json {
        let bytes = match tokio::time::timeout_at(deadline, answer.bytes()).await {
            Err(_) => return Err(failed(Failure::Timeout)),
            Ok(Err(_)) => return Err(bad_answer("broke off its answer".into())),
            Ok(Ok(bytes)) => bytes,
        };
        let outcome = rpc::outcome_of_answer(&bytes);
        (Body::from(bytes), outcome)
    } else {
        (Body::from_stream(answer.bytes_stream()), outcome_of(status))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok((response, outcome))
}

/// What the backend is sent: the client's Streamable HTTP headers, and the
/// caller's identity as configured. `None` if the identity cannot be put
/// into headers.
fn outgoing_headers(
    app: &AppState,
    backend: &Backend,
    who: &Identity,
    client_headers: &HeaderMap,
) -> Option<HeaderMap> {
    let mut headers = kept(client_headers, &REQUEST_HEADERS);
    if backend.identity_headers {
        headers.extend(identity_headers(who)?);
    }
    if let Some(tokens) = &backend.tokens {
        let now = crate::store::now();
        let jwt = tokens
            .get(&app.keys(), &who.claims, backend.url.as_str(), now)
            .map_err(|e| tracing::error!(backend = %backend.path, error = %e, "cannot sign a token for a gateway backend"))
            .ok()?;
        let value = HeaderValue::from_str(&format!("Bearer {jwt}")).ok()?;
        headers.insert(header::AUTHORIZATION, value);
    }
    Some(headers)
}

/// Replaces the client's sealed session id with the backend's own; `None`
/// if it was not sealed for this person at this backend (or is not one id).
fn open_session(
    app: &AppState,
    backend: &Backend,
    who: &Identity,
    headers: &mut HeaderMap,
) -> Option<()> {
    let mut presented = headers.get_all(MCP_SESSION_ID).iter();
    let Some(sealed) = presented.next() else {
        return Some(());
    };
    if presented.next().is_some() {
        return None;
    }
    let sealed = sealed.to_str().ok()?;
    let id = app
        .gateway()
        .sessions
        .open(&backend.path, &who.user.user_id, sealed)?;
    let id = HeaderValue::from_str(id).ok()?;
    headers.insert(MCP_SESSION_ID, id);
    Some(())
}

/// Seals the backend's session id for the caller; `None` if it is not text.
fn seal_session(
    app: &AppState,
    backend: &Backend,
    who: &Identity,
    headers: &mut HeaderMap,
) -> Option<()> {
    let Some(id) = headers.get(MCP_SESSION_ID) else {
        return Some(());
    };
    let sealed = app
        .gateway()
        .sessions
        .seal(&backend.path, &who.user.user_id, id.to_str().ok()?);
    headers.insert(MCP_SESSION_ID, HeaderValue::from_str(&sealed).ok()?);
    Some(())
}

/// Only the `names` of `headers`, every value of each.
fn kept(headers: &HeaderMap, names: &[HeaderName]) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in names {
        for value in headers.get_all(name) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
}

/// The audit outcome of an answer that is not read: by its status.
fn outcome_of(status: StatusCode) -> &'static str {
    if status.is_success() {
        "ok"
    } else if status.is_client_error() {
        "refused"
    } else {
        "error"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_streamable_http_headers_cross_to_the_backend() {
        let mut client = HeaderMap::new();
        for (name, value) in [
            ("authorization", "Bearer client-token"),
            ("cookie", "broker_session=x"),
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("transfer-encoding", "chunked"),
            ("x-forwarded-user", "spoofed"),
            ("x-forwarded-email", "spoofed@example.com"),
            ("host", "broker.example"),
            ("accept", "application/json, text/event-stream"),
            ("content-type", "application/json"),
            ("mcp-session-id", "s1"),
            ("mcp-protocol-version", "2025-06-18"),
            ("last-event-id", "e9"),
            ("x-request-id", "r1"),
        ] {
            client.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let sent = kept(&client, &REQUEST_HEADERS);
        let mut names: Vec<&str> = sent.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "accept",
                "content-type",
                "last-event-id",
                "mcp-protocol-version",
                "mcp-session-id",
                "x-request-id"
            ]
        );
        assert_eq!(sent["mcp-session-id"], "s1");
    }

    #[test]
    fn the_backends_cookies_and_challenges_stay_behind() {
        let mut answer = HeaderMap::new();
        for (name, value) in [
            ("set-cookie", "broker_session=evil"),
            ("www-authenticate", "Bearer realm=backend"),
            ("connection", "close"),
            ("content-length", "10"),
            ("access-control-allow-origin", "*"),
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
            ("mcp-session-id", "s1"),
            ("x-accel-buffering", "no"),
        ] {
            answer.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let mut names: Vec<String> = kept(&answer, &RESPONSE_HEADERS)
            .keys()
            .map(|n| n.to_string())
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "cache-control",
                "content-type",
                "mcp-session-id",
                "x-accel-buffering"
            ]
        );
    }

    #[test]
    fn outcomes_by_status() {
        assert_eq!(outcome_of(StatusCode::OK), "ok");
        assert_eq!(outcome_of(StatusCode::ACCEPTED), "ok");
        assert_eq!(outcome_of(StatusCode::NOT_FOUND), "refused");
        assert_eq!(outcome_of(StatusCode::INTERNAL_SERVER_ERROR), "error");
        let json = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            is_json(&h)
        };
        assert!(json("application/json") && json("Application/JSON; charset=utf-8"));
        assert!(!json("text/event-stream"));
    }
}
