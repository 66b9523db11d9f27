//! Webhook signing secrets at rest: when a `secret_key` is configured they are
//! stored encrypted with ChaCha20-Poly1305 (a random 96-bit nonce per value,
//! the endpoint id as associated data, so a stored value cannot be moved to
//! another endpoint) as `enc:v1:<base64url(nonce ‖ ciphertext ‖ tag)>`.
//! Values without that prefix are plaintext written before a key was set, and
//! still read.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use rand::Rng;

use crate::{StoreError, StoreResult};

const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 12;

/// The 256-bit key that encrypts webhook secrets; never printed.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    /// Reads 32 bytes written in base64 (standard or URL-safe, padded or
    /// not), as `openssl rand -base64 32` prints them.
    pub fn from_base64(text: &str) -> Result<SecretKey, String> {
        let t = text.trim();
        let bytes = STANDARD
            .decode(t)
            .or_else(|_| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')))
            .map_err(|_| {
                "secret_key is not base64; make one with `openssl rand -base64 32`".to_owned()
            })?;
        let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "secret_key must be 32 bytes (256 bits) in base64, not {} bytes; make one with `openssl rand -base64 32`",
                b.len()
            )
        })?;
        Ok(SecretKey(key))
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&self.0.into())
    }
}

/// Whether a stored value is encrypted (and so needs the key).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// The value to store for `secret` of endpoint `id`: encrypted when there is a key.
pub fn seal(key: Option<&SecretKey>, id: &str, secret: &str) -> StoreResult<String> {
    let Some(key) = key else {
        return Ok(secret.to_owned());
    };
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = key
        .cipher()
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: secret.as_bytes(),
                aad: id.as_bytes(),
            },
        )
        .map_err(|_| StoreError::Database("cannot encrypt a webhook secret".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
}

/// The secret of endpoint `id` from its stored value.
pub fn open(key: Option<&SecretKey>, id: &str, stored: &str) -> StoreResult<String> {
    let Some(body) = stored.strip_prefix(PREFIX) else {
        return Ok(stored.to_owned());
    };
    let Some(key) = key else {
        return Err(StoreError::Database(format!(
            "the secret of webhook {id} is encrypted, but no secret_key is configured; set the key it was written with (secret_key or ROSTER_SECRET_KEY)"
        )));
    };
    let wrong = || {
        StoreError::Database(format!(
            "the configured secret_key does not decrypt the secret of webhook {id}: it is not the key the secret was written with"
        ))
    };
    let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| wrong())?;
    if raw.len() < NONCE_LEN {
        return Err(wrong());
    }
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| wrong())?;
    let plain = key
        .cipher()
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: sealed,
                aad: id.as_bytes(),
            },
        )
        .map_err(|_| wrong())?;
    String::from_utf8(plain).map_err(|_| wrong())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SecretKey {
        SecretKey([b; 32])
    }

    #[test]
    fn round_trips_with_a_fresh_nonce_each_time() {
        let k = key(7);
        let a = seal(Some(&k), "ep1", "whsec_abc").unwrap();
        let b = seal(Some(&k), "ep1", "whsec_abc").unwrap();
        assert!(a.starts_with(PREFIX) && !a.contains("whsec_abc"));
        assert_ne!(a, b);
        assert_eq!(open(Some(&k), "ep1", &a).unwrap(), "whsec_abc");
        assert_eq!(open(Some(&k), "ep1", &b).unwrap(), "whsec_abc");
    }

    #[test]
    fn wrong_key_other_endpoint_or_no_key_fail_clearly() {
        let a = seal(Some(&key(7)), "ep1", "whsec_abc").unwrap();
        let e = open(Some(&key(8)), "ep1", &a).unwrap_err().to_string();
        assert!(e.contains("not the key"), "{e}");
        assert!(open(Some(&key(7)), "ep2", &a).is_err());
        let e = open(None, "ep1", &a).unwrap_err().to_string();
        assert!(e.contains("no secret_key"), "{e}");
        let mut tampered = a.clone();
        tampered.pop();
        assert!(open(Some(&key(7)), "ep1", &tampered).is_err());
    }

    #[test]
    fn plaintext_from_before_the_key_still_reads() {
        assert_eq!(
            open(Some(&key(7)), "ep1", "whsec_old").unwrap(),
            "whsec_old"
        );
        assert_eq!(open(None, "ep1", "whsec_old").unwrap(), "whsec_old");
        assert_eq!(seal(None, "ep1", "whsec_x").unwrap(), "whsec_x");
    }

    #[test]
    fn keys_are_32_bytes_of_base64() {
        let b64 = STANDARD.encode([1u8; 32]);
        assert!(SecretKey::from_base64(&b64).is_ok());
        assert!(SecretKey::from_base64(&URL_SAFE_NO_PAD.encode([1u8; 32])).is_ok());
        assert!(
            SecretKey::from_base64(&STANDARD.encode([1u8; 16]))
                .unwrap_err()
                .contains("16 bytes")
        );
        assert!(SecretKey::from_base64("not base64!").is_err());
        assert_eq!(format!("{:?}", key(1)), "SecretKey(…)");
    }
}
