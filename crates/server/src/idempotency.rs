//! `Idempotency-Key`: a retried request with the same key and body gets the
//! first reply and changes nothing; the same key with another body is refused.

use axum::http::HeaderMap;
use roster_scim::ScimError;
use sha2::{Digest, Sha256};

pub const HEADER: &str = "idempotency-key";

/// The answer to a key reused with another request.
pub fn conflict() -> ScimError {
    ScimError::new(
        422,
        None,
        "this Idempotency-Key was used for a different request; use a new key for a new request",
    )
}

/// The key and the digest of the request it must match, when the client sent a key.
pub fn key(
    headers: &HeaderMap,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<Option<(String, Vec<u8>)>, ScimError> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ScimError::invalid_value("Idempotency-Key must be 1 to 255 visible ASCII characters")
        })?;
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    Ok(Some((key.to_owned(), h.finalize().to_vec())))
}
