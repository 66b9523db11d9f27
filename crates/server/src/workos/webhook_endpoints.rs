//! `/webhook_endpoints`: the WorkOS SDKs' webhook endpoint management
//! (`webhooks.list|create|update|delete_webhook_endpoint(s)`). Every endpoint
//! made here delivers in the WorkOS format; Roster-format endpoints
//! (`/api/v1/webhooks`) are not shown or changed here. An admin key's scope
//! holds as on `/api/v1/webhooks`: these endpoints span every directory, so
//! a key limited to directories sees none and cannot make one, and a
//! read-only key changes nothing.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roster_scim::values::format_unix_millis;
use roster_store::webhooks::{WebhookEndpoint, WebhookFormat, WebhookUpdate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{WorkosAuth, WorkosError};
use crate::api::params::List;
use crate::error::ApiError;
use crate::request::{JsonBody, QueryParams};
use crate::state::AppState;

/// The WebhookEndpoint object, secret included (the SDKs' model requires it).
#[derive(Serialize, ToSchema)]
#[schema(as = workos::WebhookEndpoint)]
pub struct Endpoint {
    /// Always `webhook_endpoint`.
    #[schema(example = "webhook_endpoint")]
    object: &'static str,
    id: String,
    endpoint_url: String,
    /// The signing secret of `WorkOS-Signature`.
    secret: String,
    /// `enabled` or `disabled`.
    #[schema(example = "enabled")]
    status: &'static str,
    events: Vec<String>,
    created_at: String,
    updated_at: String,
}

fn render(e: &WebhookEndpoint, secret: &str) -> Endpoint {
    Endpoint {
        object: "webhook_endpoint",
        id: e.id.clone(),
        endpoint_url: e.url.clone(),
        secret: secret.to_owned(),
        status: if e.enabled { "enabled" } else { "disabled" },
        events: e.event_types.clone(),
        created_at: format_unix_millis(e.created_at),
        updated_at: format_unix_millis(e.updated_at),
    }
}

async fn rendered(s: &AppState, e: &WebhookEndpoint) -> Result<Endpoint, WorkosError> {
    let secret = s
        .store
        .webhook_secret(&e.id)
        .await?
        .ok_or_else(|| not_found(&e.id))?;
    Ok(render(e, &secret))
}

/// A request body or parameter that cannot be used: 422, which the SDKs
/// raise as their unprocessable-entity errors.
fn unprocessable(message: impl Into<String>) -> WorkosError {
    WorkosError(ApiError::new(422, message))
}

fn not_found(id: &str) -> WorkosError {
    WorkosError::not_found(format!("no webhook endpoint {id}"))
}

fn body<T: serde::de::DeserializeOwned>(
    body: Result<JsonBody, ApiError>,
) -> Result<T, WorkosError> {
    let JsonBody(v) = body.map_err(|e| unprocessable(e.0.detail))?;
    serde_json::from_value(v).map_err(|e| unprocessable(e.to_string()))
}

fn check_url(url: &str) -> Result<(), WorkosError> {
    crate::api::webhooks::validate(url, &[])
        .map_err(|e| unprocessable(format!("endpoint_url: {}", e.message())))
}

fn check_events(events: &[String]) -> Result<(), WorkosError> {
    if events.is_empty() {
        return Err(unprocessable("events: name at least one event type"));
    }
    crate::api::webhooks::validate("https://example.com", events)
        .map_err(|e| unprocessable(format!("events: {}", e.message())))
}

/// The WorkOS-format endpoint `id` the key sees, or a 404 (also for a
/// Roster-format one).
async fn workos_endpoint(
    s: &AppState,
    a: &WorkosAuth,
    id: &str,
) -> Result<WebhookEndpoint, WorkosError> {
    s.store
        .get_webhook(id)
        .await?
        .filter(|e| e.format == WebhookFormat::Workos && crate::api::webhooks::sees(a, e))
        .ok_or_else(|| not_found(id))
}

/// `webhooks.listWebhookEndpoints`: the WorkOS-format endpoints.
#[utoipa::path(
    get,
    path = "/webhook_endpoints",
    tag = "workos",
    params(crate::openapi::params::WorkosPage),
    responses(
        (status = 200, description = "A page of endpoints", body = List<Endpoint>),
        crate::openapi::objects::WorkosErrors,
    ),
)]
pub async fn list(
    State(s): State<AppState>,
    a: WorkosAuth,
    q: QueryParams,
) -> Result<Json<List<Endpoint>>, WorkosError> {
    let query = PageQuery::parse(&q)?;
    // Ids are UUIDv7: in creation order, as the store lists them.
    let all: Vec<WebhookEndpoint> = s
        .store
        .list_webhooks()
        .await?
        .into_iter()
        .filter(|e| e.format == WebhookFormat::Workos && crate::api::webhooks::sees(&a, e))
        .collect();
    let ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
    let page = query.page(&ids)?;
    let mut data = Vec::with_capacity(page.range.len());
    for i in page.range {
        data.push(rendered(&s, &all[i]).await?);
    }
    Ok(Json(crate::api::params::list(
        data,
        page.before,
        page.after,
    )))
}

/// A new WorkOS-format endpoint for every directory's events.
#[derive(Deserialize, ToSchema)]
#[schema(as = workos::NewWebhookEndpoint)]
pub struct NewEndpoint {
    /// An http:// or https:// URL.
    endpoint_url: String,
    /// At least one event type.
    events: Vec<String>,
}

/// `webhooks.createWebhookEndpoint`.
#[utoipa::path(
    post,
    path = "/webhook_endpoints",
    tag = "workos",
    request_body = NewEndpoint,
    responses(
        (status = 201, description = "The endpoint, with its secret", body = Endpoint),
        crate::openapi::objects::WorkosErrors,
    ),
)]
pub async fn create(
    State(s): State<AppState>,
    a: WorkosAuth,
    b: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<Endpoint>), WorkosError> {
    a.require_write()?;
    // An endpoint here gets every directory's events.
    a.require_unlimited()?;
    let b: NewEndpoint = body(b)?;
    check_url(&b.endpoint_url)?;
    check_events(&b.events)?;
    let taken = s
        .store
        .list_webhooks()
        .await?
        .into_iter()
        .any(|e| e.format == WebhookFormat::Workos && e.url == b.endpoint_url);
    if taken {
        return Err(WorkosError(ApiError::new(
            409,
            format!("a webhook endpoint for {} exists", b.endpoint_url),
        )));
    }
    let (endpoint, secret) = s
        .store
        .create_webhook(
            &a.actor(),
            &b.endpoint_url,
            WebhookFormat::Workos,
            &b.events,
            None,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(render(&endpoint, &secret))))
}

/// A change of an endpoint: any of its URL, events and status.
#[derive(Deserialize, ToSchema)]
#[schema(as = workos::WebhookEndpointChange)]
pub struct EndpointChange {
    endpoint_url: Option<String>,
    events: Option<Vec<String>>,
    /// `enabled` or `disabled`.
    status: Option<String>,
}

/// `webhooks.updateWebhookEndpoint`.
#[utoipa::path(
    patch,
    path = "/webhook_endpoints/{id}",
    tag = "workos",
    params(("id" = String, Path, description = "The webhook endpoint's id")),
    request_body = EndpointChange,
    responses(
        (status = 200, description = "The endpoint as changed", body = Endpoint),
        crate::openapi::objects::WorkosErrors,
    ),
)]
pub async fn update(
    State(s): State<AppState>,
    a: WorkosAuth,
    Path(id): Path<String>,
    b: Result<JsonBody, ApiError>,
) -> Result<Json<Endpoint>, WorkosError> {
    workos_endpoint(&s, &a, &id).await?;
    a.require_write()?;
    let b: EndpointChange = body(b)?;
    if let Some(url) = &b.endpoint_url {
        check_url(url)?;
    }
    if let Some(events) = &b.events {
        check_events(events)?;
    }
    let enabled = match b.status.as_deref() {
        None => None,
        Some("enabled") => Some(true),
        Some("disabled") => Some(false),
        Some(other) => {
            return Err(unprocessable(format!(
                "status: {other:?} is neither \"enabled\" nor \"disabled\""
            )));
        }
    };
    let change = WebhookUpdate {
        url: b.endpoint_url,
        event_types: b.events,
        enabled,
    };
    let e = s
        .store
        .update_webhook(&a.actor(), &id, &change)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(rendered(&s, &e).await?))
}

/// `webhooks.deleteWebhookEndpoint`.
#[utoipa::path(
    delete,
    path = "/webhook_endpoints/{id}",
    tag = "workos",
    params(("id" = String, Path, description = "The webhook endpoint's id")),
    responses(
        (status = 204, description = "Deleted"),
        crate::openapi::objects::WorkosErrors,
    ),
)]
pub async fn delete(
    State(s): State<AppState>,
    a: WorkosAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, WorkosError> {
    workos_endpoint(&s, &a, &id).await?;
    a.require_write()?;
    if s.store.delete_webhook(&a.actor(), &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

/// `limit`, `before`, `after` and `order` of a WorkOS list.
#[derive(Debug, PartialEq)]
struct PageQuery {
    limit: usize,
    before: Option<String>,
    after: Option<String>,
    descending: bool,
}

/// The positions of one page in the ascending list, and its cursors.
#[derive(Debug, PartialEq)]
struct Page {
    range: Vec<usize>,
    before: Option<String>,
    after: Option<String>,
}

impl PageQuery {
    fn parse(q: &QueryParams) -> Result<Self, WorkosError> {
        let limit = match q.get("limit") {
            None | Some("") => 10,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=100).contains(l))
                .ok_or_else(|| {
                    unprocessable(format!("limit: {l:?} is not a number from 1 to 100"))
                })?,
        };
        let descending = match q.get("order") {
            // `normal` is descending with the cursors read the same way.
            None | Some("") | Some("desc") | Some("normal") => true,
            Some("asc") => false,
            Some(o) => {
                return Err(unprocessable(format!(
                    "order: {o:?} is neither \"asc\" nor \"desc\""
                )));
            }
        };
        let cursor = |name: &str| q.get(name).filter(|c| !c.is_empty()).map(str::to_owned);
        Ok(PageQuery {
            limit,
            before: cursor("before"),
            after: cursor("after"),
            descending,
        })
    }

    /// The page of `ids` (ascending) this query asks for.
    fn page(&self, ids: &[&str]) -> Result<Page, WorkosError> {
        let ordered: Vec<usize> = if self.descending {
            (0..ids.len()).rev().collect()
        } else {
            (0..ids.len()).collect()
        };
        let position = |cursor: &str| {
            ordered
                .iter()
                .position(|&i| ids[i] == cursor)
                .ok_or_else(|| unprocessable(format!("no webhook endpoint {cursor} to page from")))
        };
        let (start, end) = if let Some(a) = &self.after {
            let p = position(a)? + 1;
            (p, (p + self.limit).min(ordered.len()))
        } else if let Some(b) = &self.before {
            let p = position(b)?;
            (p.saturating_sub(self.limit), p)
        } else {
            (0, self.limit.min(ordered.len()))
        };
        let range = ordered[start..end].to_vec();
        let id = |i: Option<&usize>| i.map(|&i| ids[i].to_owned());
        Ok(Page {
            before: if start > 0 { id(range.first()) } else { None },
            after: if end < ordered.len() {
                id(range.last())
            } else {
                None
            },
            range,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(s: &str) -> PageQuery {
        PageQuery::parse(&QueryParams::parse(Some(s))).unwrap()
    }

    fn walk(q: &str, ids: &[&str]) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut next = query(q).page(ids).unwrap();
        loop {
            pages.push(next.range.iter().map(|&i| ids[i].to_owned()).collect());
            match next.after {
                Some(a) => next = query(&format!("{q}&after={a}")).page(ids).unwrap(),
                None => return pages,
            }
        }
    }

    #[test]
    fn pages_walk_forwards_and_back_in_both_orders() {
        let ids = ["a", "b", "c", "d", "e"];
        assert_eq!(
            walk("limit=2", &ids),
            [vec!["e", "d"], vec!["c", "b"], vec!["a"]]
        );
        assert_eq!(
            walk("limit=2&order=asc", &ids),
            [vec!["a", "b"], vec!["c", "d"], vec!["e"]]
        );
        let first = query("limit=2&order=asc").page(&ids).unwrap();
        assert_eq!(first.before, None);
        let last = query("limit=2&order=asc&after=d").page(&ids).unwrap();
        assert_eq!(
            (last.before.as_deref(), last.after.as_deref()),
            (Some("e"), None)
        );
        let back = query("limit=2&order=asc&before=e").page(&ids).unwrap();
        assert_eq!(back.range, [2, 3]);
        assert_eq!(
            (back.before.as_deref(), back.after.as_deref()),
            (Some("c"), Some("d"))
        );
        let back = query("limit=2&before=c").page(&ids).unwrap();
        assert_eq!(back.range, [4, 3]);
        assert_eq!(back.before, None);
    }

    #[test]
    fn bad_parameters_are_422s_naming_the_parameter() {
        for q in ["limit=0", "limit=101", "limit=x", "order=up"] {
            let e = PageQuery::parse(&QueryParams::parse(Some(q))).unwrap_err();
            assert_eq!(e.0.status().as_u16(), 422, "{q}");
            assert!(
                e.0.0.detail.starts_with(q.split('=').next().unwrap()),
                "{q}"
            );
        }
        let e = query("after=zz").page(&["a"]).unwrap_err();
        assert_eq!(e.0.status().as_u16(), 422);
    }
}
