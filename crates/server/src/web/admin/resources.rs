//! A directory's users and groups: lists with search and paging, and a
//! user's page (normalized view, raw SCIM resource, groups, events).
//!
//! Search takes plain text, which becomes `userName co "…" or displayName
//! co "…"` (groups: `displayName co "…"`), or a SCIM filter typed as such:
//! what parses as a filter is used as one. Lists are the SCIM list of the
//! service layer, the same query `/scim/v2` answers.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use roster_scim::filter::{check_filter, parse_filter_nested};
use roster_store::{Kind, Stored};
use serde_json::Value;

use super::AdminSession;
use super::directory::visible;
use crate::api::params::{self, ts};
use crate::error::PageError;
use crate::request::QueryParams;
use crate::service::{self, Search};
use crate::state::AppState;
use crate::web::{Layout, page};

/// Rows per page.
pub const PAGE: i64 = 100;

/// How far back a user's page looks for its events in the directory's log.
const EVENT_WINDOW: u64 = 1000;

/// The filter a search box's text stands for.
fn filter_for(state: &AppState, kind: Kind, text: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let is_filter = state.resource_type(kind).is_ok_and(|rt| {
        parse_filter_nested(text, state.config.max_filter_depth)
            .ok()
            .is_some_and(|f| check_filter(&state.reg, rt, &f).is_ok())
    });
    if is_filter {
        return Some(text.to_owned());
    }
    let quoted = serde_json::Value::String(text.to_owned()).to_string();
    Some(match kind {
        Kind::User => format!("userName co {quoted} or displayName co {quoted}"),
        Kind::Group => format!("displayName co {quoted}"),
    })
}

fn text_at<'a>(doc: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(doc, |v, k| v.get(k))?.as_str()
}

/// One row of a users or groups table.
pub struct ResourceRow {
    pub id: String,
    pub name: String,
    pub display: String,
    pub email: String,
    pub active: bool,
    pub updated: String,
}

fn row(s: &Stored) -> ResourceRow {
    let doc = &s.doc;
    let email = doc
        .get("emails")
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter()
                .find(|e| e.get("primary") == Some(&Value::Bool(true)))
                .or_else(|| list.first())
        })
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    ResourceRow {
        id: s.id.clone(),
        name: text_at(doc, &["userName"])
            .or_else(|| text_at(doc, &["displayName"]))
            .unwrap_or_default()
            .to_owned(),
        display: text_at(doc, &["displayName"])
            .or_else(|| text_at(doc, &["name", "formatted"]))
            .unwrap_or_default()
            .to_owned(),
        email: email.to_owned(),
        active: doc.get("active") != Some(&Value::Bool(false)),
        updated: ts(s.last_modified),
    }
}

#[derive(Template)]
#[template(path = "admin/resources.html")]
struct ResourcesPage {
    layout: Layout,
    dir_id: String,
    dir_name: String,
    users: bool,
    q: String,
    rows: Vec<ResourceRow>,
    total: u64,
    first: u64,
    prev: Option<u64>,
    next: Option<u64>,
    error: Option<String>,
}

async fn list(
    state: &AppState,
    a: &AdminSession,
    dir: &str,
    kind: Kind,
    q: &QueryParams,
) -> Result<Response, PageError> {
    let d = visible(state, a, dir).await?;
    let text = params::text(q, "q").unwrap_or_default().to_owned();
    let start = q
        .get("start")
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(1)
        .max(1);
    let search = Search {
        filter: filter_for(state, kind, &text),
        start_index: Some(start),
        count: Some(PAGE),
        ..Search::default()
    };
    let (rows, total, error, status) = match service::list(state, &d.id, kind, &search).await {
        Ok((result, _)) => (
            result.resources.iter().map(row).collect::<Vec<_>>(),
            result.total,
            None,
            StatusCode::OK,
        ),
        // A filter the store refuses (too long, an unknown attribute): said
        // on the page, next to the box it came from.
        Err(e) if e.status().is_client_error() => {
            (Vec::new(), 0, Some(e.0.detail), StatusCode::BAD_REQUEST)
        }
        Err(e) => return Err(e.into()),
    };
    let start = u64::try_from(start).unwrap_or(1);
    let page_size = PAGE as u64;
    let shown = rows.len() as u64;
    Ok(page(
        status,
        &ResourcesPage {
            layout: a.layout("directories"),
            dir_id: d.id,
            dir_name: d.name,
            users: kind == Kind::User,
            q: text,
            prev: (start > 1).then(|| start.saturating_sub(page_size).max(1)),
            next: (start + shown <= total && shown == page_size).then_some(start + page_size),
            first: start,
            rows,
            total,
            error,
        },
    ))
}

/// `GET /admin/directories/{id}/users?q=…&start=…`.
pub async fn users(
    State(state): State<AppState>,
    a: AdminSession,
    Path(dir): Path<String>,
    q: QueryParams,
) -> Result<Response, PageError> {
    list(&state, &a, &dir, Kind::User, &q).await
}

/// `GET /admin/directories/{id}/groups?q=…&start=…`.
pub async fn groups(
    State(state): State<AppState>,
    a: AdminSession,
    Path(dir): Path<String>,
    q: QueryParams,
) -> Result<Response, PageError> {
    list(&state, &a, &dir, Kind::Group, &q).await
}

pub struct Fact {
    pub name: String,
    pub value: String,
}

pub struct GroupLink {
    pub id: String,
    pub name: String,
}

pub struct EventRow {
    pub id: String,
    pub kind: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    layout: Layout,
    dir_id: String,
    dir_name: String,
    name: String,
    facts: Vec<Fact>,
    normalized: String,
    raw: String,
    groups: Vec<GroupLink>,
    events: Vec<EventRow>,
    event_window: u64,
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `GET /admin/directories/{id}/users/{user}`.
pub async fn user(
    State(state): State<AppState>,
    a: AdminSession,
    headers: HeaderMap,
    Path((dir, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let d = visible(&state, &a, &dir).await?;
    let stored = service::get(&state, &d.id, Kind::User, &id).await?;
    let (normalized, groups) = state
        .store
        .directory_object(Kind::User, &id)
        .await?
        .ok_or_else(|| PageError::not_found(format!("no user {id}")))?;
    let member_of = state
        .store
        .groups_of(&d.id, std::slice::from_ref(&id))
        .await?
        .remove(&id)
        .unwrap_or_default();
    let rt = state.resource_type(Kind::User)?;
    let base = crate::render::base_url(&state, &headers, &d.id);
    let raw = crate::render::full_resource(rt, &base, &stored, Some(&member_of));
    let facts = normalized
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| {
                    scalar(v).map(|value| Fact {
                        name: k.clone(),
                        value,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let groups = groups
        .iter()
        .map(|g| GroupLink {
            id: g["id"].as_str().unwrap_or_default().to_owned(),
            name: g["name"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    let events = user_events(&state, &d.id, &id).await?;
    let r = row(&stored);
    Ok(page(
        StatusCode::OK,
        &UserPage {
            layout: a.layout("directories"),
            dir_id: d.id,
            dir_name: d.name,
            name: r.name,
            facts,
            normalized: serde_json::to_string_pretty(&normalized).unwrap_or_default(),
            raw: serde_json::to_string_pretty(&raw).unwrap_or_default(),
            groups,
            events,
            event_window: EVENT_WINDOW,
        },
    ))
}

/// The user's events among the directory's newest [`EVENT_WINDOW`], newest
/// first: the event log is indexed by directory and type, not by resource.
async fn user_events(state: &AppState, dir: &str, user: &str) -> Result<Vec<EventRow>, PageError> {
    use roster_store::directory_api::{EventQuery, Order, Paging};
    let page = state
        .store
        .event_page(EventQuery {
            directory: Some(dir.to_owned()),
            paging: Paging {
                cursor: None,
                order: Order::Desc,
                limit: EVENT_WINDOW,
            },
            ..EventQuery::default()
        })
        .await?;
    Ok(page
        .data
        .iter()
        .filter(|e| {
            e.data.get("id").and_then(Value::as_str) == Some(user)
                || e.data
                    .get("user")
                    .and_then(|u| u.get("id"))
                    .and_then(Value::as_str)
                    == Some(user)
        })
        .map(|e| EventRow {
            id: e.id(),
            kind: e.event.clone(),
            at: ts(e.created_at),
        })
        .collect())
}
