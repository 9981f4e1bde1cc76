//! `allowed_users`: the people who may log in.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::{now, parse_column, retrying, text, Store, StoreError};
use crate::allowlist::{AllowedUser, Email, ImportRow, Status, Upsert, UserChange};

pub(super) const COLUMNS: &str = "user_id, email, name, role, status, provider, provider_subject, \
                       created_at, updated_at, last_login_at";

/// Counts of what an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
}

impl Store {
    pub async fn user(&self, email: &Email) -> Result<Option<AllowedUser>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(find(&mut conn, email).await?)
    }

    pub async fn users(&self) -> Result<Vec<AllowedUser>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM allowed_users ORDER BY email"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Adds the person, or applies `change` to their existing entry.
    pub async fn upsert_user(
        &self,
        email: &Email,
        change: &UserChange,
    ) -> Result<Upsert, StoreError> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let outcome = upsert(&mut tx, email, change).await?;
            tx.commit().await?;
            Ok(outcome)
        })
        .await
    }

    /// Applies every row in one transaction: all of them or none.
    pub async fn import_users(&self, rows: &[ImportRow]) -> Result<ImportReport, StoreError> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let mut report = ImportReport::default();
            for row in rows {
                match upsert(&mut tx, &row.email, &row.change).await? {
                    Upsert::Added => report.added += 1,
                    Upsert::Updated => report.updated += 1,
                    Upsert::Unchanged => report.unchanged += 1,
                }
            }
            tx.commit().await?;
            Ok(report)
        })
        .await
    }

    /// `Ok(None)` when the email is not on the allowlist.
    pub async fn set_user_status(
        &self,
        email: &Email,
        status: Status,
    ) -> Result<Option<Upsert>, StoreError> {
        let change = UserChange {
            status: Some(status),
            ..UserChange::default()
        };
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            if find(&mut tx, email).await?.is_none() {
                return Ok(None);
            }
            let outcome = upsert(&mut tx, email, &change).await?;
            tx.commit().await?;
            Ok(Some(outcome))
        })
        .await
    }

    /// `Ok(false)` when the email was not on the allowlist.
    pub async fn remove_user(&self, email: &Email) -> Result<bool, StoreError> {
        let done = retrying(|| {
            sqlx::query("DELETE FROM allowed_users WHERE email = $1")
                .bind(email.as_str())
                .execute(&self.pool)
        })
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

async fn find(conn: &mut AnyConnection, email: &Email) -> Result<Option<AllowedUser>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM allowed_users WHERE email = $1"
    ))
    .bind(email.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

async fn upsert(
    conn: &mut AnyConnection,
    email: &Email,
    change: &UserChange,
) -> Result<Upsert, sqlx::Error> {
    let now = now();
    let Some(current) = find(conn, email).await? else {
        sqlx::query(
            "INSERT INTO allowed_users (user_id, email, name, role, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(email.as_str())
        .bind(change.name.clone())
        .bind(change.role.unwrap_or_default().as_str())
        .bind(change.status.unwrap_or_default().as_str())
        .bind(now)
        .execute(&mut *conn)
        .await?;
        return Ok(Upsert::Added);
    };
    let name = change.name.clone().or(current.name.clone());
    let role = change.role.unwrap_or(current.role);
    let status = change.status.unwrap_or(current.status);
    if name == current.name && role == current.role && status == current.status {
        return Ok(Upsert::Unchanged);
    }
    sqlx::query("UPDATE allowed_users SET name = $1, role = $2, status = $3, updated_at = $4 WHERE user_id = $5")
        .bind(name)
        .bind(role.as_str())
        .bind(status.as_str())
        .bind(now)
        .bind(current.user_id)
        .execute(&mut *conn)
        .await?;
    Ok(Upsert::Updated)
}

pub(super) fn from_row(row: &AnyRow) -> Result<AllowedUser, sqlx::Error> {
    Ok(AllowedUser {
        user_id: text(row, "user_id")?,
        email: parse_column(row, "email")?,
        name: row.try_get("name")?,
        role: parse_column(row, "role")?,
        status: parse_column(row, "status")?,
        provider: row.try_get("provider")?,
        provider_subject: row.try_get("provider_subject")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_login_at: row.try_get("last_login_at")?,
    })
}

impl Store {
    pub async fn user_by_id(&self, user_id: &str) -> Result<Option<AllowedUser>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM allowed_users WHERE user_id = $1"
        ))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Stamps the login and remembers the first provider identity seen.
    pub async fn record_login(
        &self,
        user_id: &str,
        provider: &str,
        subject: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE allowed_users SET last_login_at = $1, provider = COALESCE(provider, $2), \
             provider_subject = COALESCE(provider_subject, $3) WHERE user_id = $4",
        )
        .bind(at)
        .bind(provider)
        .bind(subject)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
