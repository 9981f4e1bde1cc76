//! `shared_secrets`: random keys all replicas must hold alike.

use super::{now, text, Store, StoreError};

impl Store {
    /// The secret called `name`: made now if no replica made it before,
    /// else the one that replica made (whoever inserts first wins).
    pub async fn shared_secret(&self, name: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO shared_secrets (name, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(crate::secrets::generate())
        .bind(now())
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT secret FROM shared_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(text(&row, "secret")?)
    }
}
