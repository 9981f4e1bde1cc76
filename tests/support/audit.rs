//! The `tool_called` audit entries, which a background writer stores.

use std::time::{Duration, Instant};

use mcp_auth_broker::store::Store;
use serde_json::Value;

/// The `tool_called` entries, once `done` says all expected ones are in
/// (they are written in the background).
pub async fn tool_calls(store: &Store, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let calls = stored_tool_calls(store).await;
        if done(&calls) {
            return calls;
        }
        assert!(
            Instant::now() < deadline,
            "tool calls not audited: {calls:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `tool_called` entries stored so far (the newest 500 entries).
pub async fn stored_tool_calls(store: &Store) -> Vec<Value> {
    store
        .audit_events(500)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.0 == "tool_called")
        .map(|e| e.2)
        .collect()
}

/// Whether `calls` has one of `tool` through `backend` with `outcome`.
pub fn has_call(calls: &[Value], backend: &str, tool: &str, outcome: &str) -> bool {
    calls.iter().any(|d| {
        d["backend"] == backend
            && d["tool"] == tool
            && d["outcome"] == outcome
            && d["duration_ms"].is_u64()
    })
}
