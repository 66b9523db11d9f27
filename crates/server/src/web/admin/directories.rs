//! Directories at a glance: the list (scoped to the key), creating one.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use roster_store::directory_api::Order;
use roster_store::{DirectoryAttrs, GENERIC_PROVIDER};
use serde::Deserialize;

use super::AdminSession;
use crate::api::directories::{check_attr, check_name, directory_query};
use crate::api::params;
use crate::error::PageError;
use crate::google::status::PollStatus;
use crate::request::QueryParams;
use crate::state::AppState;
use crate::web::csrf::Posted;
use crate::web::{Layout, page};

/// Directories per page of the list.
const PAGE: u64 = 50;

/// One row of the list.
pub struct Row {
    pub id: String,
    pub name: String,
    pub organization: Option<String>,
    pub provider: String,
    pub state: &'static str,
    pub state_class: &'static str,
    pub users: i64,
    pub groups: i64,
    /// When the provider last sent a request; `None`: never (or too long ago).
    pub last_request: Option<String>,
    pub errors_24h: i64,
}

#[derive(Template)]
#[template(path = "admin/directories.html")]
struct List {
    layout: Layout,
    rows: Vec<Row>,
    search: String,
    before: Option<String>,
    after: Option<String>,
    can_create: bool,
    notice: Option<String>,
}

/// `GET /admin`: the directories the key sees, with their counts.
pub async fn list(
    State(state): State<AppState>,
    a: AdminSession,
    q: QueryParams,
) -> Result<Response, PageError> {
    let paging = params::paging(&q, PAGE, PAGE, Order::Asc)?;
    let query = directory_query(&q, paging, a.auth.directories());
    let dirs = state.store.directory_page(query).await?;
    let ids: Vec<String> = dirs.data.iter().map(|d| d.id.clone()).collect();
    let counts = state.store.directory_counts(&ids).await?;
    let requests = state.store.request_summaries(&ids).await?;
    let now = roster_store::now_ms();
    let google: std::collections::HashMap<String, PollStatus> = state
        .store
        .google_sources()
        .await?
        .into_iter()
        .map(|g| (g.directory_id.clone(), PollStatus::of(&g, now)))
        .collect();
    let rows = dirs
        .data
        .into_iter()
        .map(|d| {
            let c = counts.get(&d.id).cloned().unwrap_or_default();
            let r = requests.get(&d.id).cloned().unwrap_or_default();
            let polled = google.get(&d.id);
            let (state, state_class) = if let Some(p) = polled {
                match p {
                    PollStatus::Waiting => {
                        ("polled from Google: waiting for the first poll", "warn")
                    }
                    PollStatus::Synced { .. } => ("polled from Google: synced", "ok"),
                    PollStatus::Failing { .. } => ("polled from Google: failing", "bad"),
                }
            } else if d.provider.is_some() || c.active_users + c.inactive_users + c.groups > 0 {
                ("receiving", "ok")
            } else {
                ("waiting for the provider", "warn")
            };
            Row {
                provider: if polled.is_some() {
                    "Google Workspace (pulled)".to_owned()
                } else {
                    d.provider
                        .clone()
                        .unwrap_or_else(|| GENERIC_PROVIDER.to_owned())
                },
                organization: d.organization_id.clone(),
                users: c.active_users + c.inactive_users,
                groups: c.groups,
                last_request: r.last_request_at.map(params::ts),
                errors_24h: r.errors_24h,
                state,
                state_class,
                id: d.id,
                name: d.name,
            }
        })
        .collect();
    Ok(page(
        StatusCode::OK,
        &List {
            layout: a.layout("directories"),
            rows,
            search: params::text(&q, "search").unwrap_or_default().to_owned(),
            before: dirs.before,
            after: dirs.after,
            can_create: !a.auth.key.scope.read_only && a.auth.key.scope.directories.is_none(),
            notice: match q.get("done") {
                Some("deleted") => Some("The directory was deleted.".to_owned()),
                _ => None,
            },
        },
    ))
}

#[derive(Deserialize)]
pub struct CreateForm {
    name: String,
    #[serde(default)]
    organization_id: String,
}

#[derive(Template)]
#[template(path = "admin/created.html")]
struct Created {
    layout: Layout,
    id: String,
    name: String,
    base_url: String,
    token: String,
}

/// `POST /admin/directories`: a new directory and its first token, shown once.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    p: Posted<AdminSession, CreateForm>,
) -> Result<Response, PageError> {
    let a = &p.session.auth;
    a.require_write()?;
    a.require_unlimited()?;
    let name = check_name(&p.form.name)?;
    let attrs = DirectoryAttrs {
        organization_id: check_attr("organization_id", Some(p.form.organization_id.clone()))?,
        ..DirectoryAttrs::default()
    };
    let (d, _, token) = state
        .store
        .create_directory_with_token(&a.actor(), &name, attrs)
        .await?;
    Ok(page(
        StatusCode::CREATED,
        &Created {
            layout: p.session.layout("directories"),
            base_url: crate::render::base_url(&state, &headers, &d.id),
            id: d.id,
            name: d.name,
            token,
        },
    ))
}
