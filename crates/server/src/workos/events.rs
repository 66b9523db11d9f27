//! `GET /events`: the event stream, oldest first, by event-id cursor.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{RawQuery, State};
use roster_store::Directory;
use roster_store::directory_api::{Cursor, EventQuery, Order, Paging};
use roster_store::events::parse_event_id;

use super::render::WorkosEvent;
use super::{WorkosAuth, WorkosError, params, render};
use crate::api::params as api_params;
use crate::api::params::List;
use crate::request::QueryParams;
use crate::state::AppState;

/// `events`: comma-joined, repeated, or as `events[]`; required, as the SDKs send it.
fn types(raw: Option<&str>) -> Result<Vec<String>, WorkosError> {
    let mut out: Vec<String> = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if !(k.eq_ignore_ascii_case("events") || k.eq_ignore_ascii_case("events[]")) {
            continue;
        }
        for t in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            // Event types are dotted snake_case names; anything else is a mistake.
            if !t
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
            {
                return Err(WorkosError::bad_request(format!(
                    "events must name event types such as dsync.user.created, not {t:?}"
                )));
            }
            if !out.iter().any(|o| o == t) {
                out.push(t.to_owned());
            }
        }
    }
    if out.is_empty() {
        return Err(WorkosError::bad_request(
            "events is required: the event types to list, e.g. events=dsync.user.created,dsync.user.updated",
        ));
    }
    Ok(out)
}

fn event_cursor(q: &QueryParams, name: &str) -> Result<Option<String>, WorkosError> {
    match api_params::text(q, name) {
        None => Ok(None),
        Some(id) if parse_event_id(id).is_some() => Ok(Some(id.to_owned())),
        Some(id) => Err(WorkosError::bad_request(format!(
            "{name} must be an event id such as evt_0000000000000001, not {id:?}"
        ))),
    }
}

/// `events.listEvents`: the event stream, oldest first.
///
/// Apps store `list_metadata.after` and poll with it: it stays put at the head.
#[utoipa::path(
    get,
    path = "/events",
    tag = "workos",
    params(
        ("events" = Vec<String>, Query, explode = true, description = "The event types to list (required): repeated, comma-joined or as events[]"),
        crate::openapi::params::EventFilters,
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 100, description = "Events a page, 1 to 100 (default 10)"),
    ),
    responses(
        (status = 200, description = "A page of events", body = List<WorkosEvent>),
        crate::openapi::objects::WorkosErrors,
    ),
)]
pub async fn list(
    State(s): State<AppState>,
    a: WorkosAuth,
    RawQuery(raw): RawQuery,
    q: QueryParams,
) -> Result<Json<List<WorkosEvent>>, WorkosError> {
    let after = event_cursor(&q, "after")?;
    let before = event_cursor(&q, "before")?;
    let cursor = match (before, after.clone()) {
        (Some(_), Some(_)) => {
            return Err(WorkosError::bad_request("give before or after, not both"));
        }
        (Some(b), None) => Some(Cursor::Before(b)),
        (None, a) => a.map(Cursor::After),
    };
    let directory = params::text(&q, "directory_id");
    if let Some(d) = &directory {
        a.require_directory(d)?;
    }
    let query = EventQuery {
        types: types(raw.as_deref())?,
        directory,
        only: a.directories().map(<[String]>::to_vec),
        organization_id: params::text(&q, "organization_id"),
        range_start: api_params::timestamp(&q, "range_start")?,
        range_end: api_params::timestamp(&q, "range_end")?,
        paging: Paging {
            cursor,
            order: api_params::order(&q, Order::Asc)?,
            limit: api_params::limit_within(&q, params::DEFAULT_LIMIT, params::MAX_LIMIT)?,
        },
    };
    let page = s.store.event_page(query).await?;
    // Each event shows its directory as it is now (deleted ones: as stored).
    let mut dirs: HashMap<String, Option<Directory>> = HashMap::new();
    for e in &page.data {
        if !dirs.contains_key(&e.directory_id) {
            let d = s.store.get_directory(&e.directory_id).await?;
            dirs.insert(e.directory_id.clone(), d);
        }
    }
    let data = page
        .data
        .iter()
        .map(|e| render::event_object(e, dirs.get(&e.directory_id).and_then(Option::as_ref)))
        .collect();
    // Apps store `after` and poll with it: it stays put at the head.
    let next = page.data.last().map(|e| e.id()).or(after);
    Ok(Json(params::list(data, page.before, next)))
}
