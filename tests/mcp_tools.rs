//! The built-in tools: `echo`, `server_time`, the admin-only allowlist
//! tools behind role admin + scope mcp:admin (with the step-up challenge),
//! argument validation, and the `tool_called` audit entries.

mod support;

use mcp_auth_broker::allowlist::{Email, Role, Status, UserChange};
use serde_json::{json, Value};
use support::audit::{has_call, stored_tool_calls, tool_calls};
use support::flow::{location, param, Flow, McpReply, Pkce};

const ADMIN: &str = "admin@example.com";
const ALICE: &str = "alice@example.com";

/// A token for `email` with exactly `scope`.
async fn token_with_scope(flow: &Flow, email: &str, scope: &str) -> String {
    let client = flow.public_client().await;
    let pkce = Pkce::new();
    let consent = flow
        .login(
            &flow.authorize_url(&client, &pkce, &[("scope", scope)]),
            email,
            true,
        )
        .await
        .text()
        .await
        .unwrap();
    let done = flow.decide(&consent, "allow").await;
    let code = param(&url::Url::parse(&location(&done)).unwrap(), "code").unwrap();
    let (status, tokens) = flow.redeem(&client, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], scope);
    tokens["access_token"].as_str().unwrap().to_owned()
}

async fn call(flow: &Flow, token: &str, tool: &str, arguments: Value) -> McpReply {
    flow.mcp(
        Some(token),
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}),
    )
    .await
}

fn text(reply: &McpReply) -> &str {
    reply.body["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or("")
}

fn is_error(reply: &McpReply) -> bool {
    reply.body["result"]["isError"] == json!(true)
}

#[tokio::test]
async fn everyday_tools_answer_and_validate_their_arguments() {
    let (db, server, flow) = support::dev_broker(&[ALICE]).await;
    let token = flow.access_token(ALICE).await;
    let token = token["access_token"].as_str().unwrap();

    let listed = flow
        .mcp(
            Some(token),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    let names: Vec<&str> = listed.body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in ["whoami", "echo", "server_time", "allowlist_add"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }

    let echoed = call(&flow, token, "echo", json!({"text": "héllo"})).await;
    assert_eq!(text(&echoed), "héllo");
    let time: Value =
        serde_json::from_str(text(&call(&flow, token, "server_time", json!({})).await)).unwrap();
    let unix = time["unix"].as_i64().unwrap();
    assert!((unix - mcp_auth_broker::store::now()).abs() < 5);

    // Bad arguments: a tool error that says what is wrong.
    for (bad, says) in [
        (json!({}), "missing field `text`"),
        (json!({"text": 5}), "invalid type"),
    ] {
        let reply = call(&flow, token, "echo", bad.clone()).await;
        assert_eq!(reply.status, 200);
        assert!(
            is_error(&reply) && text(&reply).contains(says),
            "{bad}: {:?}",
            reply.body
        );
    }
    let unknown = call(&flow, token, "no_such_tool", json!({})).await;
    assert!(unknown.body["error"].is_object(), "{:?}", unknown.body);

    // Every call is in the audit log, written in the background.
    let store = db.store().await;
    tool_calls(&store, |calls| {
        has_call(calls, "builtin", "echo", "ok")
            && has_call(calls, "builtin", "echo", "error")
            && has_call(calls, "builtin", "no_such_tool", "refused")
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn allowlist_tools_need_the_admin_role_and_the_admin_scope() {
    let (db, server, flow) = support::dev_broker(&[ALICE]).await;
    let store = db.store().await;
    store
        .upsert_user(
            &Email::parse(ADMIN).unwrap(),
            &UserChange {
                role: Some(Role::Admin),
                ..UserChange::default()
            },
        )
        .await
        .unwrap();

    // Without mcp:admin: the step-up challenge, at the HTTP level.
    let plain = token_with_scope(&flow, ADMIN, "mcp:tools").await;
    let reply = call(&flow, &plain, "allowlist_list", json!({})).await;
    assert_eq!(reply.status, 403);
    let challenge = reply.challenge.unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\", scope=\"mcp:tools mcp:admin\", resource_metadata=\""),
        "{challenge}"
    );
    // A name hidden behind a JSON escape passes the HTTP check but meets
    // the tool's own: a tool error, and nothing changes.
    let escaped = flow
        .http
        .post(flow.url("/mcp"))
        .bearer_auth(&plain)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .body(r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"allowlist\u005fadd","arguments":{"email":"mallory@example.com"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(escaped.status(), 200);
    let body: Value = escaped.json().await.unwrap();
    assert_eq!(body["result"]["isError"], json!(true), "{body}");
    assert!(
        body.to_string().contains("lacks the mcp:admin scope"),
        "{body}"
    );
    assert!(store
        .user(&Email::parse("mallory@example.com").unwrap())
        .await
        .unwrap()
        .is_none());
    // Other tools still work with that token.
    assert_eq!(
        text(&call(&flow, &plain, "echo", json!({"text": "x"})).await),
        "x"
    );

    // With it, an admin manages the allowlist.
    let admin = token_with_scope(&flow, ADMIN, "mcp:tools mcp:admin").await;
    let added = call(
        &flow,
        &admin,
        "allowlist_add",
        json!({"email": "Bob@Example.com", "name": "Bob", "role": "user"}),
    )
    .await;
    assert!(!is_error(&added), "{:?}", added.body);
    assert!(
        text(&added).contains("added bob@example.com"),
        "{}",
        text(&added)
    );
    let bob = Email::parse("bob@example.com").unwrap();
    assert!(store.user(&bob).await.unwrap().is_some());
    let suspended = call(
        &flow,
        &admin,
        "allowlist_suspend",
        json!({"email": "bob@example.com"}),
    )
    .await;
    assert!(
        text(&suspended).contains("suspended"),
        "{}",
        text(&suspended)
    );
    assert_eq!(
        store.user(&bob).await.unwrap().unwrap().status,
        Status::Suspended
    );
    call(
        &flow,
        &admin,
        "allowlist_activate",
        json!({"email": "bob@example.com"}),
    )
    .await;
    assert_eq!(
        store.user(&bob).await.unwrap().unwrap().status,
        Status::Active
    );
    let list = call(&flow, &admin, "allowlist_list", json!({})).await;
    assert!(text(&list).contains("bob@example.com"), "{}", text(&list));
    let missing = call(
        &flow,
        &admin,
        "allowlist_suspend",
        json!({"email": "nobody@example.com"}),
    )
    .await;
    assert!(is_error(&missing) && text(&missing).contains("not on the allowlist"));
    let bad_role = call(
        &flow,
        &admin,
        "allowlist_add",
        json!({"email": "c@example.com", "role": "root"}),
    )
    .await;
    assert!(
        is_error(&bad_role) && text(&bad_role).contains("expected `user` or `admin`"),
        "{:?}",
        bad_role.body
    );

    // A person whose role is user gets a tool error even with the scope.
    let alice = token_with_scope(&flow, ALICE, "mcp:tools mcp:admin").await;
    let refused = call(
        &flow,
        &alice,
        "allowlist_add",
        json!({"email": "eve@example.com"}),
    )
    .await;
    assert_eq!(refused.status, 200);
    assert!(
        is_error(&refused) && text(&refused).contains("admin role"),
        "{:?}",
        refused.body
    );
    assert!(store
        .user(&Email::parse("eve@example.com").unwrap())
        .await
        .unwrap()
        .is_none());
    server.stop().await;
}

#[tokio::test]
async fn tool_calls_made_just_before_shutdown_are_in_the_audit_log() {
    let (db, server, flow) = support::dev_broker(&[ALICE]).await;
    let token = flow.access_token_with(ALICE, &[]).await;
    for n in 0..3 {
        let reply = call(
            &flow,
            &token,
            "echo",
            json!({ "text": format!("last words {n}") }),
        )
        .await;
        assert_eq!(reply.status, 200);
    }
    // No waiting: the writer lingers to batch, and shutdown must not lose
    // what it holds.
    server.stop().await;
    let store = db.store().await;
    let calls = stored_tool_calls(&store).await;
    assert_eq!(calls.len(), 3, "{calls:?}");
}
