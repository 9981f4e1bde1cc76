//! Private keys at rest: sealed with AES-256-GCM under a key derived from
//! `tokens.key_encryption_secret`, so a database dump alone cannot sign.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "sealed:v1:";

fn cipher(secret: &str) -> LessSafeKey {
    // Domain-separated so the same secret used elsewhere yields another key.
    let key = Sha256::new()
        .chain_update(b"mcp-auth-broker signing-key seal v1\0")
        .chain_update(secret)
        .finalize();
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("32-byte key"))
}

pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

pub fn seal(secret: &str, pem: &str) -> Result<String, String> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let mut data = pem.as_bytes().to_vec();
    cipher(secret)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(PREFIX),
            &mut data,
        )
        .map_err(|_| "cannot seal the private key".to_string())?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&data);
    Ok(format!("{PREFIX}{}", STANDARD.encode(out)))
}

pub fn open(secret: &str, stored: &str) -> Result<String, String> {
    let raw = STANDARD
        .decode(stored.strip_prefix(PREFIX).unwrap_or_default())
        .map_err(|_| "the sealed key is not base64".to_string())?;
    if raw.len() <= NONCE_LEN {
        return Err("the sealed key is truncated".into());
    }
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    let mut data = sealed.to_vec();
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "bad nonce".to_string())?;
    let plain = cipher(secret)
        .open_in_place(nonce, Aad::from(PREFIX), &mut data)
        .map_err(|_| {
            "wrong tokens.key_encryption_secret, or the sealed key was altered".to_string()
        })?;
    String::from_utf8(plain.to_vec()).map_err(|_| "the sealed key is not text".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_and_refuse_the_wrong_secret() {
        let sealed = seal(
            "a secret of some length",
            "-----BEGIN PRIVATE KEY-----\nabc\n",
        )
        .unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("PRIVATE KEY"));
        assert_eq!(
            open("a secret of some length", &sealed).unwrap(),
            "-----BEGIN PRIVATE KEY-----\nabc\n"
        );
        assert!(open("another secret", &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.replace_range(sealed.len() - 4.., "AAAA");
        assert!(open("a secret of some length", &tampered).is_err());
    }
}
