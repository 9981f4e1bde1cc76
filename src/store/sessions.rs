//! `browser_sessions`: who a browser is signed in as, between logins.

use sqlx::Row;

use super::{Store, StoreError};

/// A live broker session.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    pub user_id: String,
    pub upstream_id: String,
}

impl Store {
    pub async fn start_session(
        &self,
        id_hash: &str,
        session: &BrowserSession,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO browser_sessions (id_hash, user_id, upstream_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(&session.user_id)
        .bind(&session.upstream_id)
        .bind(created_at)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<BrowserSession>, StoreError> {
        let row = sqlx::query(
            "SELECT user_id, upstream_id FROM browser_sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| -> Result<_, sqlx::Error> {
                Ok(BrowserSession {
                    user_id: r.try_get("user_id")?,
                    upstream_id: r.try_get("upstream_id")?,
                })
            })
            .transpose()?)
    }

    pub async fn end_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM browser_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
