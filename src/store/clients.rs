//! `oauth_clients`.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{retrying, Store, StoreError};

/// A registered client as the authorization server needs it.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub client_secret_hash: Option<String>,
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub disabled: bool,
    /// The registration response, or the client's metadata document.
    pub metadata: serde_json::Value,
    /// For metadata-document clients: when the document must be fetched again.
    pub metadata_expires_at: Option<i64>,
}

impl Client {
    /// Holds a credential of its own (a secret or a signing key).
    pub fn is_confidential(&self) -> bool {
        self.client_secret_hash.is_some() || self.token_endpoint_auth_method == PRIVATE_KEY_JWT
    }
}

/// RFC 7523 client authentication by a signed assertion.
pub const PRIVATE_KEY_JWT: &str = "private_key_jwt";

/// What registration stores: the client plus its full metadata document.
pub struct NewClient<'a> {
    pub client: &'a Client,
    pub response_types: &'a [String],
    pub scope: Option<&'a str>,
    pub created_at: i64,
}

impl Store {
    pub async fn insert_client(&self, new: &NewClient<'_>) -> Result<(), StoreError> {
        let c = new.client;
        sqlx::query(
            "INSERT INTO oauth_clients (client_id, client_secret_hash, client_name, redirect_uris, grant_types, \
             response_types, token_endpoint_auth_method, scope, metadata, kind, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'dynamic', $10)",
        )
        .bind(&c.client_id)
        .bind(c.client_secret_hash.clone())
        .bind(c.client_name.clone())
        .bind(json_list(&c.redirect_uris))
        .bind(json_list(&c.grant_types))
        .bind(json_list(new.response_types))
        .bind(&c.token_endpoint_auth_method)
        .bind(new.scope.map(str::to_owned))
        .bind(c.metadata.to_string())
        .bind(new.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores a freshly fetched metadata-document client, keeping whether an
    /// administrator disabled it and when it was first seen.
    pub async fn upsert_document_client(&self, new: &NewClient<'_>) -> Result<(), StoreError> {
        let c = new.client;
        sqlx::query(
            "INSERT INTO oauth_clients (client_id, client_name, redirect_uris, grant_types, response_types, \
             token_endpoint_auth_method, scope, metadata, kind, created_at, metadata_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'cimd', $9, $10) \
             ON CONFLICT (client_id) DO UPDATE SET client_name = excluded.client_name, \
             redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types, \
             response_types = excluded.response_types, \
             token_endpoint_auth_method = excluded.token_endpoint_auth_method, scope = excluded.scope, \
             metadata = excluded.metadata, metadata_expires_at = excluded.metadata_expires_at \
             WHERE oauth_clients.kind = 'cimd'",
        )
        .bind(&c.client_id)
        .bind(c.client_name.clone())
        .bind(json_list(&c.redirect_uris))
        .bind(json_list(&c.grant_types))
        .bind(json_list(new.response_types))
        .bind(&c.token_endpoint_auth_method)
        .bind(new.scope.map(str::to_owned))
        .bind(c.metadata.to_string())
        .bind(new.created_at)
        .bind(c.metadata_expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a client assertion's `jti`; false when it was used before.
    pub async fn record_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO client_assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, jti) DO NOTHING",
        )
        .bind(client_id)
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        if !super::plausible_key(client_id) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT client_id, client_secret_hash, client_name, redirect_uris, grant_types, \
             token_endpoint_auth_method, disabled, metadata, metadata_expires_at FROM oauth_clients WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    /// Every client, newest first, as an administrator sees them.
    pub async fn clients(&self) -> Result<Vec<ClientSummary>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM oauth_clients ORDER BY created_at DESC, client_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(summary_from_row)
            .collect::<Result<_, sqlx::Error>>()?)
    }

    pub async fn client_summary(
        &self,
        client_id: &str,
    ) -> Result<Option<ClientSummary>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM oauth_clients WHERE client_id = $1"
        ))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(summary_from_row).transpose()?)
    }

    /// `Ok(false)` when there is no such client.
    pub async fn set_client_disabled(
        &self,
        client_id: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let done = retrying(|| {
            sqlx::query("UPDATE oauth_clients SET disabled = $1 WHERE client_id = $2")
                .bind(i64::from(disabled))
                .bind(client_id)
                .execute(&self.pool)
        })
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let done = retrying(|| {
            sqlx::query("DELETE FROM oauth_clients WHERE client_id = $1")
                .bind(client_id)
                .execute(&self.pool)
        })
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn touch_client(&self, client_id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE oauth_clients SET last_used_at = $1 WHERE client_id = $2")
            .bind(at)
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// A client as `clients list|show` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClientSummary {
    pub client_id: String,
    pub client_name: Option<String>,
    /// dynamic, cimd or static.
    pub kind: String,
    pub token_endpoint_auth_method: String,
    pub redirect_uris: Vec<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub disabled: bool,
}

const SUMMARY_COLUMNS: &str =
    "client_id, client_name, kind, token_endpoint_auth_method, redirect_uris, \
    created_at, last_used_at, disabled";

fn summary_from_row(row: &AnyRow) -> Result<ClientSummary, sqlx::Error> {
    Ok(ClientSummary {
        client_id: row.try_get("client_id")?,
        client_name: row.try_get("client_name")?,
        kind: row.try_get("kind")?,
        token_endpoint_auth_method: row.try_get("token_endpoint_auth_method")?,
        redirect_uris: list(row, "redirect_uris")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
    })
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn list(row: &AnyRow, column: &str) -> Result<Vec<String>, sqlx::Error> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.into(),
        source: e.into(),
    })
}

fn from_row(row: &AnyRow) -> Result<Client, sqlx::Error> {
    Ok(Client {
        client_id: row.try_get("client_id")?,
        client_secret_hash: row.try_get("client_secret_hash")?,
        client_name: row.try_get("client_name")?,
        redirect_uris: list(row, "redirect_uris")?,
        grant_types: list(row, "grant_types")?,
        token_endpoint_auth_method: row.try_get("token_endpoint_auth_method")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        metadata: serde_json::from_str(&row.try_get::<String, _>("metadata")?).map_err(|e| {
            sqlx::Error::ColumnDecode {
                index: "metadata".into(),
                source: e.into(),
            }
        })?,
        metadata_expires_at: row.try_get("metadata_expires_at")?,
    })
}
