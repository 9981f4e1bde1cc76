//! `allowed_domains`: any verified email of these domains may log in.

use sqlx::Row;

use super::{now, parse_column, retrying, Store, StoreError};
use crate::allowlist::Domain;

impl Store {
    /// `Ok(false)` when the domain was already allowed.
    pub async fn add_domain(&self, domain: &Domain) -> Result<bool, StoreError> {
        let done = retrying(|| sqlx::query(
            "INSERT INTO allowed_domains (domain, created_at) VALUES ($1, $2) ON CONFLICT (domain) DO NOTHING",
        )
        .bind(domain.as_str())
        .bind(now())
        .execute(&self.pool))
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// `Ok(false)` when the domain was not allowed.
    pub async fn remove_domain(&self, domain: &Domain) -> Result<bool, StoreError> {
        let done = retrying(|| {
            sqlx::query("DELETE FROM allowed_domains WHERE domain = $1")
                .bind(domain.as_str())
                .execute(&self.pool)
        })
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Allowed domains with the unix time each was added, in order.
    pub async fn domains(&self) -> Result<Vec<(Domain, i64)>, StoreError> {
        let rows = sqlx::query("SELECT domain, created_at FROM allowed_domains ORDER BY domain")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((parse_column(row, "domain")?, row.try_get("created_at")?)))
            .collect()
    }
}

impl Store {
    pub async fn domain_allowed(&self, domain: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM allowed_domains WHERE domain = $1")
            .bind(domain)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}
