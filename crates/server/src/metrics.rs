//! Prometheus metrics: `GET /metrics` on an address of its own
//! (`metrics_listen`, off by default), so that it never faces the clients
//! the SCIM port faces.
//!
//! Counters and histograms are recorded where things happen, through the
//! `metrics` facade (a no-op until a recorder is installed, so a server
//! without `metrics_listen` pays nothing for them); the recorder is one per
//! process. Gauges about the store (WAL size, pool, webhook lag) are read from
//! the store when scraped ([`roster_store::StoreGauges`]), never kept by a loop.
//!
//! Labels are bounded: routes are templates (`/scim/v2/{dir}/Users/{id}`),
//! never paths, and a directory id is a label only with
//! `metrics_directory_labels`, on requests whose token proved it.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use roster_store::gauges::Gauges;
use roster_store::{Store, now_ms};
use tokio::net::TcpListener;

/// Latency buckets (seconds) of every `_seconds` histogram.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Buckets of the write batch size (requests per committed transaction).
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Buckets (seconds) of a Google poll's duration: a large directory takes minutes.
const POLL_BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// The process's recorder, installed by the first server that serves metrics.
static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Why `/metrics` cannot be served.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics: {0}")]
pub struct MetricsError(String);

/// The process's Prometheus recorder, installed on first use.
pub fn recorder() -> Result<PrometheusHandle, MetricsError> {
    RECORDER.get_or_init(install).clone().map_err(MetricsError)
}

fn install() -> Result<PrometheusHandle, String> {
    let recorder = PrometheusBuilder::new()
        .set_buckets(&LATENCY_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("roster_store_write_batch_size".into()),
                &BATCH_BUCKETS,
            )
        })
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("roster_google_poll_duration_seconds".into()),
                &POLL_BUCKETS,
            )
        })
        .map_err(|e| e.to_string())?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|_| "another metrics recorder is installed in this process".to_owned())?;
    describe();
    Ok(handle)
}

/// HELP text of every recorded series (`promtool check metrics` wants it).
fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        "roster_http_requests_total",
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        "roster_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by method and route template"
    );
    describe_counter!(
        "roster_scim_operations_total",
        "SCIM requests, by resource type, method and result (success, client_error, server_error)"
    );
    describe_counter!(
        "roster_bulk_operations_total",
        "Operations inside /Bulk requests, by method and result"
    );
    describe_histogram!(
        "roster_store_write_batch_size",
        "Requests committed together in one write transaction"
    );
    describe_histogram!(
        "roster_store_commit_duration_seconds",
        Unit::Seconds,
        "Time a write transaction's COMMIT took"
    );
    describe_counter!(
        "roster_sqlite_checkpoints_total",
        "SQLite WAL checkpoints, by mode (passive: the checkpoint thread; inline: the writer)"
    );
    describe_counter!(
        "roster_events_written_total",
        "Directory-sync events this process committed to the event log"
    );
    describe_counter!(
        "roster_webhook_deliveries_total",
        "Webhook delivery attempts, by result"
    );
    describe_counter!(
        "roster_rate_limited_total",
        "Requests answered 429, by API (scim, admin)"
    );
    describe_counter!(
        "roster_auth_failures_total",
        "Requests refused for their credentials, by API and reason"
    );
    describe_counter!(
        "roster_google_polls_total",
        "Polls of Google Workspace directories, by result (success, error)"
    );
    describe_histogram!(
        "roster_google_poll_duration_seconds",
        Unit::Seconds,
        "Time a poll of a Google Workspace directory took, listing and applying"
    );
    describe_counter!(
        "roster_google_listed_total",
        "Users, groups and memberships Google's Directory API listed to polls, by kind"
    );
    metrics::describe_gauge!(
        "roster_google_last_success_timestamp_seconds",
        Unit::Seconds,
        "When a Google Workspace directory's last successful poll ended (Unix time), by directory"
    );
    describe_counter!(
        "roster_request_log_dropped_total",
        "Provider requests left out of the request log because its writer fell behind"
    );
}

/// What one Google poll saw, for [`google_poll`].
#[derive(Debug, Default, Clone, Copy)]
pub struct PollSeen {
    pub users: usize,
    pub groups: usize,
    pub members: usize,
}

/// Records one Google poll: its result and duration, what it listed and,
/// for a success, when it ended. `directory` labels the series only with
/// `metrics_directory_labels`; the last-success gauge exists only then,
/// since one number for all directories would say nothing.
pub fn google_poll(directory: Option<&str>, ok: bool, took: Duration, seen: PollSeen) {
    let result = if ok { "success" } else { "error" };
    let listed = [
        ("user", seen.users),
        ("group", seen.groups),
        ("membership", seen.members),
    ];
    match directory {
        Some(dir) => {
            let dir = dir.to_owned();
            metrics::counter!("roster_google_polls_total", "result" => result, "directory" => dir.clone())
                .increment(1);
            metrics::histogram!("roster_google_poll_duration_seconds", "directory" => dir.clone())
                .record(took.as_secs_f64());
            for (kind, n) in listed {
                metrics::counter!("roster_google_listed_total", "kind" => kind, "directory" => dir.clone())
                    .increment(n as u64);
            }
            if ok {
                metrics::gauge!("roster_google_last_success_timestamp_seconds", "directory" => dir)
                    .set(now_ms() as f64 / 1000.0);
            }
        }
        None => {
            metrics::counter!("roster_google_polls_total", "result" => result).increment(1);
            metrics::histogram!("roster_google_poll_duration_seconds").record(took.as_secs_f64());
            for (kind, n) in listed {
                metrics::counter!("roster_google_listed_total", "kind" => kind).increment(n as u64);
            }
        }
    }
}

/// The result label of a status: `success`, `client_error` or `server_error`.
pub fn result_of(status: u16) -> &'static str {
    match status {
        500.. => "server_error",
        400.. => "client_error",
        _ => "success",
    }
}

/// Counts one answered HTTP request. `route` is the matched route template
/// (`unmatched` when none matched); `directory`, when given, labels the SCIM
/// operation (only with `metrics_directory_labels`).
pub fn http_request(
    method: &str,
    route: &str,
    status: u16,
    took: Duration,
    directory: Option<&str>,
) {
    let method = bounded_method(method);
    metrics::counter!(
        "roster_http_requests_total",
        "method" => method,
        "route" => route.to_owned(),
        "status" => status.to_string(),
    )
    .increment(1);
    metrics::histogram!(
        "roster_http_request_duration_seconds",
        "method" => method,
        "route" => route.to_owned(),
    )
    .record(took.as_secs_f64());
    if let Some(resource_type) = scim_resource_type(route) {
        let result = result_of(status);
        match directory {
            Some(dir) => metrics::counter!(
                "roster_scim_operations_total",
                "resource_type" => resource_type,
                "method" => method,
                "result" => result,
                "directory" => dir.to_owned(),
            )
            .increment(1),
            None => metrics::counter!(
                "roster_scim_operations_total",
                "resource_type" => resource_type,
                "method" => method,
                "result" => result,
            )
            .increment(1),
        }
    }
}

/// The resource type a SCIM route template addresses: `Users` for
/// `/scim/v2/{dir}/Users/{id}`, `all` for the root `.search`.
pub fn scim_resource_type(route: &str) -> Option<&'static str> {
    let rest = route.strip_prefix("/scim/v2/{dir}")?;
    let first = rest.trim_start_matches('/').split('/').next().unwrap_or("");
    Some(match first {
        "Users" => "Users",
        "Groups" => "Groups",
        "Bulk" => "Bulk",
        "Me" => "Me",
        "Schemas" => "Schemas",
        "ResourceTypes" => "ResourceTypes",
        "ServiceProviderConfig" => "ServiceProviderConfig",
        ".search" => "all",
        _ => "other",
    })
}

/// A method as a label: the standard ones, anything else `other`.
fn bounded_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// Counts one operation of a /Bulk request.
pub fn bulk_operation(method: &str, ok: bool) {
    let method = bounded_method(&method.to_ascii_uppercase());
    let result = if ok { "success" } else { "error" };
    metrics::counter!("roster_bulk_operations_total", "method" => method, "result" => result)
        .increment(1);
}

/// Counts one webhook delivery attempt by its result: `success`, `http_4xx`,
/// `http_5xx`, `http_other`, or the failure without an answer (`timeout`,
/// `connection_failed`, `request_failed`).
pub fn webhook_delivery(response_code: Option<u16>, error: Option<&str>) {
    let result = match (response_code, error) {
        (Some(200..=299), _) => "success",
        (Some(400..=499), _) => "http_4xx",
        (Some(500..=599), _) => "http_5xx",
        (Some(_), _) => "http_other",
        (None, Some("timed out")) => "timeout",
        (None, Some("connection failed")) => "connection_failed",
        (None, _) => "request_failed",
    };
    metrics::counter!("roster_webhook_deliveries_total", "result" => result).increment(1);
}

/// Counts a 429 on the SCIM API (`scim`) or the admin API (`admin`).
pub fn rate_limited(api: &'static str) {
    metrics::counter!("roster_rate_limited_total", "api" => api).increment(1);
}

/// Counts a request refused for its credentials: `missing`, `unknown` (or
/// revoked), `wrong_directory` (a valid token on another directory's path).
pub fn auth_failure(api: &'static str, reason: &'static str) {
    metrics::counter!("roster_auth_failures_total", "api" => api, "reason" => reason).increment(1);
}

/// Counts a provider request the request log had no room for.
pub fn request_log_dropped() {
    metrics::counter!("roster_request_log_dropped_total").increment(1);
}

/// Serves `GET /metrics` on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn Store>,
    handle: PrometheusHandle,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let upkeep = handle.clone();
    // Histograms are buffered until rendered; between scrapes the buffers
    // are folded in now and then so they stay small.
    let upkeep = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(Scrape { store, handle });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    upkeep.abort();
    served
}

#[derive(Clone)]
struct Scrape {
    store: Arc<dyn Store>,
    handle: PrometheusHandle,
}

async fn scrape(State(s): State<Scrape>) -> Response {
    let mut text = s.handle.render();
    let gauges = tokio::time::timeout(Duration::from_secs(5), s.store.gauges()).await;
    match gauges {
        Ok(Ok(g)) => render_gauges(&mut text, &g, now_ms()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: cannot read the store's gauges");
            render_store_up(&mut text, false);
        }
        Err(_) => {
            tracing::warn!("metrics: the store's gauges took over 5 s");
            render_store_up(&mut text, false);
        }
    }
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

fn render_store_up(out: &mut String, up: bool) {
    family(
        out,
        "roster_store_gauges_up",
        "Whether the store's gauges below could be read at this scrape",
    );
    let _ = writeln!(out, "roster_store_gauges_up {}", u8::from(up));
}

/// Appends the store's gauges in the text exposition format.
pub fn render_gauges(out: &mut String, g: &Gauges, now: i64) {
    render_store_up(out, true);
    if let Some(bytes) = g.sqlite_wal_bytes {
        family(
            out,
            "roster_sqlite_wal_bytes",
            "Bytes in SQLite's write-ahead log",
        );
        let _ = writeln!(out, "roster_sqlite_wal_bytes {bytes}");
    }
    if let Some(pool) = g.pool {
        family(
            out,
            "roster_postgres_pool_connections",
            "This process's PostgreSQL connections, by state (in_use, idle)",
        );
        let _ = writeln!(
            out,
            "roster_postgres_pool_connections{{state=\"in_use\"}} {}",
            pool.in_use
        );
        let _ = writeln!(
            out,
            "roster_postgres_pool_connections{{state=\"idle\"}} {}",
            pool.idle
        );
        family(
            out,
            "roster_postgres_pool_waiting",
            "Calls waiting for a PostgreSQL connection",
        );
        let _ = writeln!(out, "roster_postgres_pool_waiting {}", pool.waiting);
    }
    family(
        out,
        "roster_webhook_lag_events",
        "Events after an enabled webhook endpoint's cursor, by endpoint",
    );
    for w in &g.webhooks {
        let _ = writeln!(
            out,
            "roster_webhook_lag_events{{endpoint=\"{}\"}} {}",
            escape(&w.endpoint),
            w.events
        );
    }
    family(
        out,
        "roster_webhook_lag_seconds",
        "Age of the oldest event an enabled webhook endpoint has not been sent, by endpoint",
    );
    let age = |oldest: Option<i64>| oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
    for w in &g.webhooks {
        let _ = writeln!(
            out,
            "roster_webhook_lag_seconds{{endpoint=\"{}\"}} {}",
            escape(&w.endpoint),
            age(w.oldest_ms)
        );
    }
    family(
        out,
        "roster_webhook_oldest_pending_seconds",
        "Age of the oldest event any enabled webhook endpoint has not been sent",
    );
    let oldest = g.webhooks.iter().filter_map(|w| w.oldest_ms).min();
    let _ = writeln!(out, "roster_webhook_oldest_pending_seconds {}", age(oldest));
}

fn family(out: &mut String, name: &str, help: &str) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// A label value as the exposition format quotes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_store::gauges::{PoolGauges, WebhookLag};

    #[test]
    fn routes_name_their_resource_type() {
        assert_eq!(
            scim_resource_type("/scim/v2/{dir}/Users/{id}"),
            Some("Users")
        );
        assert_eq!(scim_resource_type("/scim/v2/{dir}/.search"), Some("all"));
        assert_eq!(scim_resource_type("/scim/v2/{dir}/Bulk"), Some("Bulk"));
        assert_eq!(scim_resource_type("/api/v1/events"), None);
        assert_eq!(result_of(201), "success");
        assert_eq!(result_of(409), "client_error");
        assert_eq!(result_of(503), "server_error");
        assert_eq!(bounded_method("BREW"), "other");
    }

    #[test]
    fn store_gauges_render_as_exposition_text() {
        let g = Gauges {
            sqlite_wal_bytes: None,
            pool: Some(PoolGauges {
                in_use: 2,
                idle: 3,
                waiting: 1,
            }),
            webhooks: vec![
                WebhookLag {
                    endpoint: "wh_1".into(),
                    events: 4,
                    oldest_ms: Some(10_000),
                },
                WebhookLag {
                    endpoint: "wh_\"2".into(),
                    events: 0,
                    oldest_ms: None,
                },
            ],
        };
        let mut out = String::new();
        render_gauges(&mut out, &g, 12_500);
        assert!(out.contains("roster_postgres_pool_connections{state=\"in_use\"} 2\n"));
        assert!(out.contains("roster_postgres_pool_waiting 1\n"));
        assert!(out.contains("roster_webhook_lag_events{endpoint=\"wh_1\"} 4\n"));
        assert!(out.contains("roster_webhook_lag_seconds{endpoint=\"wh_1\"} 2.5\n"));
        assert!(out.contains("roster_webhook_lag_events{endpoint=\"wh_\\\"2\"} 0\n"));
        assert!(out.contains("roster_webhook_oldest_pending_seconds 2.5\n"));
        assert!(!out.contains("roster_sqlite_wal_bytes"));
    }
}
