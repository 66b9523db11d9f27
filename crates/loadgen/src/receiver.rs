//! `roster-loadgen receiver`: a webhook receiver for the delivery
//! benchmarks (`scripts/event-bench.sh`). It answers every POST 200 after a
//! fixed delay (a receiver's own work, or a round trip), takes single events
//! and batches, and rewrites a status file every 0.5 s in the format of
//! `scripts/webhook-receiver.py`: requests, created events and distinct
//! ids, first and last arrival (seconds since the epoch). Loopback only.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct ReceiverArgs {
    /// Where to listen (a loopback address).
    #[arg(long, default_value = "127.0.0.1:18746")]
    listen: SocketAddr,
    /// The status file, rewritten every 0.5 s.
    #[arg(long)]
    status: PathBuf,
    /// Milliseconds before each answer.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

#[derive(Default)]
struct Seen {
    requests: u64,
    created: u64,
    ids: HashSet<String>,
    first: Option<f64>,
    last: Option<f64>,
    last_created: Option<f64>,
}

type Shared = (Arc<Mutex<Seen>>, Duration);

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

async fn hook(State((seen, delay)): State<Shared>, body: Bytes) -> StatusCode {
    let at = now();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let events = match parsed {
        Value::Array(items) => items,
        one => vec![one],
    };
    if let Ok(mut s) = seen.lock() {
        s.requests += 1;
        s.first.get_or_insert(at);
        s.last = Some(at);
        for e in events {
            let Some(id) = e.get("id").and_then(Value::as_str) else {
                continue;
            };
            if s.ids.insert(id.to_owned())
                && e.get("event").and_then(Value::as_str) == Some("dsync.user.created")
            {
                s.created += 1;
                s.last_created = Some(at);
            }
        }
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    StatusCode::OK
}

pub async fn run(a: ReceiverArgs) -> Result<()> {
    if !a.listen.ip().is_loopback() {
        bail!("the receiver listens on loopback only, not {}", a.listen);
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state((seen.clone(), Duration::from_millis(a.delay_ms)));
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("cannot listen on {}", a.listen))?;
    let status = a.status.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let text = match seen.lock() {
                Ok(s) => json!({
                    "requests": s.requests,
                    "created": s.created,
                    "distinct_ids": s.ids.len(),
                    "first": s.first,
                    "last": s.last,
                    "last_created": s.last_created,
                })
                .to_string(),
                Err(_) => break,
            };
            let tmp = status.with_extension("tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, &status);
            }
        }
    });
    axum::serve(listener, app)
        .await
        .context("the receiver stopped")
}
