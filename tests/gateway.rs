//! The gateway against a small axum backend (no Python needed): what the
//! backend receives (never the client's token), streaming both ways, each
//! backend as a resource of its own, and the refusals and failures, all
//! audited. tests/gateway_python.rs drives a real MCP SDK server.

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::{stream, StreamExt};
use mcp_auth_broker::allowlist::{Email, Role};
use mcp_auth_broker::config::{HumanDuration, Settings, Sources};
use serde_json::{json, Value};
use support::audit::{has_call, tool_calls};
use support::flow::{location, param, Flow, Pkce};
use support::gateway::{backend, broker, broker_with, read_events, send, verify_backend_jwt};
use tokio::sync::Notify;

const ALICE: &str = "alice@example.com";
const ADMIN: &str = "admin@example.com";
const BOB: &str = "bob@example.com";

/// A stand-in MCP server that records what it receives.
#[derive(Clone, Default)]
struct Echo {
    seen: Arc<Mutex<Vec<(Method, HeaderMap)>>>,
    /// Lets the `stream` tool send its result.
    release: Arc<Notify>,
}

impl Echo {
    async fn start() -> (Echo, String) {
        let echo = Echo::default();
        let app = Router::new()
            .route("/mcp", axum::routing::any(answer))
            .with_state(echo.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (echo, url)
    }

    fn last(&self) -> (Method, HeaderMap) {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request")
    }
}

fn sse(events: impl futures_util::Stream<Item = Bytes> + Send + 'static) -> Response {
    let body = Body::from_stream(events.map(Ok::<_, Infallible>));
    ([("content-type", "text/event-stream")], body).into_response()
}

fn event(message: Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

async fn answer(
    State(echo): State<Echo>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    echo.seen
        .lock()
        .unwrap()
        .push((method.clone(), headers.clone()));
    if method == Method::GET {
        let first = event(json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}));
        return sse(stream::once(async { first }).chain(stream::pending()));
    }
    if method == Method::DELETE {
        return StatusCode::OK.into_response();
    }
    let message: Value = serde_json::from_slice(&body).unwrap_or_default();
    let id = message["id"].clone();
    if id.is_null() {
        return StatusCode::ACCEPTED.into_response();
    }
    let result = |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result});
    let text = |text: String| result(json!({"content": [{"type": "text", "text": text}]}));
    let session = [("mcp-session-id", "session-1")];
    match message["params"]["name"].as_str().unwrap_or_default() {
        "echo_headers" => {
            let seen: serde_json::Map<String, Value> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("?"))))
                .collect();
            let hostile = [
                ("set-cookie", "broker_session=planted; Path=/"),
                ("www-authenticate", "Bearer realm=\"backend\""),
            ];
            let body = axum::Json(text(Value::Object(seen).to_string()));
            (session, hostile, body).into_response()
        }
        "fail" => axum::Json(result(json!({"content": [], "isError": true}))).into_response(),
        "stream" => {
            let progress = event(json!({"jsonrpc": "2.0", "method": "notifications/progress",
                "params": {"progressToken": "p", "progress": 1}}));
            let done = event(text("done".into()));
            let release = echo.release.clone();
            let second = async move {
                release.notified().await;
                done
            };
            sse(stream::once(async { progress }).chain(stream::once(second)))
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            axum::Json(text("late".into())).into_response()
        }
        "grumpy" => StatusCode::UNAUTHORIZED.into_response(),
        "" => (session, axum::Json(result(json!({})))).into_response(),
        _ => axum::Json(json!({"jsonrpc": "2.0", "id": id,
            "error": {"code": -32602, "message": "unknown tool"}}))
        .into_response(),
    }
}

fn call(tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": tool, "arguments": {}}})
}

/// A `tools/call` of `tool` at `path`.
async fn call_tool(flow: &Flow, path: &str, token: Option<&str>, tool: &str) -> reqwest::Response {
    send(flow, Method::POST, path, token, None, Some(&call(tool))).await
}

/// Opens a session at `path` (the backend answers `initialize` with
/// `session-1`): the id the client is given, sealed for its person.
async fn open_session(flow: &Flow, path: &str, token: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}});
    let answer = send(flow, Method::POST, path, Some(token), None, Some(&init)).await;
    assert_eq!(answer.status(), 200);
    let sealed = answer.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(sealed.starts_with("session-1."), "{sealed}");
    sealed
}

/// The message of a JSON-RPC error answer, checked for its HTTP status and
/// error code.
async fn rpc_error(answer: reqwest::Response, status: u16, code: i64) -> String {
    assert_eq!(answer.status(), status);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

fn challenge(response: &reqwest::Response) -> String {
    response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_backend_gets_mcp_headers_and_the_callers_identity_never_the_token() {
    let (echo, url) = Echo::start().await;
    let mut full = backend("/mcp/echo", &url);
    full.identity_headers = true;
    full.forward_token = true;
    let plain = backend("/mcp/plain", &url);
    let (_db, server, flow, store) = broker(&[(ALICE, Role::User)], vec![full, plain]).await;
    let resource = server.url("/mcp/echo");
    let token = flow
        .access_token_with(ALICE, &[("resource", &resource)])
        .await;
    let session = open_session(&flow, "/mcp/echo", &token).await;

    let answer = flow
        .http
        .post(server.url("/mcp/echo"))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("mcp-session-id", &session)
        .header("last-event-id", "41")
        .header("cookie", "broker_session=stolen")
        .header("x-forwarded-user", "spoofed")
        .header("x-forwarded-email", "spoofed@example.com")
        .header("connection", "keep-alive, x-private")
        .header("x-private", "1")
        .json(&call("echo_headers"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let kept = answer.headers();
    assert_eq!(
        kept["mcp-session-id"],
        session.as_str(),
        "sealed for the caller"
    );
    assert!(kept.get("set-cookie").is_none(), "{kept:?}");
    assert!(kept.get("www-authenticate").is_none(), "{kept:?}");

    let (method, seen) = echo.last();
    assert_eq!(method, Method::POST);
    for (name, value) in [
        ("accept", "application/json, text/event-stream"),
        ("content-type", "application/json"),
        ("mcp-protocol-version", "2025-06-18"),
        ("mcp-session-id", "session-1"),
        ("last-event-id", "41"),
        ("x-forwarded-email", ALICE),
    ] {
        assert_eq!(seen[name], value, "{name}");
    }
    let alice = store
        .user(&Email::parse(ALICE).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen["x-forwarded-user"], alice.user_id.as_str());
    assert!(
        seen.get("x-request-id").is_some(),
        "correlates with the broker's log"
    );
    for absent in ["cookie", "x-private"] {
        assert!(seen.get(absent).is_none(), "{absent}: {seen:?}");
    }
    for (name, value) in &seen {
        assert!(
            !value.to_str().unwrap_or_default().contains(&token),
            "the client's token crossed in {name}"
        );
    }
    // Instead: a JWT of the broker's for this backend alone.
    let authorization = seen["authorization"].to_str().unwrap();
    let jwt = authorization.strip_prefix("Bearer ").unwrap();
    let claims = verify_backend_jwt(&flow, jwt, &url).await;
    assert_eq!(claims.sub, alice.user_id);
    assert_eq!(claims.email, ALICE);
    assert_eq!(claims.scope, "mcp:tools");
    assert!(!claims.client_id.is_empty());
    assert_eq!(claims.exp - claims.iat, 60);
    // The backend's token is no good at the broker.
    let replayed = call_tool(&flow, "/mcp/echo", Some(jwt), "x").await;
    assert_eq!(replayed.status(), 401);

    // A backend without identity settings learns nothing of the caller.
    let token = flow
        .access_token_with(ALICE, &[("resource", &server.url("/mcp/plain"))])
        .await;
    let answer = call_tool(&flow, "/mcp/plain", Some(&token), "echo_headers").await;
    assert_eq!(answer.status(), 200);
    let (_, seen) = echo.last();
    for absent in ["authorization", "x-forwarded-user", "x-forwarded-email"] {
        assert!(seen.get(absent).is_none(), "{absent}: {seen:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn answers_stream_through_as_they_come() {
    let (echo, url) = Echo::start().await;
    let (_db, server, flow, _store) =
        broker(&[(ALICE, Role::User)], vec![backend("/mcp/echo", &url)]).await;
    let token = flow
        .access_token_with(ALICE, &[("resource", &server.url("/mcp/echo"))])
        .await;

    // The backend sends its result only after the test has seen the
    // progress event: a gateway that buffered would never deliver either.
    let mut answer = call_tool(&flow, "/mcp/echo", Some(&token), "stream").await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "text/event-stream");
    let first = read_events(&mut answer, 1).await;
    assert!(first.contains("notifications/progress"), "{first}");
    assert!(!first.contains("done"), "{first}");
    echo.release.notify_one();
    let second = read_events(&mut answer, 1).await;
    assert!(second.contains("\"text\":\"done\""), "{second}");
    assert!(
        answer.chunk().await.unwrap().is_none(),
        "the stream ends with the backend's"
    );

    // A GET stream stays open and delivers what the backend sends.
    let session = open_session(&flow, "/mcp/echo", &token).await;
    let mut listen = send(
        &flow,
        Method::GET,
        "/mcp/echo",
        Some(&token),
        Some(&session),
        None,
    )
    .await;
    assert_eq!(listen.status(), 200);
    assert!(read_events(&mut listen, 1).await.contains("list_changed"));
    assert_eq!(echo.last().0, Method::GET);
    drop(listen);

    let ended = send(
        &flow,
        Method::DELETE,
        "/mcp/echo",
        Some(&token),
        Some(&session),
        None,
    )
    .await;
    assert_eq!(ended.status(), 200);
    let (method, seen) = echo.last();
    assert_eq!(
        (method, &seen["mcp-session-id"]),
        (Method::DELETE, &"session-1".parse().unwrap())
    );
    server.stop().await;
}

#[tokio::test]
async fn a_session_id_works_only_for_the_person_and_backend_it_was_given_to() {
    let (echo, url) = Echo::start().await;
    let backends = vec![backend("/mcp/echo", &url), backend("/mcp/other", &url)];
    let users = [(ALICE, Role::User), (BOB, Role::User)];
    let (_db, server, flow, store) = broker(&users, backends).await;
    let echo_resource = server.url("/mcp/echo");
    let alice = flow
        .access_token_with(ALICE, &[("resource", &echo_resource)])
        .await;
    let bob = flow
        .access_token_with(BOB, &[("resource", &echo_resource)])
        .await;
    let alice_other = flow
        .access_token_with(ALICE, &[("resource", &server.url("/mcp/other"))])
        .await;
    let sealed = open_session(&flow, "/mcp/echo", &alice).await;
    let forged = format!("session-1.{}", "A".repeat(43));
    let reached = || echo.seen.lock().unwrap().len();
    let before = reached();

    let attempts = [
        (
            "Bob with Alice's session id",
            "/mcp/echo",
            &bob,
            sealed.as_str(),
        ),
        ("the backend's bare id", "/mcp/echo", &alice, "session-1"),
        ("a forged seal", "/mcp/echo", &alice, forged.as_str()),
        (
            "Alice's id at another backend",
            "/mcp/other",
            &alice_other,
            sealed.as_str(),
        ),
    ];
    for (attack, path, token, session) in attempts {
        for method in [Method::POST, Method::GET, Method::DELETE] {
            let message = (method == Method::POST).then(|| call("echo_headers"));
            let refused = send(
                &flow,
                method.clone(),
                path,
                Some(token),
                Some(session),
                message.as_ref(),
            )
            .await;
            let message = rpc_error(refused, 404, -32001).await;
            assert!(
                message.contains("start a new one"),
                "{attack} ({method}): {message}"
            );
        }
    }
    assert_eq!(reached(), before, "the backend saw none of them");

    // Alice's own id still works, and the backend gets its own id back.
    let mine = send(
        &flow,
        Method::POST,
        "/mcp/echo",
        Some(&alice),
        Some(&sealed),
        Some(&call("echo_headers")),
    )
    .await;
    assert_eq!(mine.status(), 200);
    assert_eq!(echo.last().1["mcp-session-id"], "session-1");
    let calls = tool_calls(&store, |calls| {
        has_call(calls, "/mcp/echo", "echo_headers", "refused")
    })
    .await;
    assert!(
        has_call(&calls, "/mcp/echo", "echo_headers", "refused"),
        "{calls:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_server_request_timeout_answers_in_json_rpc() {
    let (_echo, url) = Echo::start().await;
    let mut slow = backend("/mcp/slow", &url);
    slow.timeout = HumanDuration(Duration::from_secs(30));
    let (_db, server, flow, _store) = broker_with(&[(ALICE, Role::User)], vec![slow], |s| {
        s.server.request_timeout = HumanDuration(Duration::from_secs(1));
    })
    .await;
    let token = flow
        .access_token_with(ALICE, &[("resource", &server.url("/mcp/slow"))])
        .await;
    let late = call_tool(&flow, "/mcp/slow", Some(&token), "slow").await;
    let message = rpc_error(late, 408, -32600).await;
    assert!(message.contains("longer than the 1s"), "{message}");
    server.stop().await;
}

#[tokio::test]
async fn each_backend_is_a_resource_of_its_own() {
    let (_echo, url) = Echo::start().await;
    let backends = vec![backend("/mcp/echo", &url), backend("/mcp/other", &url)];
    let (_db, server, flow, _store) = broker(&[(ALICE, Role::User)], backends).await;
    let base = &server.base;
    let resource = format!("{base}/mcp/echo");

    let prm = flow
        .get_json("/.well-known/oauth-protected-resource/mcp/echo")
        .await;
    assert_eq!(prm["resource"], resource.as_str());
    assert_eq!(prm["authorization_servers"], json!([base]));
    assert_eq!(prm["scopes_supported"], json!(["mcp:tools"]));
    let asm = flow
        .get_json("/.well-known/oauth-authorization-server/mcp/echo")
        .await;
    assert_eq!(asm["issuer"], base.as_str());
    assert_eq!(
        flow.get_json("/.well-known/oauth-protected-resource/mcp")
            .await["resource"],
        format!("{base}/mcp")
    );

    let anonymous = call_tool(&flow, "/mcp/echo", None, "x").await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        challenge(&anonymous),
        format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp/echo\", scope=\"mcp:tools\"")
    );

    let for_echo = flow
        .access_token_with(ALICE, &[("resource", &resource)])
        .await;
    let builtin = flow.access_token(ALICE).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ok = call_tool(&flow, "/mcp/echo", Some(&for_echo), "x").await;
    assert_eq!(ok.status(), 200);
    // A token for backend A at backend B, at the built-in endpoint, and the
    // other way round: invalid_token, pointing at the right metadata.
    let elsewhere = call_tool(&flow, "/mcp/other", Some(&for_echo), "x").await;
    assert_eq!(elsewhere.status(), 401);
    let refused = challenge(&elsewhere);
    assert!(
        refused.starts_with("Bearer error=\"invalid_token\""),
        "{refused}"
    );
    assert!(
        refused.contains("oauth-protected-resource/mcp/other\""),
        "{refused}"
    );
    let at_builtin = flow
        .mcp(
            Some(&for_echo),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    assert_eq!(at_builtin.status, 401);
    assert!(at_builtin.challenge.unwrap().contains("invalid_token"));
    let builtin_at_backend = call_tool(&flow, "/mcp/echo", Some(&builtin), "x").await;
    assert_eq!(builtin_at_backend.status(), 401);

    // Only our resources can be asked for.
    let client = flow.public_client().await;
    let pkce = Pkce::new();
    let to = flow
        .get(&flow.authorize_url(
            &client,
            &pkce,
            &[("resource", "https://elsewhere.example/mcp")],
        ))
        .await;
    let redirect = url::Url::parse(&location(&to)).unwrap();
    assert_eq!(param(&redirect, "error").as_deref(), Some("invalid_target"));

    // The token endpoint keeps the audience, and userinfo and revocation
    // know backend tokens too.
    let redirect = flow
        .authorize_with(
            &client,
            &pkce,
            ALICE,
            &[("resource", &format!("{resource}/"))],
        )
        .await;
    let code = param(&redirect, "code").unwrap();
    let (status, tokens) = flow
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", support::flow::REDIRECT),
            ("code_verifier", &pkce.verifier),
            ("client_id", &client),
            ("resource", &server.url("/mcp/other")),
        ])
        .await;
    assert_eq!(
        (status.as_u16(), &tokens["error"]),
        (400, &json!("invalid_target")),
        "{tokens}"
    );
    let (status, tokens) = flow.redeem(&client, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap();
    let userinfo = flow
        .http
        .get(server.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.json::<Value>().await.unwrap()["email"], ALICE);
    let revoked = flow
        .http
        .post(server.url("/revoke"))
        .form(&[("token", token), ("client_id", &client)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let gone = support::eventually::within(Duration::from_secs(10), || async {
        let r = call_tool(&flow, "/mcp/echo", Some(token), "x").await;
        (r.status() == 401).then_some(())
    })
    .await;
    assert!(gone.is_some(), "a revoked backend token stops working");
    server.stop().await;
}

#[tokio::test]
async fn refusals_and_failures_are_clear_and_audited() {
    let (_echo, url) = Echo::start().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/mcp", listener.local_addr().unwrap())
    };
    let mut admins = backend("/mcp/admins", &url);
    admins.roles = vec![Role::Admin];
    let mut scoped = backend("/mcp/scoped", &url);
    scoped.scopes = vec!["mcp:tools".into(), "mcp:admin".into()];
    let mut slow = backend("/mcp/slow", &url);
    slow.timeout = HumanDuration(Duration::from_secs(1));
    let backends = vec![
        backend("/mcp/echo", &url),
        admins,
        scoped,
        backend("/mcp/down", &closed),
        slow,
    ];
    let people = [(ALICE, Role::User), (ADMIN, Role::Admin)];
    let (_db, server, flow, store) = broker(&people, backends).await;
    let token = |email: &'static str, path: &'static str| {
        let flow = &flow;
        let resource = server.url(path);
        async move {
            flow.access_token_with(email, &[("resource", &resource)])
                .await
        }
    };
    let post = |path: &'static str, token: String, tool: &'static str| {
        let flow = &flow;
        async move { call_tool(flow, path, Some(&token), tool).await }
    };

    let echo = token(ALICE, "/mcp/echo").await;
    for (tool, status) in [
        ("echo_headers", 200),
        ("fail", 200),
        ("nope", 200),
        ("grumpy", 502),
    ] {
        let answer = post("/mcp/echo", echo.clone(), tool).await;
        assert_eq!(answer.status(), status, "{tool}");
        if tool == "grumpy" {
            let body: Value = answer.json().await.unwrap();
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("backend echo refused the broker's credentials"),
                "{body}"
            );
        }
    }

    let refused = post("/mcp/admins", token(ALICE, "/mcp/admins").await, "x").await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.json::<Value>().await.unwrap(),
        json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32001,
            "message": "backend admins is not open to people whose role is user (it admits: admin)"}})
    );
    let admitted = post(
        "/mcp/admins",
        token(ADMIN, "/mcp/admins").await,
        "echo_headers",
    )
    .await;
    assert_eq!(admitted.status(), 200);

    let step_up = post("/mcp/scoped", token(ALICE, "/mcp/scoped").await, "x").await;
    assert_eq!(step_up.status(), 403);
    assert_eq!(
        challenge(&step_up),
        format!("Bearer error=\"insufficient_scope\", scope=\"mcp:tools mcp:admin\", resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp/scoped\"", server.base)
    );

    let down = post("/mcp/down", token(ALICE, "/mcp/down").await, "x").await;
    assert_eq!(down.status(), 502);
    assert_eq!(
        down.json::<Value>().await.unwrap(),
        json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32603, "message": "backend down is unreachable"}})
    );
    let started = Instant::now();
    let late = post("/mcp/slow", token(ALICE, "/mcp/slow").await, "slow").await;
    assert_eq!(late.status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let body: Value = late.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "backend slow did not answer within 1s"
    );

    let calls = tool_calls(&store, |calls| calls.len() >= 8).await;
    for (backend, tool, outcome) in [
        ("/mcp/echo", "echo_headers", "ok"),
        ("/mcp/echo", "fail", "error"),
        ("/mcp/echo", "nope", "refused"),
        ("/mcp/echo", "grumpy", "error"),
        ("/mcp/admins", "x", "refused"),
        ("/mcp/admins", "echo_headers", "ok"),
        ("/mcp/down", "x", "error"),
        ("/mcp/slow", "slow", "error"),
    ] {
        assert!(
            has_call(&calls, backend, tool, outcome),
            "{backend} {tool} {outcome}: {calls:?}"
        );
    }
    let metrics = flow.get_text("/metrics").await;
    assert!(
        metrics.contains("broker_gateway_requests_total{backend=\"/mcp/down\",status=\"502\"}"),
        "{metrics}"
    );
    server.stop().await;
}

#[test]
fn backends_are_read_from_the_config_file_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let load = |text: &str| {
        let path = support::write(dir.path(), "broker.toml", text);
        Settings::load(&Sources {
            file: Some(&path),
            env: Default::default(),
        })
    };
    let settings = load(
        "[[mcp.backends]]\npath = \"/mcp/github\"\nurl = \"http://github-mcp:8000/mcp\"\n\
         scopes = [\"mcp:tools\"]\nroles = [\"user\", \"admin\"]\nidentity_headers = true\n\n\
         [[mcp.backends]]\npath = \"/mcp/jira\"\nurl = \"https://jira.internal/mcp\"\n\
         forward_token = true\ntimeout = \"5s\"\n",
    )
    .unwrap();
    let [github, jira] = &settings.mcp.backends[..] else {
        panic!("two backends")
    };
    assert_eq!(github.roles, [Role::User, Role::Admin]);
    assert!(github.identity_headers && !github.forward_token);
    assert_eq!(github.timeout.0, Duration::from_secs(25));
    assert_eq!(jira.scopes, ["mcp:tools"]);
    assert!(jira.roles.is_empty() && jira.forward_token);
    assert_eq!(jira.timeout.0, Duration::from_secs(5));
    assert_eq!(
        settings.resources(),
        [
            "http://127.0.0.1:8080/mcp",
            "http://127.0.0.1:8080/mcp/github",
            "http://127.0.0.1:8080/mcp/jira"
        ]
    );

    let problems =
        load("[[mcp.backends]]\npath = \"/mcp/x\"\nurl = \"http://x/mcp\"\nroles = [\"root\"]\n")
            .unwrap_err()
            .0;
    assert!(
        problems[0].contains("\"root\" is not a role (use user or admin)")
            && problems[0].contains("mcp.backends[0]"),
        "{problems:?}"
    );
    let problems = load(
        "[[mcp.backends]]\npath = \"/mcp\"\nurl = \"http://127.0.0.1:8080/mcp\"\nscopes = [\"repo\"]\n",
    )
    .unwrap_err()
    .0;
    assert_eq!(problems.len(), 3, "{problems:?}");
    let problems = load("[[mcp.backends]]\npath = \"/mcp/x\"\nurl = \"http://x/mcp\"\npathh = 1\n")
        .unwrap_err()
        .0;
    assert!(problems.iter().any(|p| p.contains("pathh")), "{problems:?}");
}
