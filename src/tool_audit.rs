//! The audit log of tool calls, written in batches by a background task so
//! a tool call never waits for the database: calls are queued (and counted
//! in the metrics) at once, and the writer stores whatever has queued up in
//! one transaction.

use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use crate::store::{now, AuditEntry, Store};

/// Calls held while the database is slow; beyond this they are dropped
/// (and logged) rather than slowing the calls down.
const QUEUE: usize = 10_000;
const BATCH: usize = 500;

/// One finished tool call.
pub struct ToolCall {
    pub email: String,
    pub client_id: String,
    pub tool: String,
    /// `builtin`, or the gateway backend's path.
    pub backend: String,
    /// `ok`, `error` (the tool said so) or `refused` (bad arguments, no right).
    pub outcome: &'static str,
    pub duration: Duration,
}

#[derive(Clone)]
pub struct ToolAudit {
    queue: mpsc::Sender<AuditEntry>,
}

impl ToolAudit {
    /// The queue, and its writer running until every sender is gone.
    pub fn start(store: Store) -> ToolAudit {
        let (queue, mut incoming) = mpsc::channel::<AuditEntry>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while incoming.recv_many(&mut batch, BATCH).await > 0 {
                if let Err(e) = store.audit_batch(&batch).await {
                    tracing::error!(error = %e, lost = batch.len(), "cannot write tool calls to the audit log");
                }
                batch.clear();
            }
        });
        ToolAudit { queue }
    }

    pub fn record(&self, call: ToolCall) {
        let detail = json!({
            "tool": call.tool,
            "backend": call.backend,
            "outcome": call.outcome,
            "duration_ms": call.duration.as_millis() as u64,
        });
        crate::metrics::audited("tool_called", &detail);
        let entry = AuditEntry {
            at: now(),
            event: "tool_called".into(),
            email: Some(call.email),
            client_id: Some(call.client_id),
            detail,
            ip: None,
        };
        if self.queue.try_send(entry).is_err() {
            tracing::warn!("the tool-call audit queue is full; an entry was dropped");
        }
    }
}
