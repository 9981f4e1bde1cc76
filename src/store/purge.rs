//! Sweeping expired rows, on every replica now and then.

use super::{Store, StoreError};

impl Store {
    /// Drops what has expired: idle clients (a metadata-document client is
    /// simply fetched again), pending logins, codes (kept a day for replay
    /// detection), refresh families, revoked jtis, used assertion jtis,
    /// grant revocations older than any token they could refuse
    /// (`access_token_ttl`), and removal tombstones (a day: replicas poll
    /// every few seconds, and one that lost touch for longer than
    /// `revocation.max_staleness` reloads everything). Idempotent, so every
    /// replica may run it.
    pub async fn purge_expired(
        &self,
        now: i64,
        client_idle_expiry: i64,
        access_token_ttl: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM oauth_clients WHERE kind IN ('dynamic', 'cimd') AND COALESCE(last_used_at, created_at) < $1",
        )
        .bind(now - client_idle_expiry)
        .execute(&self.pool)
        .await?;
        for (sql, before) in [
            // Kept an hour past expiry, so a late return can restart the login.
            (
                "DELETE FROM auth_requests WHERE expires_at < $1",
                now - 3600,
            ),
            ("DELETE FROM browser_sessions WHERE expires_at < $1", now),
            ("DELETE FROM auth_codes WHERE expires_at < $1", now - 86_400),
            ("DELETE FROM refresh_tokens WHERE expires_at < $1", now),
            (
                "DELETE FROM client_assertion_jtis WHERE expires_at < $1",
                now - 300,
            ),
            // A revoked token is refused by its exp once past it (plus leeway).
            ("DELETE FROM revoked_jtis WHERE expires_at < $1", now - 300),
            (
                "DELETE FROM revoked_grants WHERE revoked_at < $1",
                now - access_token_ttl - 300,
            ),
            (
                "DELETE FROM removed_users WHERE removed_at < $1",
                now - 86_400,
            ),
        ] {
            sqlx::query(sql).bind(before).execute(&self.pool).await?;
        }
        Ok(())
    }
}
