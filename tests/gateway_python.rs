//! The gateway in front of a real MCP server: the official Python SDK's
//! (PyPI `mcp`, `MCPServer`, formerly FastMCP; tests/python/gateway_backend.py)
//! over Streamable HTTP, stateful, answering in SSE. Through the broker:
//! initialize with its Mcp-Session-Id, tools/list, tools/call, an SSE answer
//! that streams, the session's GET stream, DELETE; the backend never sees
//! the client's token, only the broker's JWT for it and the identity headers.
//!
//! Needs Python 3 and the SDK: the virtualenv of scripts/python-sdk-test.sh
//! (PY_VENV, default ~/.cache/mcp-auth-broker/venv), created and filled the
//! same way when missing. Without Python the test fails; it never skips.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mcp_auth_broker::allowlist::Role;
use reqwest::Method;
use serde_json::{json, Value};
use support::audit::{has_call, tool_calls};
use support::gateway::{
    backend, broker, messages, read_events, send, verify_backend_jwt, PROTOCOL,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// As scripts/python-sdk-test.sh pins it.
const MCP_VERSION: &str = "2.3.0";
const ALICE: &str = "alice@example.com";

/// The virtualenv's interpreter, with the pinned SDK installed.
fn python() -> PathBuf {
    // One installer at a time within this process.
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let venv = std::env::var_os("PY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/mcp-auth-broker/venv")
        });
    let python = venv.join("bin/python");
    let run = |program: &std::path::Path, args: &[&str]| {
        let status = std::process::Command::new(program)
            .args(args)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {}: {e} (Python 3 is needed for this test)",
                    program.display()
                )
            });
        assert!(
            status.success(),
            "{} {args:?} failed: {status}",
            program.display()
        );
    };
    if !python.exists() {
        let system = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
        run(
            std::path::Path::new(&system),
            &["-m", "venv", venv.to_str().unwrap()],
        );
    }
    let installed = std::process::Command::new(&python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('mcp'))",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if installed != MCP_VERSION {
        let pin = format!("mcp=={MCP_VERSION}");
        run(
            &python,
            &[
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                &pin,
            ],
        );
    }
    python
}

/// The Python backend on a free loopback port; killed when dropped.
struct PythonBackend {
    url: String,
    _child: Child,
}

impl PythonBackend {
    async fn start() -> PythonBackend {
        let python = tokio::task::spawn_blocking(python).await.unwrap();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/gateway_backend.py"
        );
        let mut child = Command::new(&python)
            .arg(script)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(port) = line.strip_prefix("PORT ") {
                    return Some(port.trim().parse::<u16>().unwrap());
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(port) = port else {
            let _ = child.start_kill();
            let mut stderr = String::new();
            let _ = child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .await;
            panic!("the Python MCP backend did not start:\n{stderr}");
        };
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        PythonBackend {
            url: format!("http://127.0.0.1:{port}/mcp"),
            _child: child,
        }
    }
}

fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn tool(id: u64, name: &str, arguments: Value) -> Value {
    request(
        id,
        "tools/call",
        json!({"name": name, "arguments": arguments}),
    )
}

/// The text of the tool result among an answer's messages.
fn result_text(messages: &[Value]) -> String {
    let result = messages
        .iter()
        .find(|m| m.get("result").is_some())
        .unwrap_or_else(|| panic!("no result in {messages:?}"));
    result["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_python_sdk_server_behind_the_gateway() {
    let python = PythonBackend::start().await;
    let mut py = backend("/mcp/py", &python.url);
    py.identity_headers = true;
    py.forward_token = true;
    let other = backend("/mcp/other", &python.url);
    let (_db, server, flow, store) = broker(&[(ALICE, Role::User)], vec![py, other]).await;
    let token = flow
        .access_token_with(ALICE, &[("resource", &server.url("/mcp/py"))])
        .await;
    let post = |message: Value, session: Option<String>| {
        let (flow, token) = (&flow, &token);
        async move {
            send(
                flow,
                Method::POST,
                "/mcp/py",
                Some(token),
                session.as_deref(),
                Some(&message),
            )
            .await
        }
    };

    // initialize: the backend's session id comes back through the gateway.
    let init = post(
        request(
            1,
            "initialize",
            json!({"protocolVersion": PROTOCOL, "capabilities": {},
            "clientInfo": {"name": "gateway-test", "version": "0"}}),
        ),
        None,
    )
    .await;
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let init = messages(init).await;
    assert_eq!(
        init[0]["result"]["serverInfo"]["name"], "gateway-test-backend",
        "{init:?}"
    );
    assert_eq!(init[0]["result"]["protocolVersion"], PROTOCOL);
    let session = Some(session);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post(initialized, session.clone()).await.status(), 202);

    let listed = messages(post(request(2, "tools/list", json!({})), session.clone()).await).await;
    let names: Vec<&str> = listed[0]["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed:?}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in ["seen_headers", "echo", "ticks", "announce", "fail"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }

    let echoed = post(tool(3, "echo", json!({"text": "héllo"})), session.clone()).await;
    assert_eq!(result_text(&messages(echoed).await), "héllo");

    // What the backend saw: the broker's JWT and the identity, not the token.
    let seen = post(tool(4, "seen_headers", json!({})), session.clone()).await;
    let seen: Value = serde_json::from_str(&result_text(&messages(seen).await)).unwrap();
    assert!(
        !seen.to_string().contains(&token),
        "the client's token crossed: {seen}"
    );
    assert_eq!(seen["x-forwarded-email"], ALICE);
    // The client holds the backend's id sealed for Alice; the backend gets
    // its own id back.
    let backend_session = seen["mcp-session-id"].as_str().unwrap();
    let sealed = session.as_deref().unwrap();
    assert_ne!(sealed, backend_session);
    assert!(
        sealed.starts_with(&format!("{backend_session}.")),
        "{sealed}"
    );
    let jwt = seen["authorization"]
        .as_str()
        .unwrap()
        .strip_prefix("Bearer ")
        .unwrap();
    let claims = verify_backend_jwt(&flow, jwt, &python.url).await;
    assert_eq!(
        (claims.email.as_str(), claims.sub.as_str()),
        (ALICE, seen["x-forwarded-user"].as_str().unwrap())
    );
    // The same check by the backend itself, with PyJWT and the JWKS.
    let verified = post(
        tool(8, "whoami", json!({"broker": server.base})),
        session.clone(),
    )
    .await;
    let verified: Value = serde_json::from_str(&result_text(&messages(verified).await)).unwrap();
    assert_eq!(verified["email"], ALICE);
    assert_eq!(verified["aud"], python.url.as_str());

    // An SSE answer streams: the progress notification arrives while the
    // tool is still pausing, well before its result.
    let mut ticking = post(
        request(
            5,
            "tools/call",
            json!({"name": "ticks", "arguments": {"pause_ms": 1500},
            "_meta": {"progressToken": "t1"}}),
        ),
        session.clone(),
    )
    .await;
    assert_eq!(ticking.status(), 200);
    assert!(ticking.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let progress = read_events(&mut ticking, 1).await;
    let progressed = Instant::now();
    assert!(
        progress.contains("notifications/progress") && progress.contains("first tick"),
        "{progress}"
    );
    let done = read_events(&mut ticking, 1).await;
    assert!(done.contains("\"done\""), "{done}");
    assert!(
        progressed.elapsed() >= Duration::from_secs(1),
        "the result came with the progress: buffered"
    );

    // The session's GET stream: the backend sends its headers with the first
    // event, which `announce` causes.
    let listening = {
        let (flow, token, session) = (flow.http.clone(), token.clone(), session.clone().unwrap());
        let url = server.url("/mcp/py");
        tokio::spawn(async move {
            flow.get(url)
                .bearer_auth(token)
                .header("accept", "text/event-stream")
                .header("mcp-protocol-version", PROTOCOL)
                .header("mcp-session-id", session)
                .send()
                .await
                .unwrap()
        })
    };
    let mut stream = None;
    for id in 10..60 {
        let announced = post(tool(id, "announce", json!({})), session.clone()).await;
        assert_eq!(result_text(&messages(announced).await), "announced");
        tokio::time::sleep(Duration::from_millis(100)).await;
        if listening.is_finished() {
            stream = Some(listening.await.unwrap());
            break;
        }
    }
    let mut stream = stream.expect("the GET stream answered once the backend had news");
    assert_eq!(stream.status(), 200);
    assert!(read_events(&mut stream, 1)
        .await
        .contains("notifications/tools/list_changed"));
    drop(stream);

    // A token for this backend is refused at another one.
    let elsewhere = send(
        &flow,
        Method::POST,
        "/mcp/other",
        Some(&token),
        None,
        Some(&request(6, "tools/list", json!({}))),
    )
    .await;
    assert_eq!(elsewhere.status(), 401);

    // DELETE ends the session at the backend.
    let ended = send(
        &flow,
        Method::DELETE,
        "/mcp/py",
        Some(&token),
        session.as_deref(),
        None,
    )
    .await;
    assert_eq!(ended.status(), 200);
    let after = post(request(7, "tools/list", json!({})), session.clone()).await;
    assert_eq!(after.status(), 404, "the backend forgot the session");

    let calls = tool_calls(&store, |calls| {
        ["echo", "seen_headers", "ticks"]
            .iter()
            .all(|t| has_call(calls, "/mcp/py", t, "ok"))
    })
    .await;
    assert!(calls.iter().all(|c| c["backend"] == "/mcp/py"), "{calls:?}");
    server.stop().await;
}
