//! Signing keys: generated on first start and kept in `signing_keys`, so
//! every replica signs and verifies with the same set.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use super::sealed;
use crate::config::TokenSettings;
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
    /// The public JWK; `None` for a shared (HS256) secret.
    pub jwk: Option<Jwk>,
}

/// How often a replica may reload keys because a token named one it lacks.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// The key set in force on this replica. Another replica may create or
/// rotate a key; a token naming a key we lack triggers a (rate-limited)
/// reload from the database.
pub struct Keys {
    signer: Signer,
    seal: Option<String>,
    current: RwLock<KeySet>,
    last_reload: tokio::sync::Mutex<Option<Instant>>,
}

impl Keys {
    pub async fn load(
        store: &Store,
        signer: Signer,
        seal: Option<String>,
    ) -> Result<Keys, KeyError> {
        Ok(Keys {
            current: RwLock::new(KeySet::load(store, &signer, seal.as_deref()).await?),
            signer,
            seal,
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

    /// Whether `kid` is in the key set now, without reloading.
    pub fn knows(&self, kid: &str) -> bool {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .by_kid
            .contains_key(kid)
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
        match self.reload(store).await {
            Ok(()) => self.current().verifying(kid).is_some(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot reload signing keys");
                false
            }
        }
    }

    /// Picks up keys created, rotated or retired by any replica.
    pub async fn reload(&self, store: &Store) -> Result<(), KeyError> {
        let fresh = KeySet::load(store, &self.signer, self.seal.as_deref()).await?;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
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
        KeySet::load(store, &Signer::Stored(Algorithm::RS256), None).await
    }

    /// Loads the unretired keys; the newest of `signer`'s algorithm signs
    /// (created if there is none). Keys of other algorithms still verify, so
    /// tokens survive a change of algorithm until they expire.
    /// `seal` opens keys stored sealed, and seals any key created here.
    pub async fn load(
        store: &Store,
        signer: &Signer,
        seal: Option<&str>,
    ) -> Result<KeySet, KeyError> {
        let mut keys = store
            .signing_keys()
            .await?
            .iter()
            .map(|k| parse(k, seal))
            .collect::<Result<Vec<_>, _>>()?;
        let signing = match signer {
            Signer::Fixed(fixed) => {
                keys.extend(fixed.iter().cloned());
                fixed[0].clone()
            }
            Signer::Stored(algorithm) => {
                match keys.iter().rev().find(|k| k.algorithm == *algorithm) {
                    Some(key) => key.clone(),
                    None => {
                        let created = parse(&create(store, *algorithm, seal).await?, seal)?;
                        keys.push(created.clone());
                        created
                    }
                }
            }
        };
        let mut by_kid: HashMap<String, Arc<SigningKey>> =
            keys.into_iter().map(|k| (k.kid.clone(), k)).collect();
        by_kid.insert(signing.kid.clone(), signing.clone());
        Ok(KeySet {
            signing,
            by_kid: Arc::new(by_kid),
        })
    }

    /// Just `key`, signing and verifying (unit tests, nothing stored).
    pub fn of(key: Arc<SigningKey>) -> KeySet {
        let by_kid = HashMap::from([(key.kid.clone(), key.clone())]);
        KeySet {
            signing: key,
            by_kid: Arc::new(by_kid),
        }
    }

    pub fn signing(&self) -> &SigningKey {
        &self.signing
    }

    pub fn verifying(&self, kid: &str) -> Option<&SigningKey> {
        self.by_kid.get(kid).map(Arc::as_ref)
    }

    /// The public half of every asymmetric key, for `/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        let mut keys: Vec<Jwk> = self.by_kid.values().filter_map(|k| k.jwk.clone()).collect();
        keys.sort_by(|a, b| a.common.key_id.cmp(&b.common.key_id));
        JwkSet { keys }
    }
}

/// Where the signing key comes from.
#[derive(Clone)]
pub enum Signer {
    /// Generated and kept in `signing_keys` (RS256 or ES256).
    Stored(Algorithm),
    /// Keys from the configuration, never stored: HS256 with
    /// `tokens.hs256_secret` (never published), or PEM files from
    /// `tokens.private_key_files` (a k8s Secret). The first signs; all verify.
    Fixed(Vec<Arc<SigningKey>>),
}

impl Signer {
    pub fn from_settings(settings: &TokenSettings) -> Result<Signer, KeyError> {
        let stored = |algorithm: Algorithm| {
            if settings.private_key_files.is_empty() {
                return Ok(Signer::Stored(algorithm));
            }
            let keys = settings
                .private_key_files
                .iter()
                .map(|path| from_file(path, &settings.algorithm))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Signer::Fixed(keys))
        };
        match settings.algorithm.as_str() {
            "RS256" => stored(Algorithm::RS256),
            "ES256" => stored(Algorithm::ES256),
            "HS256" => {
                let secret = settings
                    .hs256_secret
                    .as_deref()
                    .unwrap_or_default()
                    .as_bytes();
                // The kid names the secret without revealing it.
                let kid = format!(
                    "hs256-{}",
                    &crate::secrets::hash(&STANDARD.encode(secret))[..16]
                );
                Ok(Signer::Fixed(vec![Arc::new(SigningKey {
                    kid,
                    algorithm: Algorithm::HS256,
                    encoding: EncodingKey::from_secret(secret),
                    decoding: DecodingKey::from_secret(secret),
                    jwk: None,
                })]))
            }
            other => Err(KeyError::Unusable {
                kid: "-".into(),
                reason: format!("unsupported algorithm {other}"),
            }),
        }
    }
}

/// A PKCS#8 PEM key from a file; its kid is derived from the file, so every
/// replica mounting the same Secret agrees on it.
fn from_file(path: &std::path::Path, algorithm: &str) -> Result<Arc<SigningKey>, KeyError> {
    let pem = std::fs::read_to_string(path).map_err(|e| KeyError::Unusable {
        kid: path.display().to_string(),
        reason: format!("cannot read tokens.private_key_files entry: {e}"),
    })?;
    let stored = StoredKey {
        kid: format!("file-{}", &crate::secrets::hash(pem.trim())[..16]),
        algorithm: algorithm.to_owned(),
        private_key: pem,
        created_at: 0,
    };
    parse(&stored, None)
}

/// Generates a key of `algorithm`, stores it and returns it: the newest key
/// signs from the next (re)load on every replica.
pub async fn create(
    store: &Store,
    algorithm: Algorithm,
    seal: Option<&str>,
) -> Result<StoredKey, KeyError> {
    let key = generate(algorithm)?;
    if let Some(secret) = seal {
        let sealed =
            sealed::seal(secret, &key.private_key).map_err(|reason| KeyError::Unusable {
                kid: key.kid.clone(),
                reason,
            })?;
        let stored = StoredKey {
            private_key: sealed,
            ..key.clone()
        };
        store.insert_signing_key(&stored).await?;
    } else {
        store.insert_signing_key(&key).await?;
    }
    // The caller gets the key in the clear, to use at once.
    Ok(key)
}

/// Retires keys that an unretired newer key of the same algorithm replaced
/// more than `token_ttl` (+ leeway) ago: no live token can need them.
pub async fn retire_replaced(
    store: &Store,
    token_ttl: Duration,
    now: i64,
) -> Result<Vec<String>, KeyError> {
    let keys = store.signing_keys().await?;
    let cutoff = now - token_ttl.as_secs() as i64 - 60;
    let mut retired = Vec::new();
    for key in &keys {
        let replaced = keys.iter().any(|newer| {
            newer.algorithm == key.algorithm
                && (newer.created_at, &newer.kid) > (key.created_at, &key.kid)
                && newer.created_at < cutoff
        });
        if replaced {
            store.retire_signing_key(&key.kid, now).await?;
            retired.push(key.kid.clone());
        }
    }
    Ok(retired)
}

/// A key that lives only as long as the process (the dev provider's).
pub fn ephemeral_rs256() -> Result<Arc<SigningKey>, KeyError> {
    parse(&generate(Algorithm::RS256)?, None)
}

fn generate(algorithm: Algorithm) -> Result<StoredKey, KeyError> {
    let unusable = |reason: String| KeyError::Unusable {
        kid: "new".into(),
        reason,
    };
    let (name, der) = match algorithm {
        Algorithm::RS256 => {
            let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|e| unusable(e.to_string()))?;
            (
                "RS256",
                pair.as_der()
                    .map_err(|e| unusable(e.to_string()))?
                    .as_ref()
                    .to_vec(),
            )
        }
        Algorithm::ES256 => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|e| unusable(e.to_string()))?;
            (
                "ES256",
                pair.to_pkcs8v1()
                    .map_err(|e| unusable(e.to_string()))?
                    .as_ref()
                    .to_vec(),
            )
        }
        other => return Err(unusable(format!("cannot generate {other:?} keys"))),
    };
    Ok(StoredKey {
        // Time-ordered, so "newest" is well defined even within one second.
        kid: uuid::Uuid::now_v7().simple().to_string(),
        algorithm: name.into(),
        private_key: pem("PRIVATE KEY", &der),
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

fn parse(stored: &StoredKey, seal: Option<&str>) -> Result<Arc<SigningKey>, KeyError> {
    let unusable = |reason: String| KeyError::Unusable {
        kid: stored.kid.clone(),
        reason,
    };
    let opened;
    let text = if sealed::is_sealed(&stored.private_key) {
        let secret =
            seal.ok_or_else(|| unusable("it is sealed: set tokens.key_encryption_secret".into()))?;
        opened = sealed::open(secret, &stored.private_key).map_err(unusable)?;
        opened.as_str()
    } else {
        stored.private_key.as_str()
    };
    let pem = text.as_bytes();
    let (algorithm, key_algorithm, encoding) = match stored.algorithm.as_str() {
        "RS256" => (
            Algorithm::RS256,
            KeyAlgorithm::RS256,
            EncodingKey::from_rsa_pem(pem),
        ),
        "ES256" => (
            Algorithm::ES256,
            KeyAlgorithm::ES256,
            EncodingKey::from_ec_pem(pem),
        ),
        other => return Err(unusable(format!("unsupported algorithm {other}"))),
    };
    let encoding = encoding.map_err(|e| unusable(e.to_string()))?;
    let mut jwk =
        Jwk::from_encoding_key(&encoding, algorithm).map_err(|e| unusable(e.to_string()))?;
    jwk.common.key_id = Some(stored.kid.clone());
    jwk.common.key_algorithm = Some(key_algorithm);
    jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
    let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| unusable(e.to_string()))?;
    Ok(Arc::new(SigningKey {
        kid: stored.kid.clone(),
        algorithm,
        encoding,
        decoding,
        jwk: Some(jwk),
    }))
}
