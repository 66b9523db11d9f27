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

pub async fn list_users(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(dir): Path<String>,
    q: QueryParams,
) -> Result<Json<Value>, AppError> {
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

pub async fn list_groups(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(dir): Path<String>,
    q: QueryParams,
) -> Result<Json<Value>, AppError> {
    let query = GroupQuery {
        user: params::text(&q, "user").map(str::to_owned),
        updated_after: params::timestamp(&q, "updated_after")?,
        paging: params::api_paging(&q)?,
    };
    let page = s.store.directory_groups(&dir, query).await?;
    Ok(Json(params::list(page.data, page.before, page.after)))
}

pub async fn get_user(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    s.store
        .directory_object(Kind::User, &id)
        .await?
        .map(|(user, _)| Json(user))
        .ok_or_else(|| AppError::not_found(format!("no user {id}")))
}

pub async fn get_group(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    s.store
        .directory_object(Kind::Group, &id)
        .await?
        .map(|(group, _)| Json(group))
        .ok_or_else(|| AppError::not_found(format!("no group {id}")))
}

pub async fn group_users(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
    q: QueryParams,
) -> Result<Json<Value>, AppError> {
    let page = s.store.group_users(&id, params::api_paging(&q)?).await?;
    Ok(Json(params::list(page.data, page.before, page.after)))
}
