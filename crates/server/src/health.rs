//! `GET /health/live` and `GET /health/ready`: unauthenticated probes for
//! load balancers and orchestrators, outside the per-token rate limits.
//!
//! Live answers whenever the process serves HTTP. Ready checks the store
//! (a read answers, the schema is current, the write path takes work) and,
//! when webhooks are enabled, that the dispatcher's loop went round recently:
//! its heartbeat may be at most [`stale_after_ms`] old, that is ten poll
//! intervals and never less than 30 s (one delivery attempt may take up to
//! `webhook_timeout_secs`, so the bound also covers a slow receiver).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use roster_store::now_ms;
use serde_json::{Map, Value, json};

use crate::config::ServerConfig;
use crate::state::AppState;

/// How long each of the store's checks may take before ready reports it
/// failing: under the 5 s `roster healthcheck` waits for the answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The background loops' heartbeats, shared by the loops and the probes.
#[derive(Debug)]
pub struct Liveness {
    /// When the webhook dispatcher's loop last went round (Unix ms); 0
    /// before it started.
    webhooks: AtomicI64,
}

impl Default for Liveness {
    fn default() -> Self {
        // Counted from the start, so a dispatcher that never runs shows.
        Liveness {
            webhooks: AtomicI64::new(now_ms()),
        }
    }
}

impl Liveness {
    /// Records that the webhook dispatcher's loop went round now.
    pub fn webhooks_beat(&self) {
        self.webhooks.store(now_ms(), Ordering::Relaxed);
    }

    /// When the dispatcher's loop last went round (Unix ms).
    pub fn webhooks_last(&self) -> i64 {
        self.webhooks.load(Ordering::Relaxed)
    }

    /// Sets the heartbeat to a given time, for tests of staleness.
    pub fn set_webhooks_last(&self, at_ms: i64) {
        self.webhooks.store(at_ms, Ordering::Relaxed);
    }
}

/// How old the dispatcher's heartbeat may be before ready fails:
/// max(10 × `webhook_poll_ms`, 30 s).
pub fn stale_after_ms(cfg: &ServerConfig) -> i64 {
    i64::try_from(cfg.webhook_poll_ms)
        .unwrap_or(i64::MAX / 10)
        .saturating_mul(10)
        .max(30_000)
}

/// The webhooks check: "disabled", ok, or why it fails.
pub fn webhooks_check(cfg: &ServerConfig, last_ms: i64, now: i64) -> Result<&'static str, String> {
    if !cfg.webhooks_enabled {
        return Ok("disabled");
    }
    let age = now.saturating_sub(last_ms);
    if age > stale_after_ms(cfg) {
        Err(format!(
            "the webhook dispatcher has not run for {} s",
            age / 1000
        ))
    } else {
        Ok("ok")
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
}

async fn live() -> Response {
    no_store(StatusCode::OK, json!({"status": "ok"}))
}

async fn ready(State(state): State<AppState>) -> Response {
    let mut checks = Map::new();
    let mut ok = true;
    let mut put = |name: &str, r: Result<&str, String>| {
        let v = match r {
            Ok(s) => Value::from(s),
            Err(why) => {
                ok = false;
                json!({"status": "failing", "reason": why})
            }
        };
        checks.insert(name.to_owned(), v);
    };
    let h = state.store.health(CHECK_TIMEOUT).await;
    put("database", h.database.map(|()| "ok"));
    put("migrations", h.migrations.map(|()| "ok"));
    put("writer", h.writer.map(|()| "ok"));
    put(
        "webhooks",
        webhooks_check(&state.config, state.liveness.webhooks_last(), now_ms()),
    );
    let (status, word) = if ok {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "failing")
    };
    no_store(status, json!({"status": word, "checks": checks}))
}

fn no_store(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_is_stale_after_ten_polls_or_thirty_seconds() {
        let mut cfg = ServerConfig {
            webhook_poll_ms: 250,
            ..ServerConfig::default()
        };
        assert_eq!(stale_after_ms(&cfg), 30_000);
        cfg.webhook_poll_ms = 10_000;
        assert_eq!(stale_after_ms(&cfg), 100_000);
        let now = 1_000_000_000;
        assert_eq!(webhooks_check(&cfg, now - 100_000, now), Ok("ok"));
        let stale = webhooks_check(&cfg, now - 100_001, now).unwrap_err();
        assert!(stale.contains("has not run for 100 s"), "{stale}");
        cfg.webhooks_enabled = false;
        assert_eq!(webhooks_check(&cfg, 0, now), Ok("disabled"));
    }
}
