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
    /// A redelivery requested by an operator (does not move the cursor).
    pub redelivery: bool,
}

/// How an endpoint's state moves after a batch of attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub cursor: i64,
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
            "created_at": self.created_at,
        })
    }
}
