//! Per-token rate limiting and global load shedding.
//!
//! Each SCIM bearer token gets a token bucket: `rate_limit_per_sec` refill,
//! `rate_limit_burst` capacity, overridable per directory. A request finding
//! the bucket empty is answered 429 with `Retry-After` (the seconds until a
//! token is back), which the identity providers' SCIM clients honour. Buckets
//! are keyed by a digest of the token, so the raw secret is never kept.
//! Admin API keys get buckets of their own (`admin_rate_limit_per_sec`,
//! `admin_rate_limit_burst`), answered 429 in the app API's error format.
//!
//! Buckets live in this process: N instances behind a load balancer let
//! through N times the configured rate, so configure rate / N.
//!
//! Independently, at most `max_concurrent_requests` requests are handled at
//! once; the rest are shed at once with 503 and `Retry-After` rather than
//! queued, so overload degrades into fast refusals instead of timing out
//! everyone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use roster_scim::ScimError;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::error::scim_error_response;
use crate::token_cache::TokenDigest;
#[cfg(test)]
use crate::token_cache::token_digest;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Rate {
    per_sec: f64,
    burst: f64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Buckets kept before idle ones (which have refilled completely, so
/// forgetting them changes nothing) are swept.
const SWEEP_AT: usize = 10_000;

#[derive(Debug)]
pub struct RateLimiter {
    default: Rate,
    overrides: HashMap<String, Rate>,
    admin: Rate,
    /// The longest any bucket takes to refill from empty: a bucket idle that
    /// long is full, so forgetting it changes nothing.
    refill_time: Duration,
    buckets: Mutex<HashMap<[u8; 32], Bucket>>,
}

impl RateLimiter {
    pub fn new(cfg: &ServerConfig) -> Self {
        let rate = |per_sec: f64, burst: Option<f64>| Rate {
            per_sec: per_sec.max(0.0),
            burst: burst.unwrap_or(per_sec * 2.0).max(1.0),
        };
        let default = rate(cfg.rate_limit_per_sec, Some(cfg.rate_limit_burst));
        let admin = rate(
            cfg.admin_rate_limit_per_sec,
            Some(cfg.admin_rate_limit_burst),
        );
        let overrides: HashMap<String, Rate> = cfg
            .rate_limit_overrides
            .iter()
            .map(|o| (o.directory.clone(), rate(o.per_sec, o.burst)))
            .collect();
        let refill_time = [&default, &admin]
            .into_iter()
            .chain(overrides.values())
            .filter(|r| r.per_sec > 0.0)
            .map(|r| Duration::from_secs_f64((r.burst / r.per_sec).min(1e9)))
            .max()
            .unwrap_or_default();
        RateLimiter {
            default,
            overrides,
            admin,
            refill_time,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the token's bucket, or says how many seconds
    /// until one is available.
    pub fn check(&self, token: TokenDigest, directory: &str) -> Result<(), u64> {
        self.check_digest_at(token, directory, Instant::now())
    }

    #[cfg(test)]
    fn check_at(&self, token: &str, directory: &str, now: Instant) -> Result<(), u64> {
        self.check_digest_at(token_digest(token), directory, now)
    }

    fn check_digest_at(
        &self,
        token: TokenDigest,
        directory: &str,
        now: Instant,
    ) -> Result<(), u64> {
        let rate = self
            .overrides
            .get(directory)
            .copied()
            .unwrap_or(self.default);
        self.take(rate, token, now)
    }

    /// [`RateLimiter::check`] for an admin API key.
    pub fn check_admin(&self, key: &str) -> Result<(), u64> {
        self.check_admin_at(key, Instant::now())
    }

    fn check_admin_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        // Its own digest domain: an admin key's bucket can never be a SCIM
        // token's, whatever the two strings are.
        let digest = Sha256::new()
            .chain_update(b"roster admin key\0")
            .chain_update(key.as_bytes())
            .finalize();
        self.take(self.admin, digest.into(), now)
    }

    fn take(&self, rate: Rate, key: [u8; 32], now: Instant) -> Result<(), u64> {
        if rate.per_sec <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= SWEEP_AT {
            let full_after = self.refill_time;
            buckets.retain(|_, b| now.saturating_duration_since(b.last) < full_after);
        }
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: rate.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate.per_sec).min(rate.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) / rate.per_sec;
            Err((wait.ceil() as u64).max(1))
        }
    }
}

/// The 429 answer.
pub fn too_many_requests(retry_after: u64) -> Response {
    let mut resp = scim_error_response(&ScimError::new(
        429,
        None,
        format!(
            "too many requests for this token (rate_limit_per_sec); retry after {retry_after} s"
        ),
    ));
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The 429 answer on the app API (`/api/v1`), in its `{"error", "message"}` format.
pub fn too_many_admin_requests(retry_after: u64) -> Response {
    let mut resp = (
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        axum::Json(serde_json::json!({
            "error": "rate_limited",
            "message": format!(
                "too many requests for this admin API key (admin_rate_limit_per_sec); retry after {retry_after} s"
            ),
        })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Middleware state: the global limit on requests in flight.
#[derive(Clone)]
pub struct Concurrency(pub Arc<Semaphore>);

pub async fn shed_load(State(limit): State<Concurrency>, req: Request, next: Next) -> Response {
    let Ok(_permit) = limit.0.try_acquire() else {
        tracing::warn!("shedding load: max_concurrent_requests reached");
        let mut resp = scim_error_response(&ScimError::new(
            503,
            None,
            "the server is at max_concurrent_requests; retry shortly",
        ));
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    };
    next.run(req).await.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RateLimitOverride;

    fn limiter(per_sec: f64, burst: f64) -> RateLimiter {
        RateLimiter::new(&ServerConfig {
            rate_limit_per_sec: per_sec,
            rate_limit_burst: burst,
            // The same for admin keys, so the sweep's refill time is this rate's.
            admin_rate_limit_per_sec: per_sec,
            admin_rate_limit_burst: burst,
            rate_limit_overrides: vec![RateLimitOverride {
                directory: "slow".into(),
                per_sec: 1.0,
                burst: Some(1.0),
            }],
            ..ServerConfig::default()
        })
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_the_rate() {
        let l = limiter(2.0, 3.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            l.check_at("tok", "d", t0).unwrap();
        }
        assert_eq!(l.check_at("tok", "d", t0), Err(1));
        // Another token has its own bucket.
        l.check_at("other", "d", t0).unwrap();
        // Half a second refills one request at 2/s.
        l.check_at("tok", "d", t0 + Duration::from_millis(500))
            .unwrap();
        assert!(
            l.check_at("tok", "d", t0 + Duration::from_millis(500))
                .is_err()
        );
    }

    #[test]
    fn retry_after_is_the_wait_for_one_token() {
        let l = limiter(0.1, 1.0);
        let t0 = Instant::now();
        l.check_at("tok", "d", t0).unwrap();
        assert_eq!(l.check_at("tok", "d", t0), Err(10));
    }

    #[test]
    fn directories_can_have_their_own_rate_and_zero_is_unlimited() {
        let l = limiter(0.0, 1.0);
        let t0 = Instant::now();
        for _ in 0..1000 {
            l.check_at("tok", "d", t0).unwrap();
        }
        l.check_at("tok", "slow", t0).unwrap();
        assert_eq!(l.check_at("tok", "slow", t0), Err(1));
    }

    #[test]
    fn admin_keys_have_their_own_rate_and_buckets() {
        let l = RateLimiter::new(&ServerConfig {
            rate_limit_per_sec: 1.0,
            rate_limit_burst: 1.0,
            admin_rate_limit_per_sec: 2.0,
            admin_rate_limit_burst: 3.0,
            ..ServerConfig::default()
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            l.check_admin_at("key", t0).unwrap();
        }
        assert_eq!(l.check_admin_at("key", t0), Err(1));
        l.check_admin_at("other", t0).unwrap();
        // The same string as a SCIM token has a separate bucket.
        l.check_at("key", "d", t0).unwrap();
        l.check_admin_at("key", t0 + Duration::from_millis(500))
            .unwrap();
    }

    #[test]
    fn a_zero_admin_rate_is_unlimited() {
        let l = RateLimiter::new(&ServerConfig {
            admin_rate_limit_per_sec: 0.0,
            admin_rate_limit_burst: 1.0,
            ..ServerConfig::default()
        });
        let t0 = Instant::now();
        for _ in 0..1000 {
            l.check_admin_at("key", t0).unwrap();
        }
    }

    #[test]
    fn the_admin_429_says_when_to_retry_in_the_app_api_format() {
        let resp = too_many_admin_requests(3);
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "3");
    }

    #[test]
    fn idle_buckets_are_swept() {
        let l = limiter(1000.0, 1.0);
        let t0 = Instant::now();
        for i in 0..SWEEP_AT {
            l.check_at(&i.to_string(), "d", t0).unwrap();
        }
        l.check_at("late", "d", t0 + Duration::from_secs(1))
            .unwrap();
        assert_eq!(l.buckets.lock().unwrap().len(), 1);
    }
}
