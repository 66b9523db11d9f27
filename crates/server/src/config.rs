//! Server settings. The CLI fills them from flags, `ROSTER_*` variables and a
//! TOML file, and refuses keys that are neither these nor its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// The URL clients reach this server at (behind a proxy); defaults to `http://{Host}`.
    pub public_url: Option<String>,
    /// Page size when a client sends no `count`.
    pub default_page_size: u64,
    /// Larger `count` values are clamped to this (never an error).
    pub max_page_size: u64,
    /// How long an RFC 9865 cursor stays valid.
    pub cursor_timeout_secs: i64,
    /// Largest request body for resource endpoints.
    pub max_body_bytes: usize,
    /// Answer group PATCH with 204 and no body (large groups: no echo of every member).
    pub group_patch_no_content: bool,
    /// Serve /Bulk; when false, /ServiceProviderConfig says bulk.supported=false
    /// and /Bulk answers 501 (for clients that must work without bulk).
    pub bulk_enabled: bool,
    /// Most operations in one /Bulk request (advertised as bulk.maxOperations).
    pub bulk_max_operations: usize,
    /// Largest /Bulk request body in bytes (advertised as bulk.maxPayloadSize).
    pub bulk_max_payload_bytes: usize,
    /// How long a reply is remembered under an `Idempotency-Key`.
    pub idempotency_window_secs: i64,
    /// Events older than this are deleted (once every enabled webhook has them).
    pub event_retention_days: i64,
    /// Deliver webhooks from this process (several instances may all do so safely).
    pub webhooks_enabled: bool,
    /// Webhook requests in flight at once, over all endpoints.
    pub webhook_concurrency: usize,
    /// Webhook requests in flight at once to one endpoint, unless the
    /// endpoint sets its own `max_in_flight`.
    pub webhook_max_in_flight: usize,
    /// Time allowed for one delivery attempt.
    pub webhook_timeout_secs: u64,
    /// How long an event is retried before the endpoint is marked failing and moves on.
    pub webhook_retry_window_secs: i64,
    /// First retry delay; each further retry doubles it (with jitter), up to the maximum.
    pub webhook_backoff_base_ms: u64,
    pub webhook_backoff_max_secs: u64,
    /// How often the dispatcher looks for new events.
    pub webhook_poll_ms: u64,
    /// How long a dispatcher holds an endpoint without saving progress; a
    /// process killed mid-delivery delays that endpoint by up to this long.
    /// Keep it well above `webhook_timeout_secs`.
    pub webhook_lease_secs: u64,
    /// Custom extension schema files (RFC 7643 §7 JSON), each bound to a resource type.
    pub extensions: Vec<ExtensionConfig>,

    // Framing and size limits (docs/limits.md). Each is answered with a SCIM
    // error naming its key, never a 500 or a dropped connection.
    /// Longest request target (path and query) in bytes; longer is 414.
    pub max_url_bytes: usize,
    /// Most bytes of request header names and values together; more is 431.
    pub max_header_bytes: usize,
    /// Deepest nesting of JSON objects and arrays in a request body.
    pub max_json_depth: usize,
    /// Most members of one JSON object (attributes of a resource or complex value).
    pub max_json_object_members: usize,
    /// Most elements of one JSON array (values of a multi-valued attribute).
    pub max_json_array_len: usize,
    /// Longest JSON string, key or value, in bytes.
    pub max_string_bytes: usize,
    /// Longest identifier (`id`, `externalId`, `userName`, group `displayName`) in bytes.
    pub max_identifier_bytes: usize,
    /// Most operations in one PATCH request.
    pub max_patch_operations: usize,
    /// Longest filter in bytes.
    pub max_filter_bytes: usize,
    /// Deepest nesting of parentheses, `not` and value filters in a filter
    /// (at most the parser's own cap of 64).
    pub max_filter_depth: usize,

    // Timeouts.
    /// A client must send a complete request head within this time, counted
    /// from connecting or from the end of the previous response; so this is
    /// also how long an idle keep-alive connection stays open.
    pub header_read_timeout_secs: u64,
    /// Time allowed to receive a whole request body; slower uploads get 408.
    pub body_read_timeout_secs: u64,
    /// Time allowed for a whole request; slower ones get 503.
    pub request_timeout_secs: u64,
    /// The longest one database read may run before the database stops it
    /// and the request gets 503 with `Retry-After`; below
    /// `request_timeout_secs`, so that a runaway filter frees its connection
    /// and answers cleanly. Unset: 80% of `request_timeout_secs`.
    pub statement_timeout_ms: Option<u64>,
    /// On SIGTERM or Ctrl-C: how long requests in flight may take to finish
    /// before their connections are closed.
    pub shutdown_grace_secs: u64,
    /// When a connection closes, what the client still sends is read and
    /// discarded, up to this many bytes and `close_drain_secs`, so that a
    /// client that writes a whole body before reading gets an early answer
    /// (413, 401) instead of a reset. 0 closes at once.
    pub close_drain_max_bytes: u64,
    pub close_drain_secs: u64,

    // Abuse and load.
    /// Most open client connections; further connections wait in the listen backlog.
    pub max_connections: usize,
    /// Most requests handled at once; more are shed with 503 and `Retry-After`.
    pub max_concurrent_requests: usize,
    /// Per-token request rate (token bucket refill per second); 0 turns rate limiting off.
    pub rate_limit_per_sec: f64,
    /// Per-token burst (token bucket size).
    pub rate_limit_burst: f64,
    /// Per-directory overrides of the two settings above.
    pub rate_limit_overrides: Vec<RateLimitOverride>,
    /// Per-admin-key request rate on `/api/v1` (token bucket refill per
    /// second); 0 turns it off. Per process, like every bucket.
    pub admin_rate_limit_per_sec: f64,
    /// Per-admin-key burst (token bucket size).
    pub admin_rate_limit_burst: f64,
    /// How long a proven SCIM token is remembered without asking the
    /// database (`token_cache`); 0 asks every time. A revocation made
    /// elsewhere takes effect within this time.
    pub token_cache_secs: f64,

    // Operations.
    /// Where `GET /metrics` (Prometheus) listens; off when unset. Keep it off
    /// the internet: it names routes, endpoints and, with the next setting,
    /// directories.
    pub metrics_listen: Option<SocketAddr>,
    /// Label SCIM operations with their directory id in `/metrics` (one
    /// series per directory: turn on only with a bounded number of them).
    pub metrics_directory_labels: bool,
    /// Base URL of Google's Admin SDK Directory API, which Google Workspace
    /// directories are polled from (an egress proxy or a test stand-in).
    pub google_api_url: String,
    /// Most Directory API requests one Google directory's poll sends a
    /// minute (0: no limit). Google's default quota is 2,400 a minute per
    /// user per project; the default leaves half of it to other clients.
    pub google_requests_per_minute: u32,

    // The web pages.
    /// A dashboard session unused for this long ends (sign in again).
    pub admin_session_idle_secs: i64,
    /// A dashboard session ends this long after sign-in, however busy.
    pub admin_session_max_secs: i64,

    // The provider request log and the Admin Portal.
    /// Provider requests kept per directory (newest first); 0 records none.
    pub request_log_max_per_directory: u64,
    /// Provider requests older than this are deleted.
    pub request_log_max_age_secs: u64,
    /// The longest a portal link may stay valid (`expires_in_secs` at most).
    pub portal_link_max_secs: u64,
    /// The product name the portal shows its visitors.
    pub portal_product_name: String,
    /// An https URL of the logo the portal shows; none when unset.
    pub portal_logo_url: Option<String>,
    /// The portal's accent colour, `#rrggbb`.
    pub portal_accent_color: String,
}

impl ServerConfig {
    /// The statement timeout in force: `statement_timeout_ms`, or 80% of
    /// `request_timeout_secs`. An error says why a value set is refused: it
    /// must be at least 1 ms and below the request timeout.
    pub fn statement_timeout(&self) -> Result<Duration, String> {
        let request_ms = self.request_timeout_secs.max(1).saturating_mul(1000);
        match self.statement_timeout_ms {
            None => Ok(Duration::from_millis(request_ms / 5 * 4)),
            Some(0) => Err("statement_timeout_ms must be at least 1".to_owned()),
            Some(ms) if ms >= request_ms => Err(format!(
                "statement_timeout_ms ({ms}) must be below request_timeout_secs ({} s = {request_ms} ms), so that a slow query ends before its request does",
                self.request_timeout_secs.max(1)
            )),
            Some(ms) => Ok(Duration::from_millis(ms)),
        }
    }
}

/// A directory whose tokens get their own rate (`[[rate_limit_overrides]]`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitOverride {
    pub directory: String,
    /// Requests per second per token; 0 means unlimited.
    pub per_sec: f64,
    /// Bucket size; defaults to twice `per_sec` (at least 1).
    pub burst: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionConfig {
    /// Path of a JSON file holding one schema in the `/Schemas` representation.
    pub file: PathBuf,
    /// "User" or "Group".
    pub resource_type: String,
    #[serde(default)]
    pub required: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            default_page_size: 100,
            max_page_size: 1000,
            cursor_timeout_secs: 3600,
            max_body_bytes: 1024 * 1024,
            group_patch_no_content: false,
            bulk_enabled: true,
            bulk_max_operations: 1000,
            bulk_max_payload_bytes: 4 * 1024 * 1024,
            idempotency_window_secs: 24 * 3600,
            event_retention_days: 30,
            webhooks_enabled: true,
            webhook_concurrency: 256,
            webhook_max_in_flight: 32,
            webhook_timeout_secs: 10,
            webhook_retry_window_secs: 3 * 24 * 3600,
            webhook_backoff_base_ms: 1000,
            webhook_backoff_max_secs: 3600,
            webhook_poll_ms: 250,
            webhook_lease_secs: 60,
            extensions: Vec::new(),
            max_url_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_json_depth: 32,
            max_json_object_members: 1000,
            max_json_array_len: 20_000,
            max_string_bytes: 64 * 1024,
            max_identifier_bytes: 1024,
            max_patch_operations: 1000,
            max_filter_bytes: 16 * 1024,
            max_filter_depth: 32,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            request_timeout_secs: 60,
            statement_timeout_ms: None,
            shutdown_grace_secs: 20,
            close_drain_max_bytes: 64 * 1024 * 1024,
            close_drain_secs: 10,
            max_connections: 4096,
            max_concurrent_requests: 512,
            rate_limit_per_sec: 500.0,
            rate_limit_burst: 1000.0,
            rate_limit_overrides: Vec::new(),
            admin_rate_limit_per_sec: 100.0,
            admin_rate_limit_burst: 200.0,
            token_cache_secs: 1.0,
            metrics_listen: None,
            metrics_directory_labels: false,
            google_api_url: "https://admin.googleapis.com".to_owned(),
            google_requests_per_minute: 1200,
            admin_session_idle_secs: 30 * 60,
            admin_session_max_secs: 12 * 3600,
            request_log_max_per_directory: 1000,
            request_log_max_age_secs: 7 * 24 * 3600,
            portal_link_max_secs: 7 * 24 * 3600,
            portal_product_name: "Roster".to_owned(),
            portal_logo_url: None,
            portal_accent_color: "#2f5bea".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_timeout_is_below_the_request_timeout() {
        let mut c = ServerConfig::default();
        assert_eq!(c.statement_timeout(), Ok(Duration::from_secs(48)));
        c.request_timeout_secs = 10;
        assert_eq!(c.statement_timeout(), Ok(Duration::from_secs(8)));
        c.statement_timeout_ms = Some(2500);
        assert_eq!(c.statement_timeout(), Ok(Duration::from_millis(2500)));
        c.statement_timeout_ms = Some(9999);
        assert_eq!(c.statement_timeout(), Ok(Duration::from_millis(9999)));
        for refused in [0, 10_000, 60_000] {
            c.statement_timeout_ms = Some(refused);
            let e = c.statement_timeout().unwrap_err();
            assert!(e.contains("statement_timeout_ms"), "{e}");
        }
    }
}
