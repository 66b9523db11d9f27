//! A short-lived memory of proven SCIM tokens.
//!
//! Every SCIM request proves its bearer token; asking the database each time
//! cost a read-pool hop and a query per request, about 5% of the server's CPU
//! at 16 concurrent identity-provider clients. A proven token is remembered
//! for `token_cache_secs` (default 1 s, at most 5 s). Revoking or rotating through this
//! process's admin API forgets every remembered token at once; a revocation
//! made by another instance or by `roster token revoke` takes effect within
//! `token_cache_secs`. Only tokens the database accepted are remembered, keyed
//! by their SHA-256 digest (never the token), so bogus tokens cannot fill it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Entries kept before expired ones are swept.
const SWEEP_AT: usize = 10_000;

/// The longest a token is remembered, whatever `token_cache_secs` says: with
/// several instances, no cache may outlive a revocation by more than this.
pub const MAX_TTL_SECS: f64 = 5.0;

/// SHA-256 of a bearer credential: how the token cache and the rate limiter
/// know a token without keeping it. Computed once per request.
pub type TokenDigest = [u8; 32];

pub fn token_digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Debug)]
pub struct TokenCache {
    ttl: Duration,
    proven: Mutex<HashMap<TokenDigest, (String, Instant)>>,
}

impl TokenCache {
    pub fn new(ttl_secs: f64) -> Self {
        TokenCache {
            ttl: Duration::from_secs_f64(ttl_secs.clamp(0.0, MAX_TTL_SECS)),
            proven: Mutex::new(HashMap::new()),
        }
    }

    /// The directory a recently proven token belongs to.
    pub fn get(&self, token: &TokenDigest) -> Option<String> {
        if self.ttl.is_zero() {
            return None;
        }
        let proven = self.proven.lock().ok()?;
        let (dir, at) = proven.get(token)?;
        (at.elapsed() < self.ttl).then(|| dir.clone())
    }

    /// Remembers that the database just accepted `token` for `dir`.
    pub fn insert(&self, token: TokenDigest, dir: &str) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut proven) = self.proven.lock() else {
            return;
        };
        if proven.len() >= SWEEP_AT {
            let ttl = self.ttl;
            proven.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        proven.insert(token, (dir.to_owned(), Instant::now()));
    }

    /// Forgets every token: after a revocation or rotation.
    pub fn clear(&self) {
        if let Ok(mut proven) = self.proven.lock() {
            proven.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_remembered_for_its_time_only() {
        let (t, other) = (token_digest("t"), token_digest("other"));
        let cache = TokenCache::new(0.05);
        assert_eq!(cache.get(&t), None);
        cache.insert(t, "d1");
        assert_eq!(cache.get(&t).as_deref(), Some("d1"));
        assert_eq!(cache.get(&other), None);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(cache.get(&t), None, "expired");
    }

    #[test]
    fn clearing_forgets_and_zero_turns_it_off() {
        let t = token_digest("t");
        let cache = TokenCache::new(60.0);
        cache.insert(t, "d1");
        cache.clear();
        assert_eq!(cache.get(&t), None);
        let off = TokenCache::new(0.0);
        off.insert(t, "d1");
        assert_eq!(off.get(&t), None);
    }

    #[test]
    fn no_setting_keeps_a_token_longer_than_five_seconds() {
        assert_eq!(TokenCache::new(3600.0).ttl, Duration::from_secs(5));
        assert_eq!(TokenCache::new(-1.0).ttl, Duration::ZERO);
    }

    #[test]
    fn expired_entries_are_swept_when_it_is_full() {
        let cache = TokenCache::new(0.01);
        for i in 0..SWEEP_AT {
            cache.insert(token_digest(&i.to_string()), "d");
        }
        std::thread::sleep(Duration::from_millis(20));
        cache.insert(token_digest("new"), "d");
        assert_eq!(cache.proven.lock().unwrap().len(), 1);
    }
}
