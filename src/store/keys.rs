//! `signing_keys`.

use sqlx::Row;

use super::{retrying, Store, StoreError};

/// A row of `signing_keys`; `private_key` is PEM, or sealed PEM.
#[derive(Clone)]
pub struct StoredKey {
    pub kid: String,
    pub algorithm: String,
    pub private_key: String,
    pub created_at: i64,
}

impl Store {
    /// Unretired keys, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, algorithm, private_key, created_at FROM signing_keys \
             WHERE retired_at IS NULL ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredKey {
                    kid: row.try_get("kid")?,
                    algorithm: row.try_get("algorithm")?,
                    private_key: row.try_get("private_key")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn retire_signing_key(&self, kid: &str, at: i64) -> Result<(), StoreError> {
        retrying(|| {
            sqlx::query(
                "UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL",
            )
            .bind(at)
            .bind(kid)
            .execute(&self.pool)
        })
        .await?;
        Ok(())
    }

    pub async fn insert_signing_key(&self, key: &StoredKey) -> Result<(), StoreError> {
        retrying(|| sqlx::query("INSERT INTO signing_keys (kid, algorithm, private_key, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&key.kid)
            .bind(&key.algorithm)
            .bind(&key.private_key)
            .bind(key.created_at)
            .execute(&self.pool))
            .await?;
        Ok(())
    }
}
