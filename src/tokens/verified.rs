//! Access tokens whose signature and claims were already checked, keyed by
//! the token's SHA-256 and kept until its `exp`, so a client's repeated
//! requests skip the signature check (tens of microseconds for RS256).
//! Revocation is not cached here: the caller consults the revocation view
//! on every request. An entry counts only while the key that signed it is
//! still in the key set: retiring a key takes its tokens with it.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use sha2::{Digest, Sha256};

use super::AccessClaims;

pub struct VerifiedTokens {
    entries: RwLock<HashMap<[u8; 32], Verified>>,
    capacity: usize,
}

struct Verified {
    claims: Arc<AccessClaims>,
    /// The key that signed the token.
    kid: Box<str>,
}

impl VerifiedTokens {
    /// Holds at most `capacity` tokens; 0 caches nothing.
    pub fn new(capacity: usize) -> VerifiedTokens {
        VerifiedTokens {
            entries: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// The claims of `token` if it was verified for `audience`, has not
    /// expired by `now` (the cold path's leeway past `exp` is not granted),
    /// and its key is still `trusted`.
    pub fn get(
        &self,
        token: &str,
        audience: &str,
        now: i64,
        trusted: impl Fn(&str) -> bool,
    ) -> Option<Arc<AccessClaims>> {
        if self.capacity == 0 {
            return None;
        }
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&key(token))
            .filter(|v| v.claims.exp > now && v.claims.aud == audience && trusted(&v.kid))
            .map(|v| v.claims.clone())
    }

    /// Remembers `token`, signed by the key `kid`, with its claims.
    pub fn insert(&self, token: &str, kid: &str, claims: Arc<AccessClaims>, now: i64) {
        if self.capacity == 0 || claims.exp <= now {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity {
            entries.retain(|_, v| v.claims.exp > now);
            // Still full of live tokens: drop an arbitrary eighth (a miss only
            // costs one signature check), so this sweep stays rare.
            if entries.len() >= self.capacity {
                let excess = entries.len() + 1 - self.capacity * 7 / 8;
                let victims: Vec<[u8; 32]> = entries.keys().take(excess).copied().collect();
                for victim in victims {
                    entries.remove(&victim);
                }
            }
        }
        let kid = kid.into();
        entries.insert(key(token), Verified { claims, kid });
    }
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(aud: &str, exp: i64) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            iss: "https://broker.example".into(),
            sub: "u".into(),
            aud: aud.into(),
            exp,
            iat: 0,
            nbf: 0,
            jti: "j".into(),
            client_id: "c".into(),
            scope: "mcp:tools".into(),
            email: "u@example.com".into(),
        })
    }

    fn any_key(_: &str) -> bool {
        true
    }

    #[test]
    fn hits_only_for_the_same_audience_and_key_until_exp() {
        let cache = VerifiedTokens::new(10);
        cache.insert("t", "k1", claims("aud", 100), 50);
        assert!(cache.get("t", "aud", 99, any_key).is_some());
        assert!(cache.get("t", "other", 99, any_key).is_none());
        assert!(cache.get("t", "aud", 100, any_key).is_none());
        assert!(cache.get("u", "aud", 99, any_key).is_none());
        assert!(
            cache.get("t", "aud", 99, |kid| kid != "k1").is_none(),
            "its key was retired"
        );
        cache.insert("expired", "k1", claims("aud", 50), 50);
        assert!(cache.get("expired", "aud", 40, any_key).is_none());
    }

    #[test]
    fn stays_bounded() {
        let cache = VerifiedTokens::new(8);
        for i in 0..100 {
            cache.insert(&format!("t{i}"), "k", claims("aud", 1_000), 0);
            assert!(cache.entries.read().unwrap().len() <= 8);
        }
        assert!(
            cache.get("t99", "aud", 0, any_key).is_some(),
            "the newest is kept"
        );
        let off = VerifiedTokens::new(0);
        off.insert("t", "k", claims("aud", 1_000), 0);
        assert!(off.get("t", "aud", 0, any_key).is_none());
    }
}
