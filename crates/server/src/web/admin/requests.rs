//! A directory's provider request log: what the provider sent lately, what
//! Roster answered, and why the connection fails when it does.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use roster_domain::requests::{ConnectionStatus, LoggedRequest, RequestQuery, parse_request_id};

use super::AdminSession;
use super::directory::visible;
use crate::api::params::ts;
use crate::error::PageError;
use crate::request::QueryParams;
use crate::state::AppState;
use crate::web::{Layout, page};

/// Requests per page.
const PAGE: u64 = 50;

/// One request as the table shows it.
pub struct Row {
    pub id: String,
    pub at: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub failed: bool,
    pub latency_ms: i64,
    pub error: String,
    pub user_agent: String,
    pub request_body: Option<String>,
    pub response_body: Option<String>,
}

impl Row {
    fn of(r: &LoggedRequest) -> Row {
        let rec = &r.record;
        Row {
            id: r.id(),
            at: ts(rec.at),
            method: rec.method.clone(),
            path: rec.path.clone(),
            status: rec.status,
            failed: rec.failed(),
            latency_ms: rec.latency_ms,
            error: rec.error.clone().unwrap_or_default(),
            user_agent: rec.user_agent.clone().unwrap_or_default(),
            request_body: rec.request_body.clone(),
            response_body: rec.response_body.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/requests.html")]
struct RequestsPage {
    layout: Layout,
    directory_id: String,
    directory_name: String,
    headline: String,
    failing: bool,
    explanation: Option<String>,
    fix: Option<&'static str>,
    requests_24h: i64,
    errors_24h: i64,
    rows: Vec<Row>,
    failed_only: bool,
    next: Option<String>,
}

/// `GET /admin/directories/{id}/requests[?failed=true][&before=req_…]`.
pub async fn show(
    State(state): State<AppState>,
    a: AdminSession,
    Path(id): Path<String>,
    q: QueryParams,
) -> Result<Response, PageError> {
    let d = visible(&state, &a, &id).await?;
    let before = match q.get("before") {
        None | Some("") => None,
        Some(b) => Some(parse_request_id(b).ok_or_else(|| {
            PageError::bad_request(format!(
                "{b:?} is not a request id such as req_0000000000000001"
            ))
        })?),
    };
    let failed_only = q.get("failed") == Some("true");
    let (status, summary) = crate::connection::status(state.store.as_ref(), &d.id)
        .await?
        .ok_or_else(|| PageError::not_found(format!("no directory {id}")))?;
    let page_rows = state
        .store
        .requests(
            &d.id,
            RequestQuery {
                before,
                limit: PAGE,
                failed_only,
            },
        )
        .await?;
    let next = (page_rows.len() as u64 == PAGE)
        .then(|| page_rows.last().map(LoggedRequest::id))
        .flatten();
    let (failing, explanation, fix) = match &status {
        ConnectionStatus::Failing { failure, .. } => {
            (true, Some(failure.explanation()), Some(failure.fix()))
        }
        _ => (false, None, None),
    };
    Ok(page(
        StatusCode::OK,
        &RequestsPage {
            layout: a.layout("directories"),
            directory_id: d.id,
            directory_name: d.name,
            headline: status.headline(),
            failing,
            explanation,
            fix,
            requests_24h: summary.requests_24h,
            errors_24h: summary.errors_24h,
            rows: page_rows.iter().map(Row::of).collect(),
            failed_only,
            next,
        },
    ))
}
