//! `mcp-auth-broker keys …`

use super::{json, table, when, AdminError};
use crate::config::Settings;
use crate::store::Store;
use crate::tokens::{self, KeyError, Signer};

fn key_error(e: KeyError) -> AdminError {
    match e {
        KeyError::Store(e) => e.into(),
        other => AdminError::BadInput(other.to_string()),
    }
}

/// Adds a new key of the configured algorithm; it signs from the next key
/// reload on every replica (within a minute), the old one keeps verifying.
pub async fn rotate(store: &Store, settings: &Settings) -> Result<String, AdminError> {
    match Signer::from_settings(&settings.tokens).map_err(key_error)? {
        Signer::Stored(algorithm) => {
            let key = tokens::create(
                store,
                algorithm,
                settings.tokens.key_encryption_secret.as_deref(),
            )
            .await
            .map_err(key_error)?;
            Ok(format!(
                "created signing key {} ({}); every replica signs with it within a minute",
                key.kid, key.algorithm
            ))
        }
        Signer::Fixed(_) => Err(AdminError::BadInput(
            "the signing key comes from tokens.hs256_secret or tokens.private_key_files: \
             replace it there to rotate (list the old file after the new one until its tokens expire)"
                .into(),
        )),
    }
}

pub async fn list(store: &Store, as_json: bool) -> Result<String, AdminError> {
    let keys = store.signing_keys().await?;
    if as_json {
        let rows: Vec<_> = keys
            .iter()
            .map(|k| serde_json::json!({ "kid": k.kid, "algorithm": k.algorithm, "created_at": k.created_at }))
            .collect();
        return Ok(json(&rows));
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| vec![k.kid.clone(), k.algorithm.clone(), when(Some(k.created_at))])
        .collect();
    Ok(table::render(&["KID", "ALGORITHM", "CREATED"], &rows))
}

/// Takes a key out of service now (say it leaked): tokens it signed stop
/// validating on every replica within a minute. The last key in service
/// cannot go; rotate first.
pub async fn retire(store: &Store, kid: &str) -> Result<String, AdminError> {
    let keys = store.signing_keys().await?;
    if !keys.iter().any(|k| k.kid == kid) {
        return Err(AdminError::NotFound(format!(
            "no signing key {kid} in service"
        )));
    }
    if keys.len() == 1 {
        return Err(AdminError::BadInput(format!(
            "{kid} is the only signing key in service: run `keys rotate` first"
        )));
    }
    store.retire_signing_key(kid, crate::store::now()).await?;
    Ok(format!(
        "retired {kid}; tokens it signed are refused on every replica within a minute"
    ))
}
