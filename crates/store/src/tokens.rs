//! Bearer tokens: 256 random bits, shown once, stored as SHA-256 digests.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};

/// Prefix that makes a leaked token recognisable to secret scanners.
const PREFIX: &str = "rst_";

/// Prefix of admin API keys, distinct so a key is never mistaken for a SCIM token.
const ADMIN_PREFIX: &str = "rak_";

pub fn new_token() -> String {
    random_secret(PREFIX)
}

pub fn new_admin_key() -> String {
    random_secret(ADMIN_PREFIX)
}

/// Webhook signing secrets are kept (they sign every delivery), so they are shown on creation and rotation only.
pub fn new_webhook_secret() -> String {
    random_secret("whsec_")
}

/// The secret of a one-time Admin Portal link; stored as its digest.
pub fn new_portal_secret() -> String {
    random_secret("rpl_")
}

fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Tokens have full entropy, so a fast digest is safe: there is nothing to brute-force.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hash_stably() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && a.len() > 40);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
    }
}
