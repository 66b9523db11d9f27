//! Server settings. The CLI fills them from flags, `ROSTER_*` variables and a TOML file.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// Endpoints delivered to at once.
    pub webhook_concurrency: usize,
    /// Time allowed for one delivery attempt.
    pub webhook_timeout_secs: u64,
    /// How long an event is retried before the endpoint is marked failing and moves on.
    pub webhook_retry_window_secs: i64,
    /// First retry delay; each further retry doubles it (with jitter), up to the maximum.
    pub webhook_backoff_base_ms: u64,
    pub webhook_backoff_max_secs: u64,
    /// How often the dispatcher looks for new events.
    pub webhook_poll_ms: u64,
    /// Custom extension schema files (RFC 7643 §7 JSON), each bound to a resource type.
    pub extensions: Vec<ExtensionConfig>,
}

#[derive(Debug, Clone, Deserialize)]
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
            webhook_concurrency: 8,
            webhook_timeout_secs: 10,
            webhook_retry_window_secs: 3 * 24 * 3600,
            webhook_backoff_base_ms: 1000,
            webhook_backoff_max_secs: 3600,
            webhook_poll_ms: 250,
            extensions: Vec::new(),
        }
    }
}
