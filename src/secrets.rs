//! Random secrets (client secrets, codes, refresh tokens, browser binding),
//! stored only as SHA-256 hashes and compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 256 random bits, base64url without padding (43 characters).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps instead of the secret: hex SHA-256.
pub fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `secret` hashes to `stored`, without leaking where they differ.
pub fn matches(secret: &str, stored: &str) -> bool {
    hash(secret).as_bytes().ct_eq(stored.as_bytes()).into()
}

/// RFC 7636 S256: base64url(SHA-256(verifier)) compared with the challenge.
pub fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hash_stably() {
        let a = generate();
        assert_eq!(a.len(), 43);
        assert_ne!(a, generate());
        assert!(matches(&a, &hash(&a)));
        assert!(!matches(&generate(), &hash(&a)));
    }

    #[test]
    fn pkce_s256_matches_an_independent_computation() {
        // base64url(sha256(verifier)) computed with Python's hashlib.
        assert!(pkce_s256_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_kXcWdNqrgOp4",
            "SKvWHyXZaRszDTFZMBGyzPXunVIpS0p2aYdDD_DmlMA"
        ));
        assert!(!pkce_s256_matches(
            "wrong",
            "SKvWHyXZaRszDTFZMBGyzPXunVIpS0p2aYdDD_DmlMA"
        ));
    }
}
