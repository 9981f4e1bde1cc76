//! `auth_requests` and `auth_codes`: the state of a login between requests,
//! kept in the database so any replica can finish what another started.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub id: String,
    pub browser_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub scope: String,
    pub resource: String,
    pub upstream_id: String,
    pub upstream_nonce: String,
    pub upstream_verifier: String,
    pub user_id: Option<String>,
    pub csrf_hash: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// An issued authorization code (its hash) and what it is bound to.
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub code_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub scope: String,
    pub resource: String,
    pub user_id: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub refresh_family_id: Option<String>,
    pub access_jti: Option<String>,
    pub access_expires_at: Option<i64>,
}

const REQUEST_COLUMNS: &str =
    "id, browser_hash, client_id, redirect_uri, state, code_challenge, scope, resource, \
     upstream_id, upstream_nonce, upstream_verifier, user_id, csrf_hash, created_at, expires_at";

impl Store {
    pub async fn insert_auth_request(&self, r: &AuthRequest) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO auth_requests ({REQUEST_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(&r.id)
        .bind(&r.browser_hash)
        .bind(&r.client_id)
        .bind(&r.redirect_uri)
        .bind(r.state.clone())
        .bind(&r.code_challenge)
        .bind(&r.scope)
        .bind(&r.resource)
        .bind(&r.upstream_id)
        .bind(&r.upstream_nonce)
        .bind(&r.upstream_verifier)
        .bind(r.user_id.clone())
        .bind(r.csrf_hash.clone())
        .bind(r.created_at)
        .bind(r.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The pending request, expired or not (the caller tells the person
    /// which, and offers to start again).
    pub async fn auth_request(&self, id: &str) -> Result<Option<AuthRequest>, StoreError> {
        if !super::plausible_key(id) {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM auth_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(request_from_row).transpose()?)
    }

    /// Records who logged in (or `None` for a refused login) and the hash of
    /// the form token that the next step must present.
    pub async fn bind_auth_request(
        &self,
        id: &str,
        user_id: Option<&str>,
        csrf_hash: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE auth_requests SET user_id = $1, csrf_hash = $2 WHERE id = $3")
            .bind(user_id.map(str::to_owned))
            .bind(csrf_hash)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends the request; `false` when another request already ended it.
    pub async fn finish_auth_request(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM auth_requests WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_auth_code(&self, c: &AuthCode, created_at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO auth_codes (code_hash, client_id, redirect_uri, code_challenge, scope, resource, user_id, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&c.code_hash)
        .bind(&c.client_id)
        .bind(&c.redirect_uri)
        .bind(&c.code_challenge)
        .bind(&c.scope)
        .bind(&c.resource)
        .bind(&c.user_id)
        .bind(created_at)
        .bind(c.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn auth_code(&self, code_hash: &str) -> Result<Option<AuthCode>, StoreError> {
        let row = sqlx::query(
            "SELECT code_hash, client_id, redirect_uri, code_challenge, scope, resource, user_id, expires_at, \
             used_at, refresh_family_id, access_jti, access_expires_at FROM auth_codes WHERE code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(code_from_row).transpose()?)
    }
}

fn request_from_row(row: &AnyRow) -> Result<AuthRequest, sqlx::Error> {
    Ok(AuthRequest {
        id: row.try_get("id")?,
        browser_hash: row.try_get("browser_hash")?,
        client_id: row.try_get("client_id")?,
        redirect_uri: row.try_get("redirect_uri")?,
        state: row.try_get("state")?,
        code_challenge: row.try_get("code_challenge")?,
        scope: row.try_get("scope")?,
        resource: row.try_get("resource")?,
        upstream_id: row.try_get("upstream_id")?,
        upstream_nonce: row.try_get("upstream_nonce")?,
        upstream_verifier: row.try_get("upstream_verifier")?,
        user_id: row.try_get("user_id")?,
        csrf_hash: row.try_get("csrf_hash")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn code_from_row(row: &AnyRow) -> Result<AuthCode, sqlx::Error> {
    Ok(AuthCode {
        code_hash: row.try_get("code_hash")?,
        client_id: row.try_get("client_id")?,
        redirect_uri: row.try_get("redirect_uri")?,
        code_challenge: row.try_get("code_challenge")?,
        scope: row.try_get("scope")?,
        resource: row.try_get("resource")?,
        user_id: row.try_get("user_id")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
        refresh_family_id: row.try_get("refresh_family_id")?,
        access_jti: row.try_get("access_jti")?,
        access_expires_at: row.try_get("access_expires_at")?,
    })
}
