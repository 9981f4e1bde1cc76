//! `audit_log`: who did what, when, from where.

use serde_json::Value;

use super::{now, Store, StoreError};

/// One audit entry; `detail` is free-form JSON (never a secret).
pub struct AuditEvent<'a> {
    pub event: &'a str,
    pub email: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub detail: Value,
    pub ip: Option<String>,
}

impl Store {
    /// Writes the entry; a failure is logged, never passed on, because a
    /// lost audit line must not fail the request it describes.
    pub async fn audit(&self, e: AuditEvent<'_>) {
        let event = e.event;
        if let Err(error) = self.insert_audit(e).await {
            tracing::error!(%error, event, "cannot write the audit log");
        }
    }

    async fn insert_audit(&self, e: AuditEvent<'_>) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_log (at, event, email, client_id, detail, ip) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(now())
            .bind(e.event)
            .bind(e.email.map(str::to_owned))
            .bind(e.client_id.map(str::to_owned))
            .bind(e.detail.to_string())
            .bind(e.ip)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Events in order, newest last (for tests and `audit tail`).
    pub async fn audit_events(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, Option<String>, Value)>, StoreError> {
        use sqlx::Row;
        let rows =
            sqlx::query("SELECT event, email, detail FROM audit_log ORDER BY id DESC LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        let mut events = rows
            .iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                Ok((
                    r.try_get("event")?,
                    r.try_get("email")?,
                    serde_json::from_str(&detail).unwrap_or(Value::Null),
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        events.reverse();
        Ok(events)
    }
}
