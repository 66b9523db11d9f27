//! Webhook signing secrets at rest: when a `secret_key` is configured they are
//! stored encrypted with ChaCha20-Poly1305 (a random 96-bit nonce per value,
//! the endpoint id as associated data, so a stored value cannot be moved to
//! another endpoint) as `enc:v1:<base64url(nonce ‖ ciphertext ‖ tag)>`.
//! Values without that prefix are plaintext written before a key was set, and
//! still read.
//!
//! Keys rotate without downtime: a [`SecretKey`] carries the keys it replaced
//! (`previous_secret_keys`), which still decrypt but never encrypt, so
//! instances can move to a new key one at a time while every one of them
//! reads what the others write. [`open_stale`] tells which stored values a
//! previous key (or no key) opened, for re-encryption with the current one.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use rand::Rng;

use crate::{StoreError, StoreResult};

const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 12;

/// The 256-bit key that encrypts webhook secrets, with the previous keys
/// that still decrypt them; never printed.
#[derive(Clone)]
pub struct SecretKey {
    current: [u8; 32],
    previous: Vec<[u8; 32]>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

/// Why a `secret_key` is refused. The messages never quote the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretKeyError {
    #[error("secret_key is not base64; make one with `openssl rand -base64 32`")]
    NotBase64,
    #[error(
        "secret_key must be 32 bytes (256 bits) in base64, not {bytes} bytes; make one with `openssl rand -base64 32`"
    )]
    WrongLength { bytes: usize },
}

impl SecretKey {
    /// Reads 32 bytes written in base64 (standard or URL-safe, padded or
    /// not), as `openssl rand -base64 32` prints them.
    pub fn from_base64(text: &str) -> Result<SecretKey, SecretKeyError> {
        let t = text.trim();
        let bytes = STANDARD
            .decode(t)
            .or_else(|_| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')))
            .map_err(|_| SecretKeyError::NotBase64)?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| SecretKeyError::WrongLength { bytes: b.len() })?;
        Ok(SecretKey {
            current: key,
            previous: Vec::new(),
        })
    }

    /// This key, also decrypting what `previous` keys encrypted (tried in
    /// order after this one; a repeat of the current key is dropped).
    pub fn with_previous(mut self, previous: impl IntoIterator<Item = SecretKey>) -> SecretKey {
        for p in previous {
            for k in std::iter::once(p.current).chain(p.previous) {
                if k != self.current && !self.previous.contains(&k) {
                    self.previous.push(k);
                }
            }
        }
        self
    }

    /// How many previous keys this key also decrypts with.
    pub fn previous_count(&self) -> usize {
        self.previous.len()
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        cipher(&self.current)
    }
}

fn cipher(key: &[u8; 32]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(&(*key).into())
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
        .map_err(|_| StoreError::internal("cannot encrypt a webhook secret"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
}

/// What a sealed value is, for errors: values sealed under `google:<directory>`
/// are a Google Workspace directory's credentials, the others webhook secrets.
fn describe(id: &str) -> String {
    match id.strip_prefix("google:") {
        Some(dir) => format!("the credentials of Google Workspace directory {dir}"),
        None => format!("the secret of webhook {id}"),
    }
}

/// The secret of endpoint `id` from its stored value.
pub fn open(key: Option<&SecretKey>, id: &str, stored: &str) -> StoreResult<String> {
    open_stale(key, id, stored).map(|(secret, _)| secret)
}

/// The secret of endpoint `id`, and whether its stored value should be
/// sealed again with the current key: it is plaintext while a key is set, or
/// only a previous key opened it.
pub fn open_stale(key: Option<&SecretKey>, id: &str, stored: &str) -> StoreResult<(String, bool)> {
    let Some(body) = stored.strip_prefix(PREFIX) else {
        return Ok((stored.to_owned(), key.is_some()));
    };
    let what = describe(id);
    let Some(key) = key else {
        return Err(StoreError::internal(format!(
            "{what} is encrypted, but no secret_key is configured; set the key it was written with (secret_key or ROSTER_SECRET_KEY)"
        )));
    };
    let wrong = || {
        StoreError::internal(if key.previous.is_empty() {
            format!(
                "the configured secret_key does not decrypt {what}: it is not the key it was written with (when changing keys, list the old one in previous_secret_keys)"
            )
        } else {
            format!(
                "neither secret_key nor any of previous_secret_keys decrypts {what}: none is the key it was written with"
            )
        })
    };
    let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| wrong())?;
    if raw.len() < NONCE_LEN {
        return Err(wrong());
    }
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| wrong())?;
    // The AEAD tag tells a wrong key apart, so trying each key in turn is exact.
    let decrypt = |k: &[u8; 32]| {
        cipher(k)
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: id.as_bytes(),
                },
            )
            .ok()
    };
    let (plain, stale) = match decrypt(&key.current) {
        Some(plain) => (plain, false),
        None => (
            key.previous.iter().find_map(decrypt).ok_or_else(wrong)?,
            true,
        ),
    };
    Ok((String::from_utf8(plain).map_err(|_| wrong())?, stale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SecretKey {
        SecretKey {
            current: [b; 32],
            previous: Vec::new(),
        }
    }

    #[test]
    fn previous_keys_decrypt_but_never_encrypt() {
        let old = seal(Some(&key(1)), "ep1", "whsec_old").unwrap();
        let rolled = key(2).with_previous([key(1)]);
        assert_eq!(
            open_stale(Some(&rolled), "ep1", &old).unwrap(),
            ("whsec_old".to_owned(), true)
        );
        let new = seal(Some(&rolled), "ep1", "whsec_new").unwrap();
        assert_eq!(
            open_stale(Some(&rolled), "ep1", &new).unwrap(),
            ("whsec_new".to_owned(), false)
        );
        // Sealed with the current key only: the old key alone cannot read it.
        let e = open(Some(&key(1)), "ep1", &new).unwrap_err().to_string();
        assert!(e.contains("previous_secret_keys"), "{e}");
        // An instance not yet moved (old key current, new one previous) reads both.
        let staying = key(1).with_previous([key(2)]);
        assert_eq!(open(Some(&staying), "ep1", &new).unwrap(), "whsec_new");
        assert_eq!(open(Some(&staying), "ep1", &old).unwrap(), "whsec_old");
        // None of the keys: a clear error, naming the endpoint.
        let e = open(Some(&key(3).with_previous([key(4)])), "ep1", &old)
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither secret_key") && e.contains("ep1"), "{e}");
    }

    #[test]
    fn plaintext_is_stale_only_when_there_is_a_key() {
        assert_eq!(
            open_stale(Some(&key(1)), "ep1", "whsec_p").unwrap(),
            ("whsec_p".to_owned(), true)
        );
        assert_eq!(
            open_stale(None, "ep1", "whsec_p").unwrap(),
            ("whsec_p".to_owned(), false)
        );
    }

    #[test]
    fn the_current_key_repeated_as_previous_is_dropped() {
        let k = key(5).with_previous([key(5), key(6), key(6)]);
        assert_eq!(k.previous_count(), 1);
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
        let short = SecretKey::from_base64(&STANDARD.encode([1u8; 16])).unwrap_err();
        assert_eq!(short, SecretKeyError::WrongLength { bytes: 16 });
        assert!(short.to_string().contains("16 bytes"), "{short}");
        assert_eq!(
            SecretKey::from_base64("not base64!").unwrap_err(),
            SecretKeyError::NotBase64
        );
        assert_eq!(format!("{:?}", key(1)), "SecretKey(…)");
    }
}
