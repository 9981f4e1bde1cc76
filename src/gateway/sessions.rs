//! Backend sessions bound to the person who opened them. A backend's
//! `Mcp-Session-Id` reaches the client sealed, `{id}.{tag}`, the tag an
//! HMAC of the backend, the person and the id under a key every replica
//! shares (kept in the database). Presented with another person's token or
//! at another backend, a sealed id opens to nothing and the client is told
//! the session does not exist, so a leaked session id does not hand one
//! person's backend session to someone else (MCP security best practices,
//! "session hijacking"). Nothing is stored per session: any replica checks
//! any id.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `shared_secrets` row that keys the seal.
pub const KEY_NAME: &str = "gateway_sessions";

pub struct SessionSeal {
    key: Vec<u8>,
}

impl fmt::Debug for SessionSeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSeal { .. }")
    }
}

impl SessionSeal {
    pub fn new(key: &str) -> SessionSeal {
        SessionSeal {
            key: key.as_bytes().to_vec(),
        }
    }

    /// What the client is given for the backend's session `id`.
    pub fn seal(&self, backend: &str, user_id: &str, id: &str) -> String {
        let tag = self.mac(backend, user_id, id).finalize().into_bytes();
        format!("{id}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The backend's session id inside `sealed`, if it was sealed for this
    /// person at this backend.
    pub fn open<'a>(&self, backend: &str, user_id: &str, sealed: &'a str) -> Option<&'a str> {
        let (id, tag) = sealed.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // verify_slice compares in constant time.
        self.mac(backend, user_id, id).verify_slice(&tag).ok()?;
        Some(id)
    }

    fn mac(&self, backend: &str, user_id: &str, id: &str) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        // Length-prefixed, so no two different triples hash alike.
        for part in [backend, user_id, id] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_id_opens_only_for_its_person_and_backend() {
        let seal = SessionSeal::new("k1");
        let sealed = seal.seal("/mcp/a", "user-1", "abc.def-123");
        assert!(sealed.starts_with("abc.def-123."));
        assert!(
            sealed.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "visible ASCII"
        );
        assert_eq!(seal.open("/mcp/a", "user-1", &sealed), Some("abc.def-123"));
        assert_eq!(
            seal.open("/mcp/a", "user-2", &sealed),
            None,
            "another person"
        );
        assert_eq!(
            seal.open("/mcp/b", "user-1", &sealed),
            None,
            "another backend"
        );
        assert_eq!(
            SessionSeal::new("k2").open("/mcp/a", "user-1", &sealed),
            None,
            "another key"
        );
    }

    #[test]
    fn forged_and_bare_ids_do_not_open() {
        let seal = SessionSeal::new("k1");
        let sealed = seal.seal("/mcp/a", "user-1", "s1");
        let (id, tag) = sealed.rsplit_once('.').unwrap();
        let mut flipped = tag.to_owned().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = format!("{id}.{}", String::from_utf8(flipped).unwrap());
        for forged in [
            "s1",
            "s1.",
            ".",
            "",
            &flipped,
            &format!("s2.{tag}"),
            &format!("{sealed}x"),
            &format!("{id}.{tag}.{tag}"),
        ] {
            assert_eq!(seal.open("/mcp/a", "user-1", forged), None, "{forged}");
        }
    }
}
