//! `POST /api/v1/portal_links`: a one-time link that opens the Admin Portal
//! for one directory, for the app to hand to its customer's IT admin.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::params::{self, ts};
use super::{AdminAuth, AppError};
use crate::state::AppState;

/// How long a link stays valid unless the request says otherwise.
pub const DEFAULT_EXPIRES_IN_SECS: u64 = 300;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLink {
    directory_id: String,
    /// Where the portal's "back" link goes: an absolute http(s) URL.
    return_url: Option<String>,
    /// How long the link may wait to be opened (default 300 s, at most
    /// the `portal_link_max_secs` setting).
    #[schema(minimum = 1)]
    expires_in_secs: Option<u64>,
}

/// A `return_url` the portal may link back to: absolute http(s), no credentials.
pub fn check_return_url(url: &str) -> Result<(), AppError> {
    let bad = || {
        AppError::bad_request(format!(
            "return_url must be an absolute http or https URL without credentials, not {url:?}"
        ))
    };
    if url.len() > 2048 {
        return Err(AppError::bad_request(
            "return_url is longer than 2048 bytes",
        ));
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| bad())?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return Err(bad());
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/api/v1/portal_links",
    tag = "admin",
    request_body = NewLink,
    responses(
        (status = 201, description = "The link, to hand to the directory's IT admin", body = crate::openapi::objects::PortalLink),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn create(
    State(s): State<AppState>,
    a: AdminAuth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let body: NewLink = params::body(&body)?;
    a.require_directory(&body.directory_id)?;
    a.require_write()?;
    let max = s.config.portal_link_max_secs.max(1);
    let expires_in = body
        .expires_in_secs
        .unwrap_or(DEFAULT_EXPIRES_IN_SECS.min(max));
    if !(1..=max).contains(&expires_in) {
        return Err(AppError::bad_request(format!(
            "expires_in_secs must be 1 to {max} (the portal_link_max_secs setting), not {expires_in}"
        )));
    }
    if let Some(url) = &body.return_url {
        check_return_url(url)?;
    }
    let expires_at = roster_store::now_ms()
        .saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX / 1000) * 1000);
    let (link, secret) = s
        .store
        .create_portal_link(
            &a.actor(),
            &body.directory_id,
            body.return_url.as_deref(),
            expires_at,
        )
        .await?;
    let root = crate::render::public_root(&s, &headers);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "object": "portal_link",
            "id": link.id,
            "directory_id": link.directory_id,
            "url": format!("{root}/portal/open/{secret}"),
            "expires_at": ts(link.expires_at),
            "return_url": link.return_url,
        })),
    ))
}
