//! Webhook endpoints: `/api/v1/webhooks`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roster_store::events::{ALL_TYPES, parse_event_id};
use roster_store::webhooks::{DeliveryOptions, WebhookEndpoint, WebhookFormat};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminAuth, AppError};
use crate::request::QueryParams;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    pub url: String,
    /// `roster` (the default) or `workos`.
    pub format: Option<String>,
    #[serde(default)]
    pub events: Vec<String>,
    pub directory_id: Option<String>,
    /// Requests in flight at once to this endpoint (default: the
    /// `webhook_max_in_flight` setting).
    pub max_in_flight: Option<u32>,
    /// Most events in one request; above 1, requests carry a JSON array.
    pub batch_max_events: Option<u32>,
    /// How long a batch waits to fill.
    pub batch_max_wait_ms: Option<u32>,
}

impl NewEndpoint {
    /// The delivery options asked for, checked.
    pub fn options(&self) -> Result<DeliveryOptions, AppError> {
        options(
            self.max_in_flight,
            self.batch_max_events,
            self.batch_max_wait_ms,
        )
    }
}

/// Delivery options from their API fields or CLI flags, checked.
pub fn options(
    max_in_flight: Option<u32>,
    batch_max_events: Option<u32>,
    batch_max_wait_ms: Option<u32>,
) -> Result<DeliveryOptions, AppError> {
    let d = DeliveryOptions::default();
    let o = DeliveryOptions {
        max_in_flight,
        batch_max_events: batch_max_events.unwrap_or(d.batch_max_events),
        batch_max_wait_ms: batch_max_wait_ms.unwrap_or(d.batch_max_wait_ms),
    };
    match o.problem() {
        Some(why) => Err(AppError::bad_request(why)),
        None => Ok(o),
    }
}

/// The endpoint format named `name`, or a 400 listing the known ones.
pub fn parse_format(name: &str) -> Result<WebhookFormat, AppError> {
    WebhookFormat::parse(name).ok_or_else(|| {
        AppError::bad_request(format!(
            "unknown webhook format {name:?}; known formats: {}",
            WebhookFormat::ALL.map(WebhookFormat::as_str).join(", ")
        ))
    })
}

/// Checks a webhook URL and event types before anything is stored.
pub fn validate(url: &str, events: &[String]) -> Result<(), AppError> {
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) || url.len() < 10 {
        return Err(AppError::bad_request(format!(
            "url must be an http:// or https:// URL, not {url:?}"
        )));
    }
    if let Some(bad) = events.iter().find(|t| !ALL_TYPES.contains(&t.as_str())) {
        return Err(AppError::bad_request(format!(
            "unknown event type {bad:?}; known types: {}",
            ALL_TYPES.join(", ")
        )));
    }
    Ok(())
}

fn not_found(id: &str) -> AppError {
    AppError::not_found(format!("no webhook endpoint {id}"))
}

/// Whether the key sees an endpoint: one of a directory it sees, or, for an
/// unlimited key, any endpoint.
pub(crate) fn sees(a: &AdminAuth, e: &WebhookEndpoint) -> bool {
    match &e.directory_id {
        Some(d) => a.sees(d),
        None => a.directories().is_none(),
    }
}

/// The endpoint, if it exists and the key sees it; 404 otherwise.
pub(crate) async fn visible(
    s: &AppState,
    a: &AdminAuth,
    id: &str,
) -> Result<WebhookEndpoint, AppError> {
    s.store
        .get_webhook(id)
        .await?
        .filter(|e| sees(a, e))
        .ok_or_else(|| not_found(id))
}

pub async fn create(
    State(s): State<AppState>,
    a: AdminAuth,
    Json(body): Json<NewEndpoint>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    a.require_write()?;
    validate(&body.url, &body.events)?;
    let options = body.options()?;
    let format = body.format.as_deref().map(parse_format).transpose()?;
    match &body.directory_id {
        // An endpoint for every directory would send a limited key's
        // receiver the events of directories it does not see.
        None => a.require_unlimited()?,
        Some(d) => {
            if !a.sees(d) || s.store.get_directory(d).await?.is_none() {
                return Err(AppError::bad_request(format!("no directory {d}")));
            }
        }
    }
    let (endpoint, secret) = s
        .store
        .create_webhook_with(
            &a.actor(),
            &body.url,
            format.unwrap_or_default(),
            &body.events,
            body.directory_id.as_deref(),
            options,
        )
        .await?;
    let mut out = endpoint.to_json();
    out["secret"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(out)))
}

pub async fn list(State(s): State<AppState>, a: AdminAuth) -> Result<Json<Value>, AppError> {
    let all = s.store.list_webhooks().await?;
    Ok(Json(json!({
        "object": "list",
        "data": all.iter().filter(|e| sees(&a, e)).map(|e| e.to_json()).collect::<Vec<_>>(),
    })))
}

pub async fn get(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(visible(&s, &a, &id).await?.to_json()))
}

pub async fn delete(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    visible(&s, &a, &id).await?;
    a.require_write()?;
    if s.store.delete_webhook(&a.actor(), &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

pub async fn enable(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    set_enabled(&s, &a, &id, true).await
}

pub async fn disable(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    set_enabled(&s, &a, &id, false).await
}

async fn set_enabled(
    s: &AppState,
    a: &AdminAuth,
    id: &str,
    enabled: bool,
) -> Result<Json<Value>, AppError> {
    visible(s, a, id).await?;
    a.require_write()?;
    if !s.store.set_webhook_enabled(&a.actor(), id, enabled).await? {
        return Err(not_found(id));
    }
    let e = s
        .store
        .get_webhook(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(e.to_json()))
}

pub async fn rotate_secret(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    visible(&s, &a, &id).await?;
    a.require_write()?;
    let secret = s
        .store
        .rotate_webhook_secret(&a.actor(), &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(json!({"id": id, "secret": secret})))
}

pub async fn deliveries(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
    q: QueryParams,
) -> Result<Json<Value>, AppError> {
    visible(&s, &a, &id).await?;
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<u64>().ok())
        .unwrap_or(50)
        .clamp(1, 1000);
    let rows = s.store.webhook_deliveries(&id, limit).await?;
    Ok(Json(json!({
        "object": "list",
        "data": rows.iter().map(|d| d.to_json()).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub struct Redeliver {
    pub event_id: String,
}

pub async fn redeliver(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
    Json(body): Json<Redeliver>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    queue_redelivery(&s, &a, &id, &body.event_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"endpoint_id": id, "event_id": body.event_id, "status": "queued"})),
    ))
}

/// Queues event `event_id` to be sent to endpoint `id` again, if the key
/// sees both and may write; for `/api/v1` and the dashboard alike.
pub(crate) async fn queue_redelivery(
    s: &AppState,
    a: &AdminAuth,
    id: &str,
    event_id: &str,
) -> Result<(), AppError> {
    let seq = parse_event_id(event_id)
        .ok_or_else(|| AppError::bad_request(format!("{event_id:?} is not an event id")))?;
    let missing =
        || AppError::not_found(format!("no webhook endpoint {id} or no event {event_id}"));
    visible(s, a, id).await.map_err(|_| missing())?;
    a.require_write()?;
    // A limited key may not send its receiver another directory's event.
    if a.directories().is_some()
        && !s
            .store
            .event(seq)
            .await?
            .is_some_and(|e| a.sees(&e.directory_id))
    {
        return Err(missing());
    }
    if !s.store.redeliver(id, seq).await? {
        return Err(missing());
    }
    Ok(())
}
