//! `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas` (RFC 7644 §4),
//! generated from the same definitions the server validates with.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use roster_scim::ScimError;
use serde_json::{Value, json};

use super::search::LIST_RESPONSE;
use crate::auth::DirectoryAuth;
use crate::error::{ApiResult, scim_json};
use crate::render::base_url;
use crate::request::QueryParams;
use crate::state::AppState;

pub const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

fn json(body: Value) -> Response {
    scim_json(StatusCode::OK, &body)
}

fn list(items: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": items.len(),
        "itemsPerPage": items.len(),
        "startIndex": 1,
        "Resources": items,
    })
}

/// Every flag here matches what the server does.
pub fn service_provider_config_json(state: &AppState, base: &str) -> Value {
    let cfg = &state.config;
    json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://github.com/roster-dsync/roster",
        "patch": {"supported": true},
        "bulk": {
            "supported": cfg.bulk_enabled,
            "maxOperations": cfg.bulk_max_operations,
            "maxPayloadSize": cfg.bulk_max_payload_bytes,
        },
        "filter": {"supported": true, "maxResults": cfg.max_page_size},
        "changePassword": {"supported": true},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": cfg.default_page_size,
            "maxPageSize": cfg.max_page_size,
            "cursorTimeout": cfg.cursor_timeout_secs,
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "The directory's bearer token, sent as \"Authorization: Bearer <token>\".",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

pub async fn service_provider_config(
    State(s): State<AppState>,
    a: DirectoryAuth,
    h: HeaderMap,
) -> ApiResult<Response> {
    let base = base_url(&s, &h, &a.directory_id);
    Ok(json(service_provider_config_json(&s, &base)))
}

/// Discovery lists ignore filters: RFC 7644 §4 says they MAY, and clients never need them.
pub async fn resource_types(
    State(s): State<AppState>,
    a: DirectoryAuth,
    h: HeaderMap,
    _q: QueryParams,
) -> ApiResult<Response> {
    let base = base_url(&s, &h, &a.directory_id);
    Ok(json(list(
        s.reg
            .resource_types()
            .iter()
            .map(|rt| rt.to_json(&base))
            .collect(),
    )))
}

pub async fn resource_type(
    State(s): State<AppState>,
    a: DirectoryAuth,
    h: HeaderMap,
    Path((_, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let base = base_url(&s, &h, &a.directory_id);
    let rt = s
        .reg
        .resource_type(&name)
        .ok_or_else(|| ScimError::not_found(format!("no resource type {name}")))?;
    Ok(json(rt.to_json(&base)))
}

pub async fn schemas(
    State(s): State<AppState>,
    a: DirectoryAuth,
    h: HeaderMap,
    _q: QueryParams,
) -> ApiResult<Response> {
    let base = base_url(&s, &h, &a.directory_id);
    Ok(json(list(
        s.reg
            .schemas()
            .iter()
            .map(|sc| sc.to_json(&format!("{base}/Schemas/{}", sc.id)))
            .collect(),
    )))
}

pub async fn schema(
    State(s): State<AppState>,
    a: DirectoryAuth,
    h: HeaderMap,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let base = base_url(&s, &h, &a.directory_id);
    let sc = s
        .reg
        .schema(&id)
        .ok_or_else(|| ScimError::not_found(format!("no schema {id}")))?;
    Ok(json(sc.to_json(&format!("{base}/Schemas/{}", sc.id))))
}
