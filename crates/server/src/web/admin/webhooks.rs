//! Webhook endpoints: add (the secret shown once), enable or disable,
//! remove; an endpoint's deliveries with their answers, and redelivery of
//! one event. The checks and store calls are `/api/v1/webhooks`'.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use roster_store::events::{ALL_TYPES, event_id};
use roster_store::webhooks::{DeliveryOptions, WebhookEndpoint, WebhookFormat};
use serde::Deserialize;

use super::{AdminSession, redirect};
use crate::api::params::ts;
use crate::api::webhooks::{parse_format, queue_redelivery, sees, validate, visible};
use crate::error::PageError;
use crate::request::QueryParams;
use crate::state::AppState;
use crate::web::csrf::Posted;
use crate::web::{Layout, page};

/// Deliveries shown on an endpoint's page.
const DELIVERIES: u64 = 100;

pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub format: &'static str,
    pub events: String,
    pub directory: String,
    pub enabled: bool,
    pub state: String,
}

fn endpoint_row(e: &WebhookEndpoint) -> EndpointRow {
    EndpointRow {
        id: e.id.clone(),
        url: e.url.clone(),
        format: e.format.as_str(),
        events: if e.event_types.is_empty() {
            "all".to_owned()
        } else {
            e.event_types.join(", ")
        },
        directory: e.directory_id.clone().unwrap_or_else(|| "all".to_owned()),
        enabled: e.enabled,
        state: e.state.clone(),
    }
}

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<EndpointRow>,
    types: &'static [&'static str],
    formats: Vec<&'static str>,
    can_write: bool,
    notice: Option<&'static str>,
}

/// `GET /admin/webhooks`.
pub async fn list(
    State(state): State<AppState>,
    a: AdminSession,
    q: QueryParams,
) -> Result<Response, PageError> {
    let rows = state
        .store
        .list_webhooks()
        .await?
        .iter()
        .filter(|e| sees(&a.auth, e))
        .map(endpoint_row)
        .collect();
    Ok(page(
        StatusCode::OK,
        &ListPage {
            layout: a.layout("webhooks"),
            rows,
            types: ALL_TYPES,
            formats: WebhookFormat::ALL.map(WebhookFormat::as_str).to_vec(),
            can_write: !a.auth.key.scope.read_only,
            notice: match q.get("done") {
                Some("removed") => Some("The endpoint was removed."),
                _ => None,
            },
        },
    ))
}

#[derive(Template)]
#[template(path = "admin/webhook_created.html")]
struct Created {
    layout: Layout,
    id: String,
    url: String,
    secret: String,
}

/// `POST /admin/webhooks`: fields `url`, `format`, `directory_id` and
/// any number of `events` (none: every type).
pub async fn create(
    State(state): State<AppState>,
    p: Posted<AdminSession, Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let a = &p.session.auth;
    a.require_write()?;
    let field = |name: &str| {
        p.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let url = field("url").unwrap_or_default();
    let events: Vec<String> = p
        .form
        .iter()
        .filter(|(k, _)| k == "events")
        .map(|(_, v)| v.clone())
        .collect();
    validate(&url, &events)?;
    let format = field("format")
        .as_deref()
        .map(parse_format)
        .transpose()?
        .unwrap_or_default();
    let directory = field("directory_id");
    match &directory {
        None => a.require_unlimited()?,
        Some(d) => {
            if !a.sees(d) || state.store.get_directory(d).await?.is_none() {
                return Err(PageError::bad_request(format!("no directory {d}")));
            }
        }
    }
    let (endpoint, secret) = state
        .store
        .create_webhook_with(
            &a.actor(),
            &url,
            format,
            &events,
            directory.as_deref(),
            DeliveryOptions::default(),
        )
        .await?;
    Ok(page(
        StatusCode::CREATED,
        &Created {
            layout: p.session.layout("webhooks"),
            id: endpoint.id,
            url: endpoint.url,
            secret,
        },
    ))
}

pub struct DeliveryRow {
    pub at: String,
    pub event_id: String,
    pub attempt: i64,
    pub status: String,
    pub code: String,
    pub latency_ms: i64,
    pub error: String,
    pub excerpt: String,
}

#[derive(Template)]
#[template(path = "admin/webhook.html")]
struct EndpointPage {
    layout: Layout,
    e: EndpointRow,
    deliveries: Vec<DeliveryRow>,
    can_write: bool,
    notice: Option<&'static str>,
}

/// `GET /admin/webhooks/{id}`: the endpoint and its newest deliveries.
pub async fn show(
    State(state): State<AppState>,
    a: AdminSession,
    Path(id): Path<String>,
    q: QueryParams,
) -> Result<Response, PageError> {
    let e = visible(&state, &a.auth, &id).await?;
    let deliveries = state
        .store
        .webhook_deliveries(&id, DELIVERIES)
        .await?
        .into_iter()
        .map(|d| DeliveryRow {
            at: ts(d.created_at),
            event_id: event_id(d.event_seq),
            attempt: d.attempt,
            status: d.status,
            code: d.response_code.map(|c| c.to_string()).unwrap_or_default(),
            latency_ms: d.latency_ms,
            error: d.error.unwrap_or_default(),
            excerpt: d.response_excerpt.unwrap_or_default(),
        })
        .collect();
    Ok(page(
        StatusCode::OK,
        &EndpointPage {
            layout: a.layout("webhooks"),
            e: endpoint_row(&e),
            deliveries,
            can_write: !a.auth.key.scope.read_only,
            notice: match q.get("done") {
                Some("redeliver") => Some(
                    "The event is queued; its delivery appears here once sent (reload the page).",
                ),
                Some("enabled") => Some("The endpoint is enabled; deliveries resume."),
                Some("disabled") => Some("The endpoint is disabled; events wait for it."),
                _ => None,
            },
        },
    ))
}

#[derive(Deserialize)]
pub struct Empty {}

async fn set_enabled(
    state: &AppState,
    a: &AdminSession,
    id: &str,
    enabled: bool,
) -> Result<Response, PageError> {
    visible(state, &a.auth, id).await?;
    a.auth.require_write()?;
    if !state
        .store
        .set_webhook_enabled(&a.auth.actor(), id, enabled)
        .await?
    {
        return Err(PageError::not_found(format!("no webhook endpoint {id}")));
    }
    let done = if enabled { "enabled" } else { "disabled" };
    Ok(redirect(&format!("/admin/webhooks/{id}?done={done}")))
}

/// `POST /admin/webhooks/{id}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<AdminSession, Empty>,
) -> Result<Response, PageError> {
    set_enabled(&state, &p.session, &id, true).await
}

/// `POST /admin/webhooks/{id}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<AdminSession, Empty>,
) -> Result<Response, PageError> {
    set_enabled(&state, &p.session, &id, false).await
}

/// `POST /admin/webhooks/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<AdminSession, Empty>,
) -> Result<Response, PageError> {
    let a = &p.session.auth;
    visible(&state, a, &id).await?;
    a.require_write()?;
    state.store.delete_webhook(&a.actor(), &id).await?;
    Ok(redirect("/admin/webhooks?done=removed"))
}

#[derive(Deserialize)]
pub struct RedeliverForm {
    event_id: String,
}

/// `POST /admin/webhooks/{id}/redeliver`: queue one event again.
pub async fn redeliver(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<AdminSession, RedeliverForm>,
) -> Result<Response, PageError> {
    queue_redelivery(&state, &p.session.auth, &id, p.form.event_id.trim()).await?;
    Ok(redirect(&format!("/admin/webhooks/{id}?done=redeliver")))
}
