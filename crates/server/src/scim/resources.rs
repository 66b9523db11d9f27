//! CRUD and list handlers for /Users and /Groups: parse, call the service, answer.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roster_scim::project::Projection;
use roster_store::{Kind, Stored};
use serde_json::Value;

use super::search::list_response;
use crate::auth::DirectoryAuth;
use crate::error::{ApiResult, scim_json};
use crate::idempotency;
use crate::limits::check_path_id;
use crate::render::{base_url, full_resource, render_all};
use crate::request::{JsonBody, Preconditions, QueryParams, etag};
use crate::service::{self, Search};
use crate::state::AppState;

/// A single resource response with `ETag` (and `Location` on create).
pub fn resource_response(
    status: StatusCode,
    body: &Value,
    version: i64,
    location: Option<&str>,
) -> Response {
    let mut resp = with_etag(scim_json(status, body), version);
    if let Some(loc) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

fn with_etag(mut resp: Response, version: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&etag(version)) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}

fn projection(q: &QueryParams) -> ApiResult<Projection> {
    Ok(Projection::parse(
        q.get("attributes"),
        q.get("excludedAttributes"),
    )?)
}

/// Renders one stored resource with the related rows the projection needs.
async fn render_one(
    state: &AppState,
    headers: &HeaderMap,
    dir: &str,
    stored: &Stored,
    projection: &Projection,
) -> ApiResult<Value> {
    let base = base_url(state, headers, dir);
    let one = std::slice::from_ref(stored);
    let related = service::related(state, dir, projection, one).await?;
    let rt = state.resource_type(stored.kind)?;
    let mut out = render_all(&state.reg, rt, &base, projection, one, &related);
    Ok(out.pop().unwrap_or(Value::Null))
}

async fn create(
    state: AppState,
    auth: DirectoryAuth,
    headers: HeaderMap,
    q: QueryParams,
    kind: Kind,
    body: Value,
) -> ApiResult<Response> {
    let projection = projection(&q)?;
    let path = if kind == Kind::User {
        "/Users"
    } else {
        "/Groups"
    };
    let key = idempotency::key(&headers, "POST", path, body.to_string().as_bytes())?;
    // A user created with `groups` (a tolerance) has joined them already.
    let joins_groups = kind == Kind::User
        && roster_scim::members::user_groups(&body)
            .ok()
            .flatten()
            .is_some_and(|g| !g.is_empty());
    // A replayed idempotent create may return a user that has joined groups since.
    let (stored, fresh) = match key {
        Some(key) => (
            service::create_idempotent(&state, &auth.directory_id, kind, body, key).await?,
            false,
        ),
        None => (
            service::create(&state, &auth.directory_id, kind, body).await?,
            true,
        ),
    };
    let out = if fresh && kind == Kind::User && !joins_groups {
        // A user that did not exist until this request belongs to no group yet:
        // skipping the lookup saves a read transaction and a thread hop per create.
        let rt = state.resource_type(kind)?;
        let base = base_url(&state, &headers, &auth.directory_id);
        projection.apply(&state.reg, rt, full_resource(rt, &base, &stored, None))
    } else {
        render_one(&state, &headers, &auth.directory_id, &stored, &projection).await?
    };
    let location = out
        .pointer("/meta/location")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let rt_endpoint = if kind == Kind::User {
                "/Users"
            } else {
                "/Groups"
            };
            format!(
                "{}{rt_endpoint}/{}",
                base_url(&state, &headers, &auth.directory_id),
                stored.id
            )
        });
    Ok(resource_response(
        StatusCode::CREATED,
        &out,
        stored.version,
        Some(&location),
    ))
}

async fn read(
    state: AppState,
    auth: DirectoryAuth,
    headers: HeaderMap,
    q: QueryParams,
    pre: Preconditions,
    kind: Kind,
    id: String,
) -> ApiResult<Response> {
    check_path_id(&id, state.config.max_identifier_bytes)?;
    let projection = projection(&q)?;
    let stored = service::get(&state, &auth.directory_id, kind, &id).await?;
    if pre
        .if_none_match
        .as_ref()
        .is_some_and(|t| t.matches(stored.version))
    {
        return Ok(with_etag(
            StatusCode::NOT_MODIFIED.into_response(),
            stored.version,
        ));
    }
    let out = render_one(&state, &headers, &auth.directory_id, &stored, &projection).await?;
    Ok(resource_response(
        StatusCode::OK,
        &out,
        stored.version,
        None,
    ))
}

#[allow(clippy::too_many_arguments)]
async fn write(
    state: AppState,
    auth: DirectoryAuth,
    headers: HeaderMap,
    q: QueryParams,
    pre: Preconditions,
    kind: Kind,
    id: String,
    body: Value,
    is_patch: bool,
) -> ApiResult<Response> {
    check_path_id(&id, state.config.max_identifier_bytes)?;
    let projection = projection(&q)?;
    let version = pre.required_version()?;
    let dir = &auth.directory_id;
    let stored = if is_patch {
        service::patch(&state, dir, kind, &id, version, body).await?
    } else {
        service::replace(&state, dir, kind, &id, version, body).await?
    };
    if is_patch && kind == Kind::Group && state.config.group_patch_no_content {
        return Ok(with_etag(
            StatusCode::NO_CONTENT.into_response(),
            stored.version,
        ));
    }
    let out = render_one(&state, &headers, dir, &stored, &projection).await?;
    Ok(resource_response(
        StatusCode::OK,
        &out,
        stored.version,
        None,
    ))
}

async fn remove(
    state: AppState,
    auth: DirectoryAuth,
    pre: Preconditions,
    kind: Kind,
    id: String,
) -> ApiResult<Response> {
    check_path_id(&id, state.config.max_identifier_bytes)?;
    let version = pre.required_version()?;
    service::delete(&state, &auth.directory_id, kind, &id, version).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list(
    state: AppState,
    auth: DirectoryAuth,
    headers: HeaderMap,
    q: QueryParams,
    kind: Kind,
) -> ApiResult<Response> {
    let search = Search {
        filter: q.get("filter").map(str::to_owned),
        sort_by: q.get("sortBy").map(str::to_owned),
        sort_order: q.get("sortOrder").map(str::to_owned),
        start_index: q.int("startIndex")?,
        count: q.int("count")?,
        cursor: q
            .has("cursor")
            .then(|| q.get("cursor").unwrap_or_default().to_owned()),
    };
    let projection = projection(&q)?;
    list_response(
        &state,
        &headers,
        &auth.directory_id,
        kind,
        &search,
        &projection,
    )
    .await
}

type P2 = Path<(String, String)>;

macro_rules! handlers {
    ($kind:expr, $list:ident, $create:ident, $get:ident, $replace:ident, $patch:ident, $delete:ident) => {
        pub async fn $list(
            State(s): State<AppState>,
            a: DirectoryAuth,
            h: HeaderMap,
            q: QueryParams,
        ) -> ApiResult<Response> {
            list(s, a, h, q, $kind).await
        }
        pub async fn $create(
            State(s): State<AppState>,
            a: DirectoryAuth,
            h: HeaderMap,
            q: QueryParams,
            JsonBody(b): JsonBody,
        ) -> ApiResult<Response> {
            create(s, a, h, q, $kind, b).await
        }
        pub async fn $get(
            State(s): State<AppState>,
            a: DirectoryAuth,
            Path((_, id)): P2,
            h: HeaderMap,
            q: QueryParams,
            p: Preconditions,
        ) -> ApiResult<Response> {
            read(s, a, h, q, p, $kind, id).await
        }
        pub async fn $replace(
            State(s): State<AppState>,
            a: DirectoryAuth,
            Path((_, id)): P2,
            h: HeaderMap,
            q: QueryParams,
            p: Preconditions,
            JsonBody(b): JsonBody,
        ) -> ApiResult<Response> {
            write(s, a, h, q, p, $kind, id, b, false).await
        }
        pub async fn $patch(
            State(s): State<AppState>,
            a: DirectoryAuth,
            Path((_, id)): P2,
            h: HeaderMap,
            q: QueryParams,
            p: Preconditions,
            JsonBody(b): JsonBody,
        ) -> ApiResult<Response> {
            write(s, a, h, q, p, $kind, id, b, true).await
        }
        pub async fn $delete(
            State(s): State<AppState>,
            a: DirectoryAuth,
            Path((_, id)): P2,
            p: Preconditions,
        ) -> ApiResult<Response> {
            remove(s, a, p, $kind, id).await
        }
    };
}

handlers!(
    Kind::User,
    list_users,
    create_user,
    get_user,
    replace_user,
    patch_user,
    delete_user
);
handlers!(
    Kind::Group,
    list_groups,
    create_group,
    get_group,
    replace_group,
    patch_group,
    delete_group
);
