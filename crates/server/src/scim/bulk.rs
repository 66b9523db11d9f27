//! `POST /Bulk`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use roster_scim::ScimError;

use crate::auth::DirectoryAuth;
use crate::bulk;
use crate::error::{ApiResult, scim_json};
use crate::idempotency;
use crate::limits::{parse_json, read_body};
use crate::render::base_url;
use crate::request::check_content_type;
use crate::state::AppState;

pub async fn post_bulk(
    State(s): State<AppState>,
    a: DirectoryAuth,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if !s.config.bulk_enabled {
        return Err(ScimError::new(
            501,
            None,
            "/Bulk is turned off on this server (bulk.supported is false in /ServiceProviderConfig)",
        )
        .into());
    }
    check_content_type(&headers)?;
    let cfg = &s.config;
    // maxPayloadSize is what /ServiceProviderConfig advertises; name both.
    let bytes = read_body(
        cfg,
        &headers,
        body,
        cfg.bulk_max_payload_bytes,
        "maxPayloadSize (bulk_max_payload_bytes)",
    )
    .await?;
    let value = parse_json(cfg, &bytes)?;
    let key = idempotency::key(&headers, "POST", "/Bulk", &bytes)?;
    let base = base_url(&s, &headers, &a.directory_id);
    let response = bulk::execute(&s, &a.directory_id, &base, value, key).await?;
    Ok(scim_json(StatusCode::OK, &response))
}
