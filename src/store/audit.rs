//! `audit_log`: who did what, when, from where.

use std::sync::LazyLock;

use serde_json::Value;

use super::{now, Backend, Store, StoreError};

/// One audit entry; `detail` is free-form JSON (never a secret).
pub struct AuditEvent<'a> {
    pub event: &'a str,
    pub email: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub detail: Value,
    pub ip: Option<String>,
}

/// One stored entry, as `audit tail` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub at: i64,
    pub event: String,
    pub email: Option<String>,
    pub client_id: Option<String>,
    pub detail: Value,
    pub ip: Option<String>,
}

/// Rows per INSERT of a batch, largest first: powers of two, so that any
/// batch is a few statements and each connection prepares at most these
/// eight (6 × 128 parameters stay far below SQLite's and PostgreSQL's limits).
const BATCH_ROWS: [usize; 8] = [128, 64, 32, 16, 8, 4, 2, 1];

/// `INSERT … VALUES (…), (…), …` for `BATCH_ROWS[size]` entries, built
/// once per size and engine.
fn insert_rows(backend: Backend, size: usize) -> &'static str {
    fn statements(placeholder: fn(usize) -> String) -> Vec<String> {
        BATCH_ROWS
            .iter()
            .map(|&rows| {
                let values: Vec<String> = (0..rows)
                    .map(|row| {
                        let columns: Vec<String> =
                            (1..=6).map(|c| placeholder(row * 6 + c)).collect();
                        format!("({})", columns.join(", "))
                    })
                    .collect();
                format!(
                    "INSERT INTO audit_log (at, event, email, client_id, detail, ip) VALUES {}",
                    values.join(", ")
                )
            })
            .collect()
    }
    // SQLite looks a named parameter up by walking the list of all of them,
    // and sqlx asks for every parameter's name: with `$n` a 768-parameter
    // statement cost ~300k steps to bind. Anonymous `?` are not in that list.
    static SQLITE: LazyLock<Vec<String>> = LazyLock::new(|| statements(|_| "?".to_owned()));
    static POSTGRES: LazyLock<Vec<String>> = LazyLock::new(|| statements(|n| format!("${n}")));
    match backend {
        Backend::Sqlite => &SQLITE[size],
        Backend::Postgres => &POSTGRES[size],
    }
}

impl Store {
    /// Writes the entry; a failure is logged, never passed on, because a
    /// lost audit line must not fail the request it describes.
    pub async fn audit(&self, e: AuditEvent<'_>) {
        let event = e.event;
        crate::metrics::audited(event, &e.detail);
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

    /// Writes many entries in one transaction (the batched tool-call log),
    /// many rows per statement: one round trip to the database's worker
    /// per statement is what a busy endpoint would otherwise pay per call.
    pub async fn audit_batch(&self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut rest = entries;
        while let Some(size) = BATCH_ROWS.iter().position(|&n| n <= rest.len()) {
            let (chunk, tail) = rest.split_at(BATCH_ROWS[size]);
            let mut query = sqlx::query(insert_rows(self.backend, size));
            for e in chunk {
                query = query
                    .bind(e.at)
                    .bind(&e.event)
                    .bind(e.email.clone())
                    .bind(e.client_id.clone())
                    .bind(e.detail.to_string())
                    .bind(e.ip.clone());
            }
            query.execute(&mut *tx).await?;
            rest = tail;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Entries since `since` (unix seconds), oldest first, optionally of
    /// one person, at most `limit` (the newest ones).
    pub async fn audit_since(
        &self,
        since: i64,
        email: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        use sqlx::Row;
        let of_person = if email.is_some() {
            "AND email = $3"
        } else {
            ""
        };
        let sql = format!(
            "SELECT at, event, email, client_id, detail, ip FROM audit_log \
             WHERE at >= $1 {of_person} ORDER BY id DESC LIMIT $2"
        );
        let mut query = sqlx::query(&sql).bind(since).bind(limit);
        if let Some(email) = email {
            query = query.bind(email.to_owned());
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut entries = rows
            .iter()
            .map(|r| {
                let detail: String = r.try_get("detail")?;
                Ok(AuditEntry {
                    at: r.try_get("at")?,
                    event: r.try_get("event")?,
                    email: r.try_get("email")?,
                    client_id: r.try_get("client_id")?,
                    detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
                    ip: r.try_get("ip")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        entries.reverse();
        Ok(entries)
    }

    /// Events in order, newest last (for tests).
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
