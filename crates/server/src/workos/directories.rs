//! `GET /directories`, `GET` and `DELETE /directories/{id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roster_store::{Directory, DirectoryCounts};

use super::render::WorkosDirectory;
use super::{WorkosAuth, WorkosError, params, render};
use crate::api::params::List;
use crate::request::QueryParams;
use crate::state::AppState;

/// A live directory the key sees, or the 404 the SDKs map to their
/// not-found error.
pub async fn live(s: &AppState, a: &WorkosAuth, id: &str) -> Result<Directory, WorkosError> {
    a.require_directory(id)?;
    s.store
        .get_directory(id)
        .await?
        .ok_or_else(|| WorkosError::not_found(format!("no directory {id}")))
}

/// `directories.listDirectories`: the directories the key sees.
#[utoipa::path(
    get,
    path = "/directories",
    tag = "workos",
    params(
        ("organization_id" = Option<String>, Query, description = "Only this organization's directories"),
        ("domain" = Option<String>, Query, description = "Only directories of this domain"),
        ("search" = Option<String>, Query, description = "Only directories whose name contains this"),
        crate::openapi::params::WorkosPage,
    ),
    responses(
        (status = 200, description = "A page of directories", body = List<WorkosDirectory>),
        crate::openapi::objects::WorkosErrors,
    ),
)]
pub async fn list(
    State(s): State<AppState>,
    a: WorkosAuth,
    q: QueryParams,
) -> Result<Json<List<WorkosDirectory>>, WorkosError> {
    let query = crate::api::directories::directory_query(&q, params::paging(&q)?, a.directories());
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

#[utoipa::path(
    get,
    path = "/directories/{id}",
    tag = "workos",
    params(("id" = String, Path, description = "The directory's id")),
    responses(
        (status = 200, description = "The directory", body = WorkosDirectory),
        crate::openapi::objects::WorkosErrors,
    ),
)]
pub async fn get(
    State(s): State<AppState>,
    a: WorkosAuth,
    Path(id): Path<String>,
) -> Result<Json<WorkosDirectory>, WorkosError> {
    let d = live(&s, &a, &id).await?;
    let counts = s
        .store
        .directory_counts(std::slice::from_ref(&d.id))
        .await?;
    Ok(Json(render::directory(
        &d,
        counts.get(&d.id).unwrap_or(&DirectoryCounts::default()),
    )))
}

/// Deletes the directory and everything in it (`dsync.deleted`).
#[utoipa::path(
    delete,
    path = "/directories/{id}",
    tag = "workos",
    params(("id" = String, Path, description = "The directory's id")),
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
    a.require_directory(&id)?;
    a.require_write()?;
    if crate::token_ops::delete_directory(&s, &a.actor(), &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(WorkosError::not_found(format!("no directory {id}")))
    }
}
