//! Webhook endpoints: `/api/v1/webhooks`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roster_store::events::{ALL_TYPES, parse_event_id};
use roster_store::webhooks::WebhookFormat;
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

pub async fn create(
    State(s): State<AppState>,
    _a: AdminAuth,
    Json(body): Json<NewEndpoint>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    validate(&body.url, &body.events)?;
    let format = body.format.as_deref().map(parse_format).transpose()?;
    if let Some(d) = &body.directory_id
        && s.store.get_directory(d).await?.is_none()
    {
        return Err(AppError::bad_request(format!("no directory {d}")));
    }
    let (endpoint, secret) = s
        .store
        .create_webhook(
            &body.url,
            format.unwrap_or_default(),
            &body.events,
            body.directory_id.as_deref(),
        )
        .await?;
    let mut out = endpoint.to_json();
    out["secret"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(out)))
}

pub async fn list(State(s): State<AppState>, _a: AdminAuth) -> Result<Json<Value>, AppError> {
    let all = s.store.list_webhooks().await?;
    Ok(Json(json!({
        "object": "list",
        "data": all.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
    })))
}

pub async fn get(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let e = s
        .store
        .get_webhook(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(e.to_json()))
}

pub async fn delete(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    if s.store.delete_webhook(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

pub async fn enable(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    set_enabled(&s, &id, true).await
}

pub async fn disable(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    set_enabled(&s, &id, false).await
}

async fn set_enabled(s: &AppState, id: &str, enabled: bool) -> Result<Json<Value>, AppError> {
    if !s.store.set_webhook_enabled(id, enabled).await? {
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
    _a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let secret = s
        .store
        .rotate_webhook_secret(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(json!({"id": id, "secret": secret})))
}

pub async fn deliveries(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
    q: QueryParams,
) -> Result<Json<Value>, AppError> {
    if s.store.get_webhook(&id).await?.is_none() {
        return Err(not_found(&id));
    }
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
    _a: AdminAuth,
    Path(id): Path<String>,
    Json(body): Json<Redeliver>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let seq = parse_event_id(&body.event_id)
        .ok_or_else(|| AppError::bad_request(format!("{:?} is not an event id", body.event_id)))?;
    if !s.store.redeliver(&id, seq).await? {
        return Err(AppError::not_found(format!(
            "no webhook endpoint {id} or no event {}",
            body.event_id
        )));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"endpoint_id": id, "event_id": body.event_id, "status": "queued"})),
    ))
}
