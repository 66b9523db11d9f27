//! A directory's SCIM bearer tokens: `/api/v1/directories/{id}/tokens`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roster_store::TokenInfo;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::params::{self, ts};
use super::{AdminAuth, AppError, directories};
use crate::state::AppState;

pub const DEFAULT_OVERLAP_SECS: i64 = 3600;
/// Long enough to reconfigure any identity provider, short enough that a
/// leaked token does not live on indefinitely.
pub const MAX_OVERLAP_SECS: i64 = 30 * 24 * 3600;

/// A directory's SCIM token: its metadata, and the token itself only when
/// issued or rotated.
#[derive(Serialize, ToSchema)]
pub struct Token {
    /// Always `token`.
    #[schema(example = "token")]
    object: &'static str,
    id: String,
    directory_id: String,
    created_at: String,
    revoked_at: Option<String>,
    /// When a rotated token stops working.
    expires_at: Option<String>,
    /// The bearer token for the identity provider; shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// On rotation: the token replaced, with the time it stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion)]
    previous: Option<Box<Token>>,
}

/// A token's metadata; never the token, which is shown only when issued.
pub fn token(t: &TokenInfo) -> Token {
    Token {
        object: "token",
        id: t.id.clone(),
        directory_id: t.directory_id.clone(),
        created_at: ts(t.created_at),
        revoked_at: t.revoked_at.map(ts),
        expires_at: t.expires_at.map(ts),
        token: None,
        previous: None,
    }
}

fn token_not_found(dir: &str, id: &str) -> AppError {
    AppError::not_found(format!("no live token {id} in directory {dir}"))
}

/// A new SCIM token for the directory, shown this once.
#[utoipa::path(
    post,
    path = "/api/v1/directories/{id}/tokens",
    tag = "directories",
    params(("id" = String, Path, description = "The directory's id")),
    responses(
        (status = 201, description = "The token", body = Token),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn issue(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(dir): Path<String>,
) -> Result<(StatusCode, Json<Token>), AppError> {
    a.require_directory(&dir)?;
    a.require_write()?;
    let (info, secret) = s.store.issue_token(&a.actor(), &dir).await?;
    let mut out = token(&info);
    out.token = Some(secret);
    Ok((StatusCode::CREATED, Json(out)))
}

/// The directory's tokens, revoked ones included; never the tokens themselves.
#[utoipa::path(
    get,
    path = "/api/v1/directories/{id}/tokens",
    tag = "directories",
    params(("id" = String, Path, description = "The directory's id")),
    responses(
        (status = 200, description = "The tokens", body = params::List<Token>),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn list(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(dir): Path<String>,
) -> Result<Json<params::List<Token>>, AppError> {
    a.require_directory(&dir)?;
    if s.store.get_directory(&dir).await?.is_none() {
        return Err(directories::not_found(&dir));
    }
    let tokens = s.store.list_tokens(&dir).await?;
    Ok(Json(params::list(
        tokens.iter().map(token).collect(),
        None,
        None,
    )))
}

/// The token stops working at once.
#[utoipa::path(
    delete,
    path = "/api/v1/directories/{id}/tokens/{token_id}",
    tag = "directories",
    params(("id" = String, Path, description = "The directory's id"), ("token_id" = String, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked"),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn revoke(
    State(s): State<AppState>,
    a: AdminAuth,
    Path((dir, id)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    a.require_directory(&dir)?;
    a.require_write()?;
    if crate::token_ops::revoke(&s, &a.actor(), &dir, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(token_not_found(&dir, &id))
    }
}

/// How long the old token keeps working beside the new one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// 0 to 2592000 (30 days); default 3600.
    #[schema(minimum = 0, maximum = 2592000)]
    overlap_seconds: Option<i64>,
}

/// A new token in place of this one; the old one works on for the overlap.
#[utoipa::path(
    post,
    path = "/api/v1/directories/{id}/tokens/{token_id}/rotate",
    tag = "directories",
    params(("id" = String, Path, description = "The directory's id"), ("token_id" = String, Path, description = "The token's id")),
    request_body(content = Option<RotateBody>, description = "Optional; the default overlap is an hour"),
    responses(
        (status = 201, description = "The new token, with the previous one", body = Token),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn rotate(
    State(s): State<AppState>,
    a: AdminAuth,
    Path((dir, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Token>), AppError> {
    a.require_directory(&dir)?;
    a.require_write()?;
    let overlap = params::body::<RotateBody>(&body)?
        .overlap_seconds
        .unwrap_or(DEFAULT_OVERLAP_SECS);
    if !(0..=MAX_OVERLAP_SECS).contains(&overlap) {
        return Err(AppError::bad_request(format!(
            "overlap_seconds must be 0 to {MAX_OVERLAP_SECS}, not {overlap}"
        )));
    }
    let r = crate::token_ops::rotate(&s, &a.actor(), Some(&dir), &id, overlap)
        .await?
        .ok_or_else(|| token_not_found(&dir, &id))?;
    let mut out = token(&r.new);
    out.token = Some(r.token);
    out.previous = Some(Box::new(token(&r.old)));
    Ok((StatusCode::CREATED, Json(out)))
}
