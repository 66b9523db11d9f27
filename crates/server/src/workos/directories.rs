//! `GET /directories`, `GET` and `DELETE /directories/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roster_store::{Directory, DirectoryCounts};
use serde_json::Value;

use super::{WorkosAuth, WorkosError, params, render};
use crate::request::QueryParams;
use crate::state::AppState;

/// A live directory, or the 404 the SDKs map to their not-found error.
pub async fn live(s: &AppState, id: &str) -> Result<Directory, WorkosError> {
    s.store
        .get_directory(id)
        .await?
        .ok_or_else(|| WorkosError::not_found(format!("no directory {id}")))
}

pub async fn list(
    State(s): State<AppState>,
    _a: WorkosAuth,
    q: QueryParams,
) -> Result<Json<Value>, WorkosError> {
    let query = crate::api::directories::directory_query(&q, params::paging(&q)?);
    let page = s.store.directory_page(query).await?;
    let ids: Vec<String> = page.data.iter().map(|d| d.id.clone()).collect();
    let counts = s.store.directory_counts(&ids).await?;
    let data = page
        .data
        .iter()
        .map(|d| render::directory(d, counts.get(&d.id).unwrap_or(&DirectoryCounts::default())))
        .collect();
    Ok(Json(params::list(data, page.before, page.after)))
}

pub async fn get(
    State(s): State<AppState>,
    _a: WorkosAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, WorkosError> {
    let d = live(&s, &id).await?;
    let counts = s
        .store
        .directory_counts(std::slice::from_ref(&d.id))
        .await?;
    Ok(Json(render::directory(
        &d,
        counts.get(&d.id).unwrap_or(&DirectoryCounts::default()),
    )))
}

pub async fn delete(
    State(s): State<AppState>,
    _a: WorkosAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, WorkosError> {
    if s.store.delete_directory(&id).await? {
        // Its tokens are gone: no cached proof may outlive them.
        s.tokens.clear();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(WorkosError::not_found(format!("no directory {id}")))
    }
}
