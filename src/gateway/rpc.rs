//! The little the gateway reads of the JSON-RPC it relays: a request's id
//! (for its own error answers) and the tools it calls (for the audit log),
//! and the outcome of a small JSON answer. Anything else passes untouched.

use serde::Deserialize;
use serde_json::Value;

/// Longest tool name written to the audit log as is.
const TOOL_NAME_MAX: usize = 128;

/// What a request body says, as far as the gateway cares.
#[derive(Debug, Default, PartialEq)]
pub struct Inspected {
    /// The id of a single request; `null` for a notification, a batch or
    /// something that is not JSON-RPC.
    pub id: Value,
    /// The tool of every `tools/call` in it.
    pub tool_calls: Vec<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<Params>,
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    name: Option<Value>,
}

impl Message {
    fn tool_call(&self) -> Option<String> {
        if self.method.as_deref() != Some("tools/call") {
            return None;
        }
        let name = match self.params.as_ref().and_then(|p| p.name.as_ref()) {
            Some(Value::String(name)) => name.chars().take(TOOL_NAME_MAX).collect(),
            _ => "(no name)".to_owned(),
        };
        Some(name)
    }
}

/// Reads one JSON-RPC message or a batch of them; never fails.
pub fn inspect(body: &[u8]) -> Inspected {
    // Batch first: serde would also read a struct from an array.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Body {
        Batch(Vec<Message>),
        One(Message),
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(Body::One(message)) => Inspected {
            tool_calls: message.tool_call().into_iter().collect(),
            id: message.id,
        },
        Ok(Body::Batch(messages)) => Inspected {
            id: Value::Null,
            tool_calls: messages.iter().filter_map(Message::tool_call).collect(),
        },
        Err(_) => Inspected::default(),
    }
}

/// The audit outcome of a JSON answer: `refused` for a JSON-RPC error
/// (unknown tool, bad arguments), `error` for a tool result with
/// `isError`, else `ok`. In a batch, the worst answer counts.
pub fn outcome_of_answer(body: &[u8]) -> &'static str {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default)]
        error: Option<Value>,
        #[serde(default)]
        result: Option<ToolResult>,
    }
    #[derive(Deserialize)]
    struct ToolResult {
        #[serde(default, rename = "isError")]
        is_error: Option<bool>,
    }
    let of = |a: &Answer| {
        if a.error.is_some() {
            "refused"
        } else if a.result.as_ref().is_some_and(|r| r.is_error == Some(true)) {
            "error"
        } else {
            "ok"
        }
    };
    // Batch first: serde would also read a struct from an array.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Body {
        Batch(Vec<Answer>),
        One(Answer),
    }
    let outcomes: Vec<&str> = match serde_json::from_slice::<Body>(body) {
        Ok(Body::Batch(all)) => all.iter().map(of).collect(),
        Ok(Body::One(one)) => vec![of(&one)],
        Err(_) => Vec::new(),
    };
    ["refused", "error"]
        .into_iter()
        .find(|worst| outcomes.contains(worst))
        .unwrap_or("ok")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_id_and_the_tools_called() {
        let call = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{}}}"#;
        assert_eq!(
            inspect(call),
            Inspected {
                id: json!(7),
                tool_calls: vec!["search".into()]
            }
        );
        let list = br#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#;
        assert_eq!(inspect(list).id, json!("a"));
        assert!(inspect(list).tool_calls.is_empty());
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},
            {"jsonrpc":"2.0","method":"notifications/initialized"},
            {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":5}}]"#;
        assert_eq!(
            inspect(batch),
            Inspected {
                id: Value::Null,
                tool_calls: vec!["a".into(), "(no name)".into()]
            }
        );
        for junk in [&b""[..], b"{", b"[1,2]", b"\"x\"", b"{\"method\":5}"] {
            assert_eq!(inspect(junk), Inspected::default());
        }
        let long = format!(
            r#"{{"id":1,"method":"tools/call","params":{{"name":"{}"}}}}"#,
            "x".repeat(1000)
        );
        assert_eq!(inspect(long.as_bytes()).tool_calls[0].len(), TOOL_NAME_MAX);
    }

    #[test]
    fn outcome_of_an_answer() {
        for (answer, outcome) in [
            (
                json!({"jsonrpc":"2.0","id":1,"result":{"content":[]}}),
                "ok",
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":false}}),
                "ok",
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}),
                "error",
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"no"}}),
                "refused",
            ),
            (
                json!([{"id":1,"result":{}},{"id":2,"result":{"isError":true}}]),
                "error",
            ),
            (json!("not an answer"), "ok"),
        ] {
            assert_eq!(
                outcome_of_answer(answer.to_string().as_bytes()),
                outcome,
                "{answer}"
            );
        }
    }
}
