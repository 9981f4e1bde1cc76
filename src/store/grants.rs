//! What a code redemption issues and what revocation undoes:
//! `refresh_tokens`, `revoked_jtis`, `consents`.

use sqlx::Row;

use super::{Store, StoreError};

/// Everything one successful code redemption writes, in one transaction.
pub struct Redemption<'a> {
    pub code_hash: &'a str,
    pub access_jti: &'a str,
    pub access_expires_at: i64,
    pub refresh: Option<NewRefreshToken<'a>>,
}

pub struct NewRefreshToken<'a> {
    pub token_hash: &'a str,
    pub family_id: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub scope: &'a str,
    pub resource: &'a str,
    pub expires_at: i64,
}

impl Store {
    /// Marks the code used and records what it issued. `Ok(false)` when the
    /// code was already used or expired (a concurrent redemption won).
    pub async fn redeem_code(&self, r: &Redemption<'_>, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let family = r.refresh.as_ref().map(|t| t.family_id.to_owned());
        let claimed = sqlx::query(
            "UPDATE auth_codes SET used_at = $1, refresh_family_id = $2, access_jti = $3, access_expires_at = $4 \
             WHERE code_hash = $5 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(family)
        .bind(r.access_jti)
        .bind(r.access_expires_at)
        .bind(r.code_hash)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(t) = &r.refresh {
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, resource, created_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(t.token_hash)
            .bind(t.family_id)
            .bind(t.client_id)
            .bind(t.user_id)
            .bind(t.scope)
            .bind(t.resource)
            .bind(now)
            .bind(t.expires_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes a refresh-token family and, when given, an access token.
    pub async fn revoke_grant(
        &self,
        family_id: Option<&str>,
        access: Option<(&str, i64)>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(family) = family_id {
            sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(family)
                .execute(&mut *tx)
                .await?;
        }
        if let Some((jti, expires_at)) = access {
            sqlx::query(
                "INSERT INTO revoked_jtis (jti, expires_at, revoked_at) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING",
            )
            .bind(jti)
            .bind(expires_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn is_jti_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM revoked_jtis WHERE jti = $1")
            .bind(jti)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Whether the person already approved every one of `scopes` for the client.
    pub async fn has_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[&str],
    ) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let granted: String = row.try_get("scope")?;
        Ok(scopes
            .iter()
            .all(|s| granted.split_whitespace().any(|g| g == *s)))
    }

    /// Every (person, client) pair that holds a grant — an approval, a live
    /// refresh token or a recent code — optionally of one person or client.
    pub async fn grant_holders(
        &self,
        user_id: Option<&str>,
        client_id: Option<&str>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, client_id FROM consents \
             UNION SELECT user_id, client_id FROM refresh_tokens WHERE revoked_at IS NULL \
             UNION SELECT user_id, client_id FROM auth_codes",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut pairs = rows
            .iter()
            .map(|r| Ok((r.try_get("user_id")?, r.try_get("client_id")?)))
            .collect::<Result<Vec<(String, String)>, sqlx::Error>>()?;
        pairs.retain(|(u, c)| {
            user_id.is_none_or(|want| want == u) && client_id.is_none_or(|want| want == c)
        });
        pairs.sort();
        pairs.dedup();
        Ok(pairs)
    }

    /// The clients a person approved, oldest first.
    pub async fn consents(&self, user_id: &str) -> Result<Vec<Consent>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.client_id, o.client_name, c.scope, c.created_at FROM consents c \
             LEFT JOIN oauth_clients o ON o.client_id = c.client_id \
             WHERE c.user_id = $1 ORDER BY c.created_at, c.client_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Consent {
                    client_id: r.try_get("client_id")?,
                    client_name: r.try_get("client_name")?,
                    scope: r.try_get("scope")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, created_at = excluded.created_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scope)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A person's approval of one client.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Consent {
    pub client_id: String,
    pub client_name: Option<String>,
    pub scope: String,
    pub created_at: i64,
}

/// A stored refresh token (found by its hash).
#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub resource: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Store {
    pub async fn refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshToken>, StoreError> {
        let row = sqlx::query(
            "SELECT family_id, client_id, user_id, scope, resource, expires_at, used_at, revoked_at \
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(RefreshToken {
            family_id: row.try_get("family_id")?,
            client_id: row.try_get("client_id")?,
            user_id: row.try_get("user_id")?,
            scope: row.try_get("scope")?,
            resource: row.try_get("resource")?,
            expires_at: row.try_get("expires_at")?,
            used_at: row.try_get("used_at")?,
            revoked_at: row.try_get("revoked_at")?,
        }))
    }

    /// Retires `parent` and stores its successor in the same family, in one
    /// transaction. A parent already used at or after `grace_start` is a
    /// client retrying after a lost response: its unused successor is
    /// replaced. `Ok(false)` otherwise (reuse): exactly one of two racing
    /// refreshes leaves a live successor.
    pub async fn rotate_refresh_token(
        &self,
        parent_hash: &str,
        next: &NewRefreshToken<'_>,
        now: i64,
        grace_start: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(parent_hash)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() != 1 {
            let replaced = sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE parent_hash = $2 AND used_at IS NULL \
                 AND revoked_at IS NULL AND EXISTS (SELECT 1 FROM refresh_tokens p WHERE p.token_hash = $2 \
                 AND p.used_at >= $3 AND p.revoked_at IS NULL)",
            )
            .bind(now)
            .bind(parent_hash)
            .bind(grace_start)
            .execute(&mut *tx)
            .await?;
            if replaced.rows_affected() != 1 {
                // Explicitly: an UPDATE ran, and SQLite keeps the write lock
                // until the transaction ends.
                tx.rollback().await?;
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, parent_hash, client_id, user_id, scope, resource, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(next.token_hash)
        .bind(next.family_id)
        .bind(parent_hash)
        .bind(next.client_id)
        .bind(next.user_id)
        .bind(next.scope)
        .bind(next.resource)
        .bind(now)
        .bind(next.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
