//! Directory users and groups: `/directory_users`, `/directory_groups` and
//! the directory-scoped `/directories/{id}/users|groups`.

use axum::Json;
use axum::extract::{Path, State};
use roster_store::Kind;
use roster_store::directory_api::{GroupQuery, ObjectPage, UserQuery};
use serde_json::Value;

use super::directories::live;
use super::render::{DirectoryGroup, DirectoryUser};
use super::{WorkosAuth, WorkosError, params, render};
use crate::api::params::List;
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
    a: &WorkosAuth,
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
        // An object in a directory the key does not see does not exist for it.
        Some((payload, _)) if a.sees(directory_of(&payload)) => {
            Ok(directory_of(&payload).to_owned())
        }
        _ => Err(WorkosError::not_found(format!(
            "no {} {id}",
            other_kind.noun()
        ))),
    }
}

async fn user_page(
    s: &AppState,
    a: &WorkosAuth,
    dir: &str,
    q: &QueryParams,
    with_groups: bool,
) -> Result<List<DirectoryUser>, WorkosError> {
    let d = live(s, a, dir).await?;
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

async fn group_page(
    s: &AppState,
    a: &WorkosAuth,
    dir: &str,
    q: &QueryParams,
) -> Result<List<DirectoryGroup>, WorkosError> {
    let d = live(s, a, dir).await?;
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

/// One user or group as stored, with a user's groups and the organization
/// of its directory; `in_dir` when the route names its directory.
async fn one(
    s: &AppState,
    a: &WorkosAuth,
    kind: Kind,
    id: &str,
    in_dir: Option<&str>,
) -> Result<Found, WorkosError> {
    let not_found = || WorkosError::not_found(format!("no {} {id}", kind.noun()));
    let (payload, groups) = s
        .store
        .directory_object(kind, id)
        .await?
        .ok_or_else(not_found)?;
    let dir = directory_of(&payload);
    if in_dir.is_some_and(|d| d != dir) || !a.sees(dir) {
        return Err(not_found());
    }
    let d = live(s, a, dir).await?;
    Ok(Found {
        payload,
        groups,
        org: d.organization_id,
    })
}

struct Found {
    payload: Value,
    groups: Vec<Value>,
    org: Option<String>,
}

impl Found {
    fn user(&self, with_groups: bool) -> DirectoryUser {
        let org = self.org.as_deref();
        let groups =
            with_groups.then(|| self.groups.iter().map(|g| render::group(g, org)).collect());
        render::user(&self.payload, org, groups)
    }

    fn group(&self) -> DirectoryGroup {
        render::group(&self.payload, self.org.as_deref())
    }
}

/// `GET /directory_users?directory=&group=&idp_id=&email=`: users with their groups.
#[utoipa::path(
    get,
    path = "/directory_users",
    tag = "workos",
    params(
        ("directory" = Option<String>, Query, description = "The directory; required unless group is given"),
        ("group" = Option<String>, Query, description = "Only direct members of this group"),
        ("idp_id" = Option<String>, Query, description = "The identity provider's id"),
        ("email" = Option<String>, Query, description = "Any of the user's addresses, case-insensitive"),
        crate::openapi::params::WorkosPage,
    ),
    responses(
        (status = 200, description = "A page of users, each with its groups", body = List<DirectoryUser>),
        crate::openapi::objects::WorkosErrors,
    ),
)]
pub async fn list(
    State(s): State<AppState>,
    a: WorkosAuth,
    q: QueryParams,
) -> Result<Json<List<DirectoryUser>>, WorkosError> {
    let dir = list_directory(&s, &a, &q, "group", Kind::Group).await?;
    user_page(&s, &a, &dir, &q, true).await.map(Json)
}

/// A user with its groups.
#[utoipa::path(
    get,
    path = "/directory_users/{id}",
    tag = "workos",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = DirectoryUser),
        crate::openapi::objects::WorkosErrors,
    ),
)]
pub async fn get(
    State(s): State<AppState>,
    a: WorkosAuth,
    Path(id): Path<String>,
) -> Result<Json<DirectoryUser>, WorkosError> {
    Ok(Json(one(&s, &a, Kind::User, &id, None).await?.user(true)))
}

/// `GET /directories/{id}/users?group=&idp_id=&email=`: users without groups.
#[utoipa::path(
    get,
    path = "/directories/{id}/users",
    tag = "workos",
    params(
        ("id" = String, Path, description = "The directory's id"),
        ("group" = Option<String>, Query, description = "Only direct members of this group"),
        ("idp_id" = Option<String>, Query, description = "The identity provider's id"),
        ("email" = Option<String>, Query, description = "Any of the user's addresses, case-insensitive"),
        crate::openapi::params::WorkosPage,
    ),
    responses(
        (status = 200, description = "A page of users (without groups)", body = List<DirectoryUser>),
        crate::openapi::objects::WorkosErrors,
    ),
)]
pub async fn list_in_directory(
    State(s): State<AppState>,
    a: WorkosAuth,
    Path(dir): Path<String>,
    q: QueryParams,
) -> Result<Json<List<DirectoryUser>>, WorkosError> {
    user_page(&s, &a, &dir, &q, false).await.map(Json)
}

#[utoipa::path(
    get,
    path = "/directories/{id}/users/{user_id}",
    tag = "workos",
    params(("id" = String, Path, description = "The directory's id"), ("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user (without groups)", body = DirectoryUser),
        crate::openapi::objects::WorkosErrors,
    ),
)]
pub async fn get_in_directory(
    State(s): State<AppState>,
    a: WorkosAuth,
    Path((dir, id)): Path<(String, String)>,
) -> Result<Json<DirectoryUser>, WorkosError> {
    Ok(Json(
        one(&s, &a, Kind::User, &id, Some(&dir)).await?.user(false),
    ))
}

/// `GET /directory_groups?directory=&user=`.
#[utoipa::path(
    get,
    path = "/directory_groups",
    tag = "workos",
    params(
        ("directory" = Option<String>, Query, description = "The directory; required unless user is given"),
        ("user" = Option<String>, Query, description = "Only the groups this user is a direct member of"),
        crate::openapi::params::WorkosPage,
    ),
    responses(
        (status = 200, description = "A page of groups", body = List<DirectoryGroup>),
        crate::openapi::objects::WorkosErrors,
    ),
)]
pub async fn list_groups(
    State(s): State<AppState>,
    a: WorkosAuth,
    q: QueryParams,
) -> Result<Json<List<DirectoryGroup>>, WorkosError> {
    let dir = list_directory(&s, &a, &q, "user", Kind::User).await?;
    group_page(&s, &a, &dir, &q).await.map(Json)
}

#[utoipa::path(
    get,
    path = "/directory_groups/{id}",
    tag = "workos",
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "The group", body = DirectoryGroup),
        crate::openapi::objects::WorkosErrors,
    ),
)]
pub async fn get_group(
    State(s): State<AppState>,
    a: WorkosAuth,
    Path(id): Path<String>,
) -> Result<Json<DirectoryGroup>, WorkosError> {
    Ok(Json(one(&s, &a, Kind::Group, &id, None).await?.group()))
}

/// `GET /directories/{id}/groups?user=`.
#[utoipa::path(
    get,
    path = "/directories/{id}/groups",
    tag = "workos",
    params(
        ("id" = String, Path, description = "The directory's id"),
        ("user" = Option<String>, Query, description = "Only the groups this user is a direct member of"),
        crate::openapi::params::WorkosPage,
    ),
    responses(
        (status = 200, description = "A page of groups", body = List<DirectoryGroup>),
        crate::openapi::objects::WorkosErrors,
    ),
)]
pub async fn list_groups_in_directory(
    State(s): State<AppState>,
    a: WorkosAuth,
    Path(dir): Path<String>,
    q: QueryParams,
) -> Result<Json<List<DirectoryGroup>>, WorkosError> {
    group_page(&s, &a, &dir, &q).await.map(Json)
}

#[utoipa::path(
    get,
    path = "/directories/{id}/groups/{group_id}",
    tag = "workos",
    params(("id" = String, Path, description = "The directory's id"), ("group_id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "The group", body = DirectoryGroup),
        crate::openapi::objects::WorkosErrors,
    ),
)]
pub async fn get_group_in_directory(
    State(s): State<AppState>,
    a: WorkosAuth,
    Path((dir, id)): Path<(String, String)>,
) -> Result<Json<DirectoryGroup>, WorkosError> {
    Ok(Json(
        one(&s, &a, Kind::Group, &id, Some(&dir)).await?.group(),
    ))
}
