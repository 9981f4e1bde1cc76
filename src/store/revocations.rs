//! What the revocation view (`crate::revocation`) reads: the rows of its
//! four sources stamped at or after a cursor, and the withdrawal of one
//! person's grant to one client.

use sqlx::Row;

use super::users::{from_row, COLUMNS};
use super::{retrying, Store, StoreError};
use crate::allowlist::AllowedUser;

/// Per source, the oldest timestamp a poll reads (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeCursors {
    pub revoked_jtis: i64,
    pub removed_users: i64,
    pub users: i64,
    pub revoked_grants: i64,
}

impl ChangeCursors {
    /// Reads every row: a full load.
    pub const EVERYTHING: ChangeCursors = ChangeCursors {
        revoked_jtis: i64::MIN,
        removed_users: i64::MIN,
        users: i64::MIN,
        revoked_grants: i64::MIN,
    };
}

#[derive(Debug, Clone)]
pub struct RevokedJti {
    pub jti: String,
    pub expires_at: i64,
    pub revoked_at: i64,
}

#[derive(Debug, Clone)]
pub struct RemovedUser {
    pub user_id: String,
    pub removed_at: i64,
}

#[derive(Debug, Clone)]
pub struct RevokedGrant {
    pub user_id: String,
    pub client_id: String,
    pub revoked_at: i64,
}

/// Rows of each source stamped at or after its cursor.
#[derive(Debug, Default)]
pub struct Changes {
    pub revoked_jtis: Vec<RevokedJti>,
    /// Read before `users`: a person both removed and present in `users`
    /// was added back after the removal.
    pub removed_users: Vec<RemovedUser>,
    pub users: Vec<AllowedUser>,
    pub revoked_grants: Vec<RevokedGrant>,
}

impl Store {
    /// Every source's rows since its cursor, over one connection. The
    /// indexes on the timestamp columns keep this proportional to the
    /// changes, not to the tables.
    pub async fn revocation_changes(&self, since: &ChangeCursors) -> Result<Changes, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let revoked_jtis = sqlx::query(
            "SELECT jti, expires_at, revoked_at FROM revoked_jtis WHERE revoked_at >= $1",
        )
        .bind(since.revoked_jtis)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| {
            Ok(RevokedJti {
                jti: row.try_get("jti")?,
                expires_at: row.try_get("expires_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
        let removed_users =
            sqlx::query("SELECT user_id, removed_at FROM removed_users WHERE removed_at >= $1")
                .bind(since.removed_users)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|row| {
                    Ok(RemovedUser {
                        user_id: row.try_get("user_id")?,
                        removed_at: row.try_get("removed_at")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()?;
        let users = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM allowed_users WHERE updated_at >= $1"
        ))
        .bind(since.users)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(from_row)
        .collect::<Result<_, _>>()?;
        let revoked_grants = sqlx::query(
            "SELECT user_id, client_id, revoked_at FROM revoked_grants WHERE revoked_at >= $1",
        )
        .bind(since.revoked_grants)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| {
            Ok(RevokedGrant {
                user_id: row.try_get("user_id")?,
                client_id: row.try_get("client_id")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
        Ok(Changes {
            revoked_jtis,
            removed_users,
            users,
            revoked_grants,
        })
    }

    /// Withdraws a person's grant to one client, in one transaction: the
    /// consent is forgotten (the next login asks again), the pair's refresh
    /// families are revoked, and access tokens the client got for the
    /// person at or before `at` are refused by every replica within
    /// `revocation.max_staleness`. `Ok(true)` when there was a consent or a
    /// live refresh token to take away.
    pub async fn revoke_grant_of(
        &self,
        user_id: &str,
        client_id: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        retrying(|| async {
            let mut tx = self.pool.begin().await?;
            let consents =
                sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
                    .bind(user_id)
                    .bind(client_id)
                    .execute(&mut *tx)
                    .await?;
            // Every token of a family shares its person and client.
            let families = sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND client_id = $3 \
                 AND revoked_at IS NULL",
            )
            .bind(at)
            .bind(user_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
            // A later revocation moves the line forward, never back.
            sqlx::query(
                "INSERT INTO revoked_grants (user_id, client_id, revoked_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, client_id) DO UPDATE SET revoked_at = excluded.revoked_at \
                 WHERE excluded.revoked_at > revoked_grants.revoked_at",
            )
            .bind(user_id)
            .bind(client_id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(consents.rows_affected() + families.rows_affected() > 0)
        })
        .await
    }
}
