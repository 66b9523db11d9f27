//! Schemas of the `/api/v1` objects that the store and the domain render
//! (`to_json` there, where no HTTP types may live): users and groups as
//! events carry them, events, admin keys, audit records, webhook endpoints
//! and deliveries. The test in `super` renders real objects and holds their
//! keys against these schemas, so neither side can change alone.

#![allow(dead_code)] // Fields are read by the schema derive only.

use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `/api/v1`'s error body; `error` follows from the status.
#[derive(serde::Serialize, ToSchema)]
pub struct ErrorBody {
    /// `invalid_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `cursor_expired`, `rate_limited`, `unavailable` or `internal`.
    #[schema(example = "not_found")]
    pub error: &'static str,
    /// What went wrong and what to send instead.
    pub message: String,
}

/// The WorkOS routes' error body, which the SDKs raise as typed errors.
#[derive(serde::Serialize, ToSchema)]
#[schema(as = workos::Error)]
pub struct WorkosErrorBody {
    /// `invalid_request_parameters`, `invalid_cursor`, `unauthorized`,
    /// `forbidden`, `entity_not_found`, `conflict`, `unprocessable_entity`,
    /// `rate_limit_exceeded`, `service_unavailable` or `server_error`.
    #[schema(example = "entity_not_found")]
    pub code: &'static str,
    pub message: String,
}

/// A normalized user: the payload of `dsync.user.*` events.
#[derive(serde::Serialize, ToSchema)]
pub struct User {
    #[schema(example = "directory_user")]
    object: String,
    id: String,
    directory_id: String,
    /// SCIM `externalId`.
    idp_id: Option<String>,
    username: Option<String>,
    emails: Vec<Email>,
    first_name: Option<String>,
    last_name: Option<String>,
    job_title: Option<String>,
    /// `active` or `inactive`.
    state: String,
    /// The groups the user is a direct member of.
    groups: Vec<GroupRef>,
    #[schema(value_type = Object)]
    custom_attributes: Map<String, Value>,
    created_at: String,
    updated_at: String,
    /// The SCIM resource as stored (never a password).
    #[schema(value_type = Object)]
    raw_attributes: Map<String, Value>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct Email {
    #[schema(value_type = Option<String>)]
    value: Value,
    #[serde(rename = "type")]
    #[schema(value_type = Option<String>)]
    kind: Value,
    primary: bool,
}

#[derive(serde::Serialize, ToSchema)]
pub struct GroupRef {
    id: String,
    name: String,
}

/// A normalized group: the payload of `dsync.group.*` events.
#[derive(serde::Serialize, ToSchema)]
pub struct Group {
    #[schema(example = "directory_group")]
    object: String,
    id: String,
    directory_id: String,
    idp_id: Option<String>,
    name: Option<String>,
    created_at: String,
    updated_at: String,
    #[schema(value_type = Object)]
    raw_attributes: Map<String, Value>,
}

/// An event of the stream, in commit order.
#[derive(serde::Serialize, ToSchema)]
pub struct Event {
    #[schema(example = "event")]
    object: String,
    /// `evt_` and 16 hex digits.
    id: String,
    event: String,
    directory_id: String,
    created_at: String,
    /// The user, group, membership or directory the event is about.
    #[schema(value_type = Object)]
    data: Value,
}

/// An admin API key's metadata.
#[derive(serde::Serialize, ToSchema)]
pub struct AdminKey {
    #[schema(example = "admin_key")]
    object: String,
    id: String,
    name: String,
    /// `full` or `read_only`.
    access: String,
    /// The directories the key sees; `null`: all.
    directories: Option<Vec<String>>,
    created_at: String,
    rotated_at: Option<String>,
    revoked_at: Option<String>,
}

/// An admin key as created or rotated: the key itself is shown this once.
#[derive(serde::Serialize, ToSchema)]
pub struct AdminKeyWithSecret {
    #[schema(inline)]
    #[serde(flatten)]
    info: AdminKey,
    key: String,
}

/// One administrative change.
#[derive(serde::Serialize, ToSchema)]
pub struct AuditRecord {
    #[schema(example = "audit_record")]
    object: String,
    /// `aud_` and 16 hex digits.
    id: String,
    at: String,
    /// `admin_key:<id>`, `cli`, `dashboard:<session>`, ….
    actor: String,
    /// `directory.created`, `token.revoked`, ….
    action: String,
    target: AuditTarget,
    /// What changed; never a secret.
    #[schema(value_type = Object)]
    details: Value,
}

#[derive(serde::Serialize, ToSchema)]
pub struct AuditTarget {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    directory_id: Option<String>,
}

/// A page of the audit log.
#[derive(serde::Serialize, ToSchema)]
pub struct AuditList {
    #[schema(example = "list")]
    object: String,
    data: Vec<AuditRecord>,
    list_metadata: AuditListMetadata,
}

#[derive(serde::Serialize, ToSchema)]
pub struct AuditListMetadata {
    /// Where to go on from; stays put at the head.
    after: Option<String>,
}

/// A webhook endpoint (never its secret).
#[derive(serde::Serialize, ToSchema)]
pub struct WebhookEndpoint {
    #[schema(example = "webhook_endpoint")]
    object: String,
    id: String,
    url: String,
    /// `roster` or `workos`.
    format: String,
    /// The event types delivered; empty: all.
    events: Vec<String>,
    directory_id: Option<String>,
    enabled: bool,
    /// `healthy`, `failing` or `disabled`.
    state: String,
    last_event_id: Option<String>,
    /// Unix milliseconds.
    created_at: i64,
    max_in_flight: Option<u32>,
    batch_max_events: u32,
    batch_max_wait_ms: u32,
}

/// A new webhook endpoint with its signing secret, shown this once.
#[derive(serde::Serialize, ToSchema)]
pub struct WebhookEndpointWithSecret {
    #[schema(inline)]
    #[serde(flatten)]
    endpoint: WebhookEndpoint,
    secret: String,
}

#[derive(serde::Serialize, ToSchema)]
pub struct WebhookList {
    #[schema(example = "list")]
    object: String,
    data: Vec<WebhookEndpoint>,
}

/// One delivery attempt.
#[derive(serde::Serialize, ToSchema)]
pub struct WebhookDelivery {
    #[schema(example = "webhook_delivery")]
    object: String,
    id: i64,
    event_id: String,
    attempt: i64,
    /// `delivered`, `failed`, ….
    status: String,
    response_code: Option<i64>,
    latency_ms: i64,
    error: Option<String>,
    /// The start of the receiver's answer (at most 512 bytes), with the
    /// endpoint's secret and the signatures sent replaced by `[redacted]`.
    response_excerpt: Option<String>,
    /// Unix milliseconds.
    created_at: i64,
}

#[derive(serde::Serialize, ToSchema)]
pub struct DeliveryList {
    #[schema(example = "list")]
    object: String,
    data: Vec<WebhookDelivery>,
}

/// A rotated webhook secret.
#[derive(serde::Serialize, ToSchema)]
pub struct WebhookSecret {
    id: String,
    secret: String,
}

/// A redelivery queued.
#[derive(serde::Serialize, ToSchema)]
pub struct Redelivery {
    endpoint_id: String,
    event_id: String,
    #[schema(example = "queued")]
    status: String,
}

/// A Google Workspace directory's poll settings and state.
#[derive(serde::Serialize, ToSchema)]
pub struct GoogleSource {
    admin_email: String,
    customer: String,
    domain: Option<String>,
    poll_interval_secs: i64,
    last_poll_at: Option<String>,
    /// `ok` or `error`.
    last_poll_result: Option<String>,
    last_poll_error: Option<String>,
    /// What kind of failure stopped the last poll: `forbidden` (delegation,
    /// scopes or the admin), `unauthorized` (the key), `unavailable` (429,
    /// 5xx, unreachable) or `other`.
    last_poll_error_kind: Option<String>,
    /// When the newest poll began; later than `last_poll_at` while one runs.
    last_poll_started_at: Option<String>,
    /// What the last finished poll listed.
    users_seen: Option<i64>,
    groups_seen: Option<i64>,
    /// Users, groups and memberships the last poll created, changed or deleted.
    changes_applied: Option<i64>,
    /// The service account's client id, which domain-wide delegation names.
    client_id: Option<String>,
    sync_requested: bool,
}

/// A poll of a Google Workspace directory, asked for.
#[derive(serde::Serialize, ToSchema)]
pub struct SyncRequested {
    directory_id: String,
    #[schema(example = "requested")]
    sync: String,
}

/// A directory's settings.
#[derive(serde::Serialize, ToSchema)]
pub struct Settings {
    directory_id: String,
    /// `update` (a deactivated user is `dsync.user.updated`, state
    /// `inactive`) or `delete` (`dsync.user.deleted`).
    deactivation: String,
    /// `{key: SCIM attribute path}`; `null`: the default mapping.
    #[schema(value_type = Option<Object>)]
    custom_attributes: Option<Map<String, Value>>,
}

/// The errors any `/api/v1` route may answer with, all in [`ErrorBody`].
#[derive(utoipa::IntoResponses)]
pub enum AppErrors {
    /// A parameter or body that cannot be used; the message names it.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No admin key, or an unknown or revoked one.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The key may not do this (read-only, or limited to other directories).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such object, or one in a directory the key does not see.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The change conflicts with what exists.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Too many requests for this key; see `Retry-After`.
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// The database is unavailable or the server is stopping; retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The errors any WorkOS route may answer with, all in [`WorkosErrorBody`].
#[derive(utoipa::IntoResponses)]
pub enum WorkosErrors {
    /// A parameter that cannot be used; the message names it.
    #[response(status = 400)]
    BadRequest(WorkosErrorBody),
    #[response(status = 401)]
    Unauthorized(WorkosErrorBody),
    #[response(status = 403)]
    Forbidden(WorkosErrorBody),
    #[response(status = 404)]
    NotFound(WorkosErrorBody),
    #[response(status = 409)]
    Conflict(WorkosErrorBody),
    /// A body or parameter of the webhook endpoint routes that cannot be used.
    #[response(status = 422)]
    Unprocessable(WorkosErrorBody),
    #[response(status = 429)]
    RateLimited(WorkosErrorBody),
    #[response(status = 503)]
    Unavailable(WorkosErrorBody),
}

/// One SCIM request a directory's provider made, as the request log keeps it.
#[derive(serde::Serialize, ToSchema)]
pub struct ProviderRequest {
    #[schema(example = "provider_request")]
    object: String,
    /// `req_` and 16 hex digits.
    id: String,
    directory_id: String,
    at: String,
    method: String,
    /// The path, and the query when it names no secret.
    path: String,
    status: u16,
    latency_ms: i64,
    /// Whether the request proved a token of the directory.
    authenticated: bool,
    /// The SCIM error detail Roster answered, for a failed request.
    error: Option<String>,
    user_agent: Option<String>,
    /// The provider type detected from the request.
    provider: Option<String>,
    /// The request body of a failed request, truncated, secrets removed.
    request_body: Option<String>,
    /// The response body of a failed request, truncated.
    response_body: Option<String>,
}

/// A page of a directory's request log, newest first.
#[derive(serde::Serialize, ToSchema)]
pub struct ProviderRequestList {
    #[schema(example = "list")]
    object: String,
    data: Vec<ProviderRequest>,
    list_metadata: crate::api::params::ListMetadata,
}

/// Why a connection fails, and what fixes it.
#[derive(serde::Serialize, ToSchema)]
pub struct ConnectionFailure {
    /// `token`, `base_url`, `refused` or `server_error`.
    code: String,
    explanation: String,
    fix: String,
}

/// A directory's connection status, read from its request log.
#[derive(serde::Serialize, ToSchema)]
pub struct Connection {
    #[schema(example = "connection")]
    object: String,
    directory_id: String,
    /// `waiting`, `connected` or `failing`.
    state: String,
    /// The status in one sentence.
    headline: String,
    provider: Option<String>,
    users: Option<i64>,
    groups: Option<i64>,
    /// Seconds since the provider's newest request.
    last_request_secs: Option<i64>,
    failure: Option<ConnectionFailure>,
    last_request_at: Option<String>,
    requests_24h: i64,
    errors_24h: i64,
}

/// A one-time Admin Portal link.
#[derive(serde::Serialize, ToSchema)]
pub struct PortalLink {
    #[schema(example = "portal_link")]
    object: String,
    id: String,
    directory_id: String,
    /// Opens the portal once, before `expires_at`.
    url: String,
    expires_at: String,
    return_url: Option<String>,
}
