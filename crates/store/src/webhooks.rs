//! Webhook endpoint and delivery records.

use serde_json::{Value, json};

/// What a delivery to an endpoint looks like: Roster's own payload and
/// `Roster-Signature`, or the WorkOS event and `WorkOS-Signature`, so that
/// an app written against WorkOS webhooks verifies Roster's deliveries with
/// its SDK unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookFormat {
    #[default]
    Roster,
    Workos,
}

impl WebhookFormat {
    pub const ALL: [WebhookFormat; 2] = [WebhookFormat::Roster, WebhookFormat::Workos];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Roster => "roster",
            WebhookFormat::Workos => "workos",
        }
    }

    /// The format named `s`; `None` for any other name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl std::fmt::Display for WebhookFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change to an endpoint's settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookUpdate {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub format: WebhookFormat,
    /// Event types delivered; empty means all.
    pub event_types: Vec<String>,
    pub directory_id: Option<String>,
    pub enabled: bool,
    /// `healthy`, `failing` (gave up on an event) or `disabled` (the receiver answered 410).
    pub state: String,
    pub cursor: i64,
    pub attempts: i64,
    pub first_failure: Option<i64>,
    pub retry_at: i64,
    pub created_at: i64,
    /// When the settings last changed (URL, events, enabled, secret).
    pub updated_at: i64,
    /// How the dispatcher delivers to this endpoint.
    pub options: DeliveryOptions,
    /// The newest event a dispatcher may have sent: after a crash, events
    /// past the cursor up to here go out again marked as a repeat attempt.
    pub sent_through: i64,
}

/// How deliveries to one endpoint are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryOptions {
    /// Requests in flight at once; `None`: the `webhook_max_in_flight` setting.
    pub max_in_flight: Option<u32>,
    /// Most events in one request; 1 sends each event on its own (a JSON
    /// object), more sends a JSON array of up to this many.
    pub batch_max_events: u32,
    /// How long a batch waits to fill before it goes out anyway.
    pub batch_max_wait_ms: u32,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            max_in_flight: None,
            batch_max_events: 1,
            batch_max_wait_ms: 0,
        }
    }
}

impl DeliveryOptions {
    /// Largest accepted `max_in_flight`.
    pub const MAX_IN_FLIGHT: u32 = 1024;
    /// Largest accepted `batch_max_events`.
    pub const MAX_BATCH_EVENTS: u32 = 1000;
    /// Largest accepted `batch_max_wait_ms`.
    pub const MAX_BATCH_WAIT_MS: u32 = 60_000;

    /// Why these options cannot be stored, if they cannot.
    pub fn problem(&self) -> Option<String> {
        if let Some(n) = self.max_in_flight
            && !(1..=Self::MAX_IN_FLIGHT).contains(&n)
        {
            return Some(format!(
                "max_in_flight must be between 1 and {}, not {n}",
                Self::MAX_IN_FLIGHT
            ));
        }
        if !(1..=Self::MAX_BATCH_EVENTS).contains(&self.batch_max_events) {
            return Some(format!(
                "batch_max_events must be between 1 and {}, not {}",
                Self::MAX_BATCH_EVENTS,
                self.batch_max_events
            ));
        }
        if self.batch_max_wait_ms > Self::MAX_BATCH_WAIT_MS {
            return Some(format!(
                "batch_max_wait_ms must be at most {}, not {}",
                Self::MAX_BATCH_WAIT_MS,
                self.batch_max_wait_ms
            ));
        }
        None
    }
}

impl WebhookEndpoint {
    /// The admin API view: never the secret.
    pub fn to_json(&self) -> Value {
        json!({
            "object": "webhook_endpoint",
            "id": self.id,
            "url": self.url,
            "format": self.format.as_str(),
            "events": self.event_types,
            "directory_id": self.directory_id,
            "enabled": self.enabled,
            "state": self.state,
            "last_event_id": (self.cursor > 0).then(|| crate::events::event_id(self.cursor)),
            "created_at": self.created_at,
            "max_in_flight": self.options.max_in_flight,
            "batch_max_events": self.options.batch_max_events,
            "batch_max_wait_ms": self.options.batch_max_wait_ms,
        })
    }
}

/// What a dispatcher needs to deliver to an endpoint it has leased.
#[derive(Debug, Clone)]
pub struct Leased {
    pub endpoint: WebhookEndpoint,
    pub secret: String,
    /// Events an operator asked to redeliver, oldest first.
    pub redeliveries: Vec<i64>,
    /// The newest event when the lease was taken: every event up to it is
    /// committed, so an endpoint subscribed to none of them may skip to it.
    pub head: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Succeeded,
    Retrying,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// One delivery attempt, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub event_seq: i64,
    pub attempt: i64,
    pub status: DeliveryStatus,
    pub response_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// The start of the receiver's answer, bounded and with the endpoint's
    /// secret and signatures removed.
    pub response_excerpt: Option<String>,
    /// A redelivery requested by an operator (does not move the cursor).
    pub redelivery: bool,
}

/// How an endpoint's state moves after some attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Every event up to here is delivered or given up on.
    pub cursor: i64,
    /// See [`WebhookEndpoint::sent_through`]; saved before those events go out.
    pub sent_through: i64,
    pub attempts: i64,
    pub first_failure: Option<i64>,
    pub retry_at: i64,
    pub state: String,
    pub enabled: bool,
    pub deliveries: Vec<Delivery>,
}

/// A delivery row for the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub event_seq: i64,
    pub attempt: i64,
    pub status: String,
    pub response_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    pub created_at: i64,
}

impl DeliveryRecord {
    pub fn to_json(&self) -> Value {
        json!({
            "object": "webhook_delivery",
            "id": self.id,
            "event_id": crate::events::event_id(self.event_seq),
            "attempt": self.attempt,
            "status": self.status,
            "response_code": self.response_code,
            "latency_ms": self.latency_ms,
            "error": self.error,
            "response_excerpt": self.response_excerpt,
            "created_at": self.created_at,
        })
    }
}
