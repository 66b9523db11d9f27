//! `GET /api/v1/events`: the event stream in commit order, by cursor.

use axum::Json;
use axum::extract::State;
use roster_store::events::{ALL_TYPES, event_id, parse_event_id};
use serde_json::Value;

use roster_store::directory_api::{Cursor, EventQuery, Order, Paging};

use super::{AdminAuth, AppError, params};
use crate::request::QueryParams;
use crate::state::AppState;

pub const MAX_LIMIT: u64 = 1000;

/// The event stream in commit order.
///
/// A reader at the head keeps its position: `list_metadata.after` never goes
/// back to null, so a follower polls with the same cursor until something
/// new commits.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(
        crate::openapi::params::EventFilters,
        ("events" = Option<String>, Query, description = "Only these event types, comma-joined (dsync.user.created,dsync.user.updated)"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Events a page, 1 to 1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "A page of events", body = params::List<crate::openapi::objects::Event>),
        (status = 410, description = "The cursor is older than the retained events", body = crate::openapi::objects::ErrorBody),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn list_events(
    State(s): State<AppState>,
    auth: AdminAuth,
    q: QueryParams,
) -> Result<Json<params::List<Value>>, AppError> {
    let cursor = |name: &str| -> Result<Option<String>, AppError> {
        match params::text(&q, name) {
            None => Ok(None),
            Some(a) if parse_event_id(a).is_some() => Ok(Some(a.to_owned())),
            Some(a) => Err(AppError::bad_request(format!(
                "{name} must be an event id such as evt_0000000000000001, not {a:?}"
            ))),
        }
    };
    let (after, before) = (cursor("after")?, cursor("before")?);
    let cursor = match (before, after.clone()) {
        (Some(_), Some(_)) => return Err(AppError::bad_request("give before or after, not both")),
        (Some(b), None) => Some(Cursor::Before(b)),
        (None, a) => a.map(Cursor::After),
    };
    let types: Vec<String> = q
        .get("events")
        .map(|e| {
            e.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(bad) = types.iter().find(|t| !ALL_TYPES.contains(&t.as_str())) {
        return Err(AppError::bad_request(format!(
            "unknown event type {bad:?}; known types: {}",
            ALL_TYPES.join(", ")
        )));
    }
    let directory = params::text(&q, "directory_id").map(str::to_owned);
    if let Some(d) = &directory {
        auth.require_directory(d)?;
    }
    let query = EventQuery {
        types,
        directory,
        only: auth.directories().map(<[String]>::to_vec),
        organization_id: params::text(&q, "organization_id").map(str::to_owned),
        range_start: params::timestamp(&q, "range_start")?,
        range_end: params::timestamp(&q, "range_end")?,
        paging: Paging {
            cursor,
            order: params::order(&q, Order::Asc)?,
            limit: params::limit_within(&q, 100, MAX_LIMIT)?,
        },
    };
    let page = s.store.event_page(query).await?;
    // A reader at the head keeps its position: `after` never goes back to null.
    let next = page
        .data
        .last()
        .map(|e| e.id())
        .or(after)
        .unwrap_or_else(|| event_id(0));
    Ok(Json(params::list(
        page.data.iter().map(|e| e.to_json()).collect(),
        page.before,
        Some(next),
    )))
}
