//! A directory's provider request log and connection status:
//! `/api/v1/directories/{id}/requests` and `/api/v1/directories/{id}/connection`.

use axum::Json;
use axum::extract::{Path, State};
use roster_domain::requests::{RequestQuery, parse_request_id};
use serde_json::{Value, json};

use super::params::{self, ts_opt};
use super::{AdminAuth, AppError, directories};
use crate::request::QueryParams;
use crate::state::AppState;

/// Newest first, `limit` at a time; `before` (a request id) pages back,
/// `failed=true` shows only failed requests.
#[utoipa::path(
    get,
    path = "/api/v1/directories/{id}/requests",
    tag = "directories",
    params(
        ("id" = String, Path, description = "The directory's id"),
        ("before" = Option<String>, Query, description = "A request id (req_…): the requests older than it"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 100, description = "Requests a page"),
        ("failed" = Option<bool>, Query, description = "Only failed requests (status 400 and above)"),
    ),
    responses(
        (status = 200, description = "A page of the provider's requests, newest first", body = crate::openapi::objects::ProviderRequestList),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn list(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(dir): Path<String>,
    q: QueryParams,
) -> Result<Json<params::List<Value>>, AppError> {
    a.require_directory(&dir)?;
    if s.store.get_directory(&dir).await?.is_none() {
        return Err(directories::not_found(&dir));
    }
    let before = match params::text(&q, "before") {
        None => None,
        Some(id) => Some(parse_request_id(id).ok_or_else(|| {
            AppError::bad_request(format!(
                "before must be a request id such as req_0000000000000001, not {id:?}"
            ))
        })?),
    };
    let failed_only = match params::text(&q, "failed") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(AppError::bad_request(format!(
                "failed must be true or false, not {other:?}"
            )));
        }
    };
    let limit = params::limit_within(&q, params::DEFAULT_LIMIT, params::MAX_LIMIT)?;
    let page = s
        .store
        .requests(
            &dir,
            RequestQuery {
                before,
                limit,
                failed_only,
            },
        )
        .await?;
    let next = (page.len() as u64 == limit)
        .then(|| page.last().map(|r| r.id()))
        .flatten();
    Ok(Json(params::list(
        page.iter().map(|r| r.to_json()).collect(),
        next,
        None,
    )))
}

/// Waiting, connected or failing (with the fix), and the last day's counts.
#[utoipa::path(
    get,
    path = "/api/v1/directories/{id}/connection",
    tag = "directories",
    params(("id" = String, Path, description = "The directory's id")),
    responses(
        (status = 200, description = "The directory's connection status", body = crate::openapi::objects::Connection),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn connection(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(dir): Path<String>,
) -> Result<Json<Value>, AppError> {
    a.require_directory(&dir)?;
    let (status, summary) = crate::connection::status(s.store.as_ref(), &dir)
        .await?
        .ok_or_else(|| directories::not_found(&dir))?;
    let mut out = json!({"object": "connection", "directory_id": dir});
    if let (Value::Object(o), Value::Object(st)) = (&mut out, status.to_json()) {
        o.extend(st);
    }
    out["last_request_at"] = ts_opt(summary.last_request_at);
    out["requests_24h"] = json!(summary.requests_24h);
    out["errors_24h"] = json!(summary.errors_24h);
    Ok(Json(out))
}
