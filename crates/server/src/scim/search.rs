//! Listing and `POST /.search` (RFC 7644 §3.4.2 and §3.4.3).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use roster_scim::project::Projection;
use roster_scim::{ScimError, ScimType};
use roster_store::{Kind, Page};
use serde_json::{Map, Value, json};

use crate::auth::DirectoryAuth;
use crate::error::{ApiResult, scim_json};
use crate::render::{base_url, render_all};
use crate::request::JsonBody;
use crate::service::{self, Search};
use crate::state::AppState;

pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// Runs a list request and renders the ListResponse.
pub async fn list_response(
    state: &AppState,
    headers: &HeaderMap,
    dir: &str,
    kind: Kind,
    search: &Search,
    projection: &Projection,
) -> ApiResult<Response> {
    let (result, page) = service::list(state, dir, kind, search).await?;
    let base = base_url(state, headers, dir);
    let related = service::related(state, dir, projection, &result.resources).await?;
    let rt = state.resource_type(kind)?;
    let resources = render_all(
        &state.reg,
        rt,
        &base,
        projection,
        &result.resources,
        &related,
    );
    let mut body = Map::new();
    body.insert("schemas".into(), json!([LIST_RESPONSE]));
    body.insert("totalResults".into(), json!(result.total));
    body.insert("itemsPerPage".into(), json!(resources.len()));
    if let Page::Index { start, .. } = page {
        body.insert("startIndex".into(), json!(start));
    }
    if let Some(c) = result.next_cursor {
        body.insert("nextCursor".into(), json!(c));
    }
    if let Some(c) = result.previous_cursor {
        body.insert("previousCursor".into(), json!(c));
    }
    body.insert("Resources".into(), Value::Array(resources));
    Ok(scim_json(StatusCode::OK, &Value::Object(body)))
}

/// A SearchRequest body (RFC 7644 §3.4.3); attribute names case-insensitive.
fn parse_search(body: &Value) -> ApiResult<(Search, Projection)> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a SearchRequest must be a JSON object"))?;
    let field = |name: &str| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    };
    if let Some(schemas) = field("schemas") {
        let ok = schemas.as_array().is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(SEARCH_REQUEST))
            })
        });
        if !ok {
            return Err(ScimError::invalid_syntax(format!(
                "schemas must contain {SEARCH_REQUEST}"
            ))
            .into());
        }
    }
    let text = |name: &str| -> ApiResult<Option<String>> {
        match field(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ScimError::invalid_syntax(format!("{name} must be a string")).into()),
        }
    };
    let int = |name: &str| -> ApiResult<Option<i64>> {
        match field(name) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| {
                    ScimError::invalid_syntax(format!("{name} must be an integer")).into()
                }),
        }
    };
    let list = |name: &str| -> ApiResult<Vec<String>> {
        match field(name) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_owned).ok_or_else(|| {
                        ScimError::invalid_syntax(format!("{name} must hold strings")).into()
                    })
                })
                .collect(),
            Some(_) => {
                Err(ScimError::invalid_syntax(format!("{name} must be an array of strings")).into())
            }
        }
    };
    let search = Search {
        filter: text("filter")?,
        sort_by: text("sortBy")?,
        sort_order: text("sortOrder")?,
        start_index: int("startIndex")?,
        count: int("count")?,
        cursor: text("cursor")?,
    };
    let projection = Projection::from_lists(&list("attributes")?, &list("excludedAttributes")?)?;
    Ok((search, projection))
}

pub async fn search_users(
    State(s): State<AppState>,
    a: DirectoryAuth,
    h: HeaderMap,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    let (search, projection) = parse_search(&b)?;
    list_response(&s, &h, &a.directory_id, Kind::User, &search, &projection).await
}

pub async fn search_groups(
    State(s): State<AppState>,
    a: DirectoryAuth,
    h: HeaderMap,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    let (search, projection) = parse_search(&b)?;
    list_response(&s, &h, &a.directory_id, Kind::Group, &search, &projection).await
}

/// `POST /.search` at the root: Users then Groups, as one index-paged result.
/// A filter naming an attribute one type lacks simply matches none of that type.
pub async fn search_all(
    State(s): State<AppState>,
    a: DirectoryAuth,
    h: HeaderMap,
    JsonBody(b): JsonBody,
) -> ApiResult<Response> {
    let (search, projection) = parse_search(&b)?;
    if search.cursor.is_some() {
        return Err(ScimError::invalid_value(
            "cursor paging works per resource type: use /Users/.search or /Groups/.search",
        )
        .into());
    }
    if search.sort_by.is_some() {
        return Err(ScimError::invalid_value(
            "sorting across resource types is not defined: use /Users/.search or /Groups/.search",
        )
        .into());
    }
    let dir = &a.directory_id;
    let cfg = &s.config;
    let start = search.start_index.unwrap_or(1).max(1) as u64;
    let count = search
        .count
        .map(|c| c.max(0) as u64)
        .unwrap_or(cfg.default_page_size)
        .min(cfg.max_page_size);
    let base = base_url(&s, &h, dir);
    let mut total = 0u64;
    let mut resources = Vec::new();
    let mut errors = Vec::new();
    // Window [start, start+count) over the concatenation Users ++ Groups.
    let mut skip = start - 1;
    for kind in [Kind::User, Kind::Group] {
        let want = count - resources.len() as u64;
        let sub = Search {
            start_index: Some(i64::try_from(skip + 1).unwrap_or(i64::MAX)),
            count: Some(i64::try_from(want).unwrap_or(i64::MAX)),
            ..search.clone()
        };
        let (result, _) = match service::list(&s, dir, kind, &sub).await {
            Ok(r) => r,
            Err(e) if e.0.scim_type == Some(ScimType::InvalidFilter) => {
                errors.push(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        total += result.total;
        skip = skip.saturating_sub(result.total);
        let related = service::related(&s, dir, &projection, &result.resources).await?;
        let rt = s.resource_type(kind)?;
        resources.extend(render_all(
            &s.reg,
            rt,
            &base,
            &projection,
            &result.resources,
            &related,
        ));
    }
    if errors.len() == 2 {
        return Err(errors.remove(0));
    }
    Ok(scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [LIST_RESPONSE],
            "totalResults": total,
            "itemsPerPage": resources.len(),
            "startIndex": start,
            "Resources": resources,
        }),
    ))
}
