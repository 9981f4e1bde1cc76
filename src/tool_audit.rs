//! The audit log of tool calls, written in batches by a background task so
//! a tool call never waits for the database: calls are queued (and counted
//! in the metrics) at once, and the writer stores whatever has queued up in
//! one transaction, then lingers a moment so that a busy endpoint commits a
//! few large transactions a second rather than one per call.

use std::time::Duration;

use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::store::{now, AuditEntry, Store};

/// Calls held while the database is slow; beyond this they are dropped
/// (and logged) rather than slowing the calls down.
const QUEUE: usize = 10_000;
const BATCH: usize = 1_000;
/// How long the writer lets calls gather after a partial batch. Small next
/// to what anyone waits for before reading the log; `flush` skips it.
const LINGER: Duration = Duration::from_millis(100);

enum Message {
    Call(AuditEntry),
    /// Answered once everything queued before it is stored.
    Flush(oneshot::Sender<()>),
}

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
    queue: mpsc::Sender<Message>,
}

impl ToolAudit {
    /// The queue, and its writer running until every sender is gone.
    pub fn start(store: Store) -> ToolAudit {
        let (queue, incoming) = mpsc::channel::<Message>(QUEUE);
        tokio::spawn(write(store, incoming));
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
        if self.queue.try_send(Message::Call(entry)).is_err() {
            tracing::warn!("the tool-call audit queue is full; an entry was dropped");
        }
    }

    /// Waits until every call recorded so far is stored (or its write has
    /// failed and been logged): at shutdown, before the pool closes.
    pub async fn flush(&self) {
        let (done, stored) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = stored.await;
        }
    }
}

async fn write(store: Store, mut incoming: mpsc::Receiver<Message>) {
    let mut messages = Vec::with_capacity(BATCH);
    let mut entries = Vec::with_capacity(BATCH);
    let mut flushed = Vec::new();
    loop {
        let received = incoming.recv_many(&mut messages, BATCH).await;
        if received == 0 {
            return;
        }
        for message in messages.drain(..) {
            match message {
                Message::Call(entry) => entries.push(entry),
                Message::Flush(done) => flushed.push(done),
            }
        }
        if !entries.is_empty() {
            if let Err(e) = store.audit_batch(&entries).await {
                tracing::error!(error = %e, lost = entries.len(), "cannot write tool calls to the audit log");
            }
            entries.clear();
        }
        let asked = !flushed.is_empty();
        for done in flushed.drain(..) {
            let _ = done.send(());
        }
        if received < BATCH && !asked {
            tokio::time::sleep(LINGER).await;
        }
    }
}
