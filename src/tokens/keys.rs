//! Signing keys: generated on first start and kept in `signing_keys`, so
//! every replica signs and verifies with the same set.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::store::{Store, StoreError, StoredKey};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key {kid} is unusable: {reason}")]
    Unusable { kid: String, reason: String },
}

pub struct SigningKey {
    pub kid: String,
    pub algorithm: Algorithm,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    pub jwk: Jwk,
}

/// How often a replica may reload keys because a token named one it lacks.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// The key set in force on this replica. Another replica may create or
/// rotate a key; a token naming a key we lack triggers a (rate-limited)
/// reload from the database.
pub struct Keys {
    current: RwLock<KeySet>,
    last_reload: tokio::sync::Mutex<Option<Instant>>,
}

impl Keys {
    pub async fn load_or_create(store: &Store) -> Result<Keys, KeyError> {
        Ok(Keys {
            current: RwLock::new(KeySet::load_or_create(store).await?),
            last_reload: tokio::sync::Mutex::new(None),
        })
    }

    /// Cheap: the set is reference-counted inside.
    pub fn current(&self) -> KeySet {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Whether `kid` is known, reloading once if it is not.
    pub async fn learn(&self, store: &Store, kid: &str) -> bool {
        if self.current().verifying(kid).is_some() {
            return true;
        }
        let mut last = self.last_reload.lock().await;
        if last.is_some_and(|at| at.elapsed() < RELOAD_EVERY) {
            return self.current().verifying(kid).is_some();
        }
        *last = Some(Instant::now());
        match KeySet::load_or_create(store).await {
            Ok(fresh) => {
                let known = fresh.verifying(kid).is_some();
                *self
                    .current
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
                known
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reload signing keys");
                false
            }
        }
    }
}

/// The keys in force: the newest signs; all of them verify.
#[derive(Clone)]
pub struct KeySet {
    signing: Arc<SigningKey>,
    by_kid: Arc<HashMap<String, Arc<SigningKey>>>,
}

impl KeySet {
    /// Loads the unretired keys, creating the first RS256 key if there is none.
    pub async fn load_or_create(store: &Store) -> Result<KeySet, KeyError> {
        let mut stored = store.signing_keys().await?;
        if stored.is_empty() {
            let key = generate_rs256()?;
            store.insert_signing_key(&key).await?;
            stored = store.signing_keys().await?;
        }
        let keys = stored.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
        // Two replicas starting together may both create a key: every one
        // verifies, and all agree the newest signs.
        let signing = keys.last().cloned().ok_or_else(|| KeyError::Unusable {
            kid: "-".into(),
            reason: "no signing key after creating one".into(),
        })?;
        let by_kid = keys.into_iter().map(|k| (k.kid.clone(), k)).collect();
        Ok(KeySet {
            signing,
            by_kid: Arc::new(by_kid),
        })
    }

    pub fn signing(&self) -> &SigningKey {
        &self.signing
    }

    pub fn verifying(&self, kid: &str) -> Option<&SigningKey> {
        self.by_kid.get(kid).map(Arc::as_ref)
    }

    /// The public half of every key, for `/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        let mut keys: Vec<Jwk> = self.by_kid.values().map(|k| k.jwk.clone()).collect();
        keys.sort_by(|a, b| a.common.key_id.cmp(&b.common.key_id));
        JwkSet { keys }
    }
}

/// A key that lives only as long as the process (the dev provider's).
pub fn ephemeral_rs256() -> Result<Arc<SigningKey>, KeyError> {
    parse(&generate_rs256()?)
}

fn generate_rs256() -> Result<StoredKey, KeyError> {
    let unusable = |reason: String| KeyError::Unusable {
        kid: "new".into(),
        reason,
    };
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|e| unusable(e.to_string()))?;
    let der = pair.as_der().map_err(|e| unusable(e.to_string()))?;
    Ok(StoredKey {
        kid: uuid::Uuid::new_v4().simple().to_string(),
        algorithm: "RS256".into(),
        private_key: pem("PRIVATE KEY", der.as_ref()),
        created_at: crate::store::now(),
    })
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn parse(stored: &StoredKey) -> Result<Arc<SigningKey>, KeyError> {
    let unusable = |reason: String| KeyError::Unusable {
        kid: stored.kid.clone(),
        reason,
    };
    let algorithm = match stored.algorithm.as_str() {
        "RS256" => Algorithm::RS256,
        other => return Err(unusable(format!("unsupported algorithm {other}"))),
    };
    let encoding = EncodingKey::from_rsa_pem(stored.private_key.as_bytes())
        .map_err(|e| unusable(e.to_string()))?;
    let mut jwk =
        Jwk::from_encoding_key(&encoding, algorithm).map_err(|e| unusable(e.to_string()))?;
    jwk.common.key_id = Some(stored.kid.clone());
    jwk.common.key_algorithm = Some(KeyAlgorithm::RS256);
    jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| unusable(e.to_string()))?;
    Ok(Arc::new(SigningKey {
        kid: stored.kid.clone(),
        algorithm,
        encoding,
        decoding,
        jwk,
    }))
}
