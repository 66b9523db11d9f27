//! The event log's tail, filtered by type and directory. The table is also
//! served alone (`/admin/events/rows`), which the page's script fetches
//! every few seconds; without script, reloading the page shows new events.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use roster_store::directory_api::{EventQuery, Order, Paging};
use roster_store::events::ALL_TYPES;

use super::AdminSession;
use crate::api::params::{self, ts};
use crate::error::PageError;
use crate::request::QueryParams;
use crate::state::AppState;
use crate::web::{Layout, page};

/// Events shown: the newest this many that match.
const TAIL: u64 = 100;

pub struct EventRow {
    pub id: String,
    pub kind: String,
    pub directory: String,
    pub at: String,
    pub summary: String,
}

#[derive(Template)]
#[template(path = "admin/event_rows.html")]
struct Rows {
    rows: Vec<EventRow>,
}

#[derive(Template)]
#[template(path = "admin/events.html")]
struct EventsPage {
    layout: Layout,
    rows: Vec<EventRow>,
    types: &'static [&'static str],
    kind: String,
    directory: String,
    refresh: String,
}

/// The filters of the query string, checked as `/api/v1/events` checks them.
async fn tail(
    state: &AppState,
    a: &AdminSession,
    q: &QueryParams,
) -> Result<(Vec<EventRow>, String, String), PageError> {
    let kind = params::text(q, "type").unwrap_or_default().to_owned();
    if !kind.is_empty() && !ALL_TYPES.contains(&kind.as_str()) {
        return Err(PageError::bad_request(format!(
            "unknown event type {kind:?}"
        )));
    }
    let directory = params::text(q, "directory").unwrap_or_default().to_owned();
    if !directory.is_empty() {
        a.auth.require_directory(&directory)?;
    }
    let page = state
        .store
        .event_page(EventQuery {
            types: if kind.is_empty() {
                Vec::new()
            } else {
                vec![kind.clone()]
            },
            directory: (!directory.is_empty()).then(|| directory.clone()),
            only: a.auth.directories().map(<[String]>::to_vec),
            paging: Paging {
                cursor: None,
                order: Order::Desc,
                limit: TAIL,
            },
            ..EventQuery::default()
        })
        .await?;
    let rows = page
        .data
        .iter()
        .map(|e| EventRow {
            id: e.id(),
            kind: e.event.clone(),
            directory: e.directory_id.clone(),
            at: ts(e.created_at),
            summary: summary(&e.data),
        })
        .collect();
    Ok((rows, kind, directory))
}

/// A few words naming what the event is about.
fn summary(data: &serde_json::Value) -> String {
    let pick = |v: &serde_json::Value| -> Option<String> {
        ["username", "name", "email", "id"]
            .iter()
            .find_map(|k| v.get(k).and_then(|x| x.as_str()).map(str::to_owned))
    };
    match (data.get("user"), data.get("group")) {
        (Some(u), Some(g)) => format!(
            "{} in {}",
            pick(u).unwrap_or_default(),
            pick(g).unwrap_or_default()
        ),
        _ => pick(data).unwrap_or_default(),
    }
}

/// `GET /admin/events?type=…&directory=…`.
pub async fn show(
    State(state): State<AppState>,
    a: AdminSession,
    q: QueryParams,
) -> Result<Response, PageError> {
    let (rows, kind, directory) = tail(&state, &a, &q).await?;
    let refresh = format!(
        "/admin/events/rows?type={}&directory={}",
        form_urlencoded::byte_serialize(kind.as_bytes()).collect::<String>(),
        form_urlencoded::byte_serialize(directory.as_bytes()).collect::<String>()
    );
    Ok(page(
        StatusCode::OK,
        &EventsPage {
            layout: a.layout("events"),
            rows,
            types: ALL_TYPES,
            kind,
            directory,
            refresh,
        },
    ))
}

/// `GET /admin/events/rows?…`: the table's rows alone.
pub async fn rows(
    State(state): State<AppState>,
    a: AdminSession,
    q: QueryParams,
) -> Result<Response, PageError> {
    let (rows, _, _) = tail(&state, &a, &q).await?;
    Ok(page(StatusCode::OK, &Rows { rows }))
}
