//! Directory users and groups: `/directory_users`, `/directory_groups` and
//! the directory-scoped `/directories/{id}/users|groups`.

use axum::Json;
use axum::extract::{Path, State};
use roster_store::Kind;
use roster_store::directory_api::{GroupQuery, ObjectPage, UserQuery};
use serde_json::Value;

use super::directories::live;
use super::{WorkosAuth, WorkosError, params, render};
use crate::request::QueryParams;
use crate::state::AppState;

fn directory_of(payload: &Value) -> &str {
    payload
        .get("directory_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The directory a list is about: `directory`, else the directory of the
/// object named by `other` (a group for users, a user for groups).
async fn list_directory(
    s: &AppState,
    q: &QueryParams,
    other: &str,
    other_kind: Kind,
) -> Result<String, WorkosError> {
    if let Some(d) = params::text(q, "directory") {
        return Ok(d);
    }
    let Some(id) = params::text(q, other) else {
        return Err(WorkosError::bad_request(format!(
            "give directory or {other}: the list is of one directory's objects"
        )));
    };
    match s.store.directory_object(other_kind, &id).await? {
        Some((payload, _)) => Ok(directory_of(&payload).to_owned()),
        None => Err(WorkosError::not_found(format!(
            "no {} {id}",
            other_kind.noun()
        ))),
    }
}

async fn user_page(
    s: &AppState,
    dir: &str,
    q: &QueryParams,
    with_groups: bool,
) -> Result<Value, WorkosError> {
    let d = live(s, dir).await?;
    let query = UserQuery {
        group: params::text(q, "group"),
        idp_id: params::text(q, "idp_id"),
        email: params::text(q, "email"),
        paging: params::paging(q)?,
        ..UserQuery::default()
    };
    let ObjectPage {
        data,
        before,
        after,
        mut groups,
    } = s.store.directory_users(dir, query).await?;
    let org = d.organization_id.as_deref();
    let data = data
        .iter()
        .map(|u| {
            let mine = with_groups.then(|| {
                let id = u.get("id").and_then(Value::as_str).unwrap_or_default();
                groups
                    .remove(id)
                    .unwrap_or_default()
                    .iter()
                    .map(|g| render::group(g, org))
                    .collect()
            });
            render::user(u, org, mine)
        })
        .collect();
    Ok(params::list(data, before, after))
}

async fn group_page(s: &AppState, dir: &str, q: &QueryParams) -> Result<Value, WorkosError> {
    let d = live(s, dir).await?;
    let query = GroupQuery {
        user: params::text(q, "user"),
        paging: params::paging(q)?,
        ..GroupQuery::default()
    };
    let page = s.store.directory_groups(dir, query).await?;
    let org = d.organization_id.as_deref();
    let data = page.data.iter().map(|g| render::group(g, org)).collect();
    Ok(params::list(data, page.before, page.after))
}

/// One user or group; `in_dir` when the route names its directory.
async fn one(
    s: &AppState,
    kind: Kind,
    id: &str,
    in_dir: Option<&str>,
    with_groups: bool,
) -> Result<Value, WorkosError> {
    let not_found = || WorkosError::not_found(format!("no {} {id}", kind.noun()));
    let (payload, groups) = s
        .store
        .directory_object(kind, id)
        .await?
        .ok_or_else(not_found)?;
    let dir = directory_of(&payload);
    if in_dir.is_some_and(|d| d != dir) {
        return Err(not_found());
    }
    let d = live(s, dir).await?;
    let org = d.organization_id.as_deref();
    Ok(match kind {
        Kind::User => {
            let groups =
                with_groups.then(|| groups.iter().map(|g| render::group(g, org)).collect());
            render::user(&payload, org, groups)
        }
        Kind::Group => render::group(&payload, org),
    })
}

/// `GET /directory_users?directory=&group=&idp_id=&email=`: users with their groups.
pub async fn list(
    State(s): State<AppState>,
    _a: WorkosAuth,
    q: QueryParams,
) -> Result<Json<Value>, WorkosError> {
    let dir = list_directory(&s, &q, "group", Kind::Group).await?;
    user_page(&s, &dir, &q, true).await.map(Json)
}

pub async fn get(
    State(s): State<AppState>,
    _a: WorkosAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, WorkosError> {
    one(&s, Kind::User, &id, None, true).await.map(Json)
}

/// `GET /directories/{id}/users?group=&idp_id=&email=`: users without groups.
pub async fn list_in_directory(
    State(s): State<AppState>,
    _a: WorkosAuth,
    Path(dir): Path<String>,
    q: QueryParams,
) -> Result<Json<Value>, WorkosError> {
    user_page(&s, &dir, &q, false).await.map(Json)
}

pub async fn get_in_directory(
    State(s): State<AppState>,
    _a: WorkosAuth,
    Path((dir, id)): Path<(String, String)>,
) -> Result<Json<Value>, WorkosError> {
    one(&s, Kind::User, &id, Some(&dir), false).await.map(Json)
}

/// `GET /directory_groups?directory=&user=`.
pub async fn list_groups(
    State(s): State<AppState>,
    _a: WorkosAuth,
    q: QueryParams,
) -> Result<Json<Value>, WorkosError> {
    let dir = list_directory(&s, &q, "user", Kind::User).await?;
    group_page(&s, &dir, &q).await.map(Json)
}

pub async fn get_group(
    State(s): State<AppState>,
    _a: WorkosAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, WorkosError> {
    one(&s, Kind::Group, &id, None, false).await.map(Json)
}

/// `GET /directories/{id}/groups?user=`.
pub async fn list_groups_in_directory(
    State(s): State<AppState>,
    _a: WorkosAuth,
    Path(dir): Path<String>,
    q: QueryParams,
) -> Result<Json<Value>, WorkosError> {
    group_page(&s, &dir, &q).await.map(Json)
}

pub async fn get_group_in_directory(
    State(s): State<AppState>,
    _a: WorkosAuth,
    Path((dir, id)): Path<(String, String)>,
) -> Result<Json<Value>, WorkosError> {
    one(&s, Kind::Group, &id, Some(&dir), false).await.map(Json)
}
