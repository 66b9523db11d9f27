//! The app-facing directory API: normalized users and groups, the same
//! payloads that events carry, read by cursor.

use axum::Json;
use axum::extract::{Path, State};
use roster_store::Kind;
use roster_store::directory_api::{GroupQuery, UserQuery, UserState};
use serde_json::Value;

use super::params;
use super::{AdminAuth, AppError};
use crate::request::QueryParams;
use crate::state::AppState;

fn state(q: &QueryParams) -> Result<Option<UserState>, AppError> {
    match q.get("state").map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) if s.eq_ignore_ascii_case("active") => Ok(Some(UserState::Active)),
        Some(s) if s.eq_ignore_ascii_case("inactive") => Ok(Some(UserState::Inactive)),
        Some(s) => Err(AppError::bad_request(format!(
            "state must be active or inactive, not {s:?}"
        ))),
    }
}

/// A directory's users, each with its groups.
#[utoipa::path(
    get,
    path = "/api/v1/directories/{id}/users",
    tag = "users and groups",
    params(
        ("id" = String, Path, description = "The directory's id"),
        ("group" = Option<String>, Query, description = "Only direct members of this group"),
        ("state" = Option<String>, Query, description = "active or inactive"),
        ("updated_after" = Option<String>, Query, format = DateTime, description = "Only users changed after this instant (RFC 3339)"),
        ("idp_id" = Option<String>, Query, description = "The identity provider's id (externalId)"),
        ("email" = Option<String>, Query, description = "Any of the user's addresses, case-insensitive"),
        crate::openapi::params::ApiPage,
    ),
    responses(
        (status = 200, description = "A page of users", body = params::List<crate::openapi::objects::User>),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn list_users(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(dir): Path<String>,
    q: QueryParams,
) -> Result<Json<params::List<Value>>, AppError> {
    a.require_directory(&dir)?;
    let query = UserQuery {
        group: q
            .get("group")
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned),
        state: state(&q)?,
        updated_after: params::timestamp(&q, "updated_after")?,
        idp_id: params::text(&q, "idp_id").map(str::to_owned),
        email: params::text(&q, "email").map(str::to_owned),
        paging: params::api_paging(&q)?,
    };
    let page = s.store.directory_users(&dir, query).await?;
    Ok(Json(params::list(page.data, page.before, page.after)))
}

/// A directory's groups.
#[utoipa::path(
    get,
    path = "/api/v1/directories/{id}/groups",
    tag = "users and groups",
    params(
        ("id" = String, Path, description = "The directory's id"),
        ("user" = Option<String>, Query, description = "Only the groups this user is a direct member of"),
        ("updated_after" = Option<String>, Query, format = DateTime, description = "Only groups changed after this instant (RFC 3339)"),
        crate::openapi::params::ApiPage,
    ),
    responses(
        (status = 200, description = "A page of groups", body = params::List<crate::openapi::objects::Group>),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn list_groups(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(dir): Path<String>,
    q: QueryParams,
) -> Result<Json<params::List<Value>>, AppError> {
    a.require_directory(&dir)?;
    let query = GroupQuery {
        user: params::text(&q, "user").map(str::to_owned),
        updated_after: params::timestamp(&q, "updated_after")?,
        paging: params::api_paging(&q)?,
    };
    let page = s.store.directory_groups(&dir, query).await?;
    Ok(Json(params::list(page.data, page.before, page.after)))
}

/// One user or group, if it is in a directory the key sees.
async fn object(s: &AppState, a: &AdminAuth, kind: Kind, id: &str) -> Result<Value, AppError> {
    let what = match kind {
        Kind::User => "user",
        Kind::Group => "group",
    };
    s.store
        .directory_object(kind, id)
        .await?
        .map(|(o, _groups)| o)
        .filter(|o| o["directory_id"].as_str().is_some_and(|d| a.sees(d)))
        .ok_or_else(|| AppError::not_found(format!("no {what} {id}")))
}

#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    tag = "users and groups",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = crate::openapi::objects::User),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn get_user(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    object(&s, &a, Kind::User, &id).await.map(Json)
}

#[utoipa::path(
    get,
    path = "/api/v1/groups/{id}",
    tag = "users and groups",
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "The group", body = crate::openapi::objects::Group),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn get_group(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    object(&s, &a, Kind::Group, &id).await.map(Json)
}

/// A group's direct members.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{id}/users",
    tag = "users and groups",
    params(
        ("id" = String, Path, description = "The group's id"),
        crate::openapi::params::ApiPage,
    ),
    responses(
        (status = 200, description = "A page of users", body = params::List<crate::openapi::objects::User>),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn group_users(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
    q: QueryParams,
) -> Result<Json<params::List<Value>>, AppError> {
    if a.directories().is_some() {
        object(&s, &a, Kind::Group, &id).await?;
    }
    let page = s.store.group_users(&id, params::api_paging(&q)?).await?;
    Ok(Json(params::list(page.data, page.before, page.after)))
}
