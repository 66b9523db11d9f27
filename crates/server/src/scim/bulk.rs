//! `POST /Bulk`.

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use roster_scim::ScimError;

use crate::auth::DirectoryAuth;
use crate::bulk;
use crate::error::{ApiResult, scim_json};
use crate::idempotency;
use crate::render::base_url;
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
    let limit = s.config.bulk_max_payload_bytes;
    let too_large = || {
        ScimError::new(
            413,
            None,
            format!(
                "the request is larger than maxPayloadSize ({limit} bytes, see /ServiceProviderConfig); split it"
            ),
        )
    };
    // Refuse before reading when the client declares the size; never buffer past the limit.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large().into());
    }
    let bytes = to_bytes(body, limit).await.map_err(|_| too_large())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not valid JSON: {e}")))?;
    let key = idempotency::key(&headers, "POST", "/Bulk", &bytes)?;
    let base = base_url(&s, &headers, &a.directory_id);
    let response = bulk::execute(&s, &a.directory_id, &base, value, key).await?;
    Ok(scim_json(StatusCode::OK, &response))
}
