//! A directory's SCIM bearer tokens: `/api/v1/directories/{id}/tokens`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roster_store::TokenInfo;
use serde::Deserialize;
use serde_json::{Value, json};

use super::params::{self, ts, ts_opt};
use super::{AdminAuth, AppError, directories};
use crate::state::AppState;

pub const DEFAULT_OVERLAP_SECS: i64 = 3600;
/// Long enough to reconfigure any identity provider, short enough that a
/// leaked token does not live on indefinitely.
pub const MAX_OVERLAP_SECS: i64 = 30 * 24 * 3600;

/// A token's metadata; never the token, which is shown only when issued.
pub fn to_json(t: &TokenInfo) -> Value {
    json!({
        "object": "token",
        "id": t.id,
        "directory_id": t.directory_id,
        "created_at": ts(t.created_at),
        "revoked_at": ts_opt(t.revoked_at),
        "expires_at": ts_opt(t.expires_at),
    })
}

fn token_not_found(dir: &str, id: &str) -> AppError {
    AppError::not_found(format!("no live token {id} in directory {dir}"))
}

pub async fn issue(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(dir): Path<String>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let (info, token) = s.store.issue_token(&dir).await?;
    let mut out = to_json(&info);
    out["token"] = Value::String(token);
    Ok((StatusCode::CREATED, Json(out)))
}

pub async fn list(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(dir): Path<String>,
) -> Result<Json<Value>, AppError> {
    if s.store.get_directory(&dir).await?.is_none() {
        return Err(directories::not_found(&dir));
    }
    let tokens = s.store.list_tokens(&dir).await?;
    Ok(Json(params::list(
        tokens.iter().map(to_json).collect(),
        None,
        None,
    )))
}

pub async fn revoke(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path((dir, id)): Path<(String, String)>,
) -> Result<StatusCode, AppError> {
    if s.store.revoke_directory_token(&dir, &id).await? {
        s.tokens.clear();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(token_not_found(&dir, &id))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    overlap_seconds: Option<i64>,
}

pub async fn rotate(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path((dir, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let overlap = params::body::<RotateBody>(&body)?
        .overlap_seconds
        .unwrap_or(DEFAULT_OVERLAP_SECS);
    if !(0..=MAX_OVERLAP_SECS).contains(&overlap) {
        return Err(AppError::bad_request(format!(
            "overlap_seconds must be 0 to {MAX_OVERLAP_SECS}, not {overlap}"
        )));
    }
    let r = s
        .store
        .rotate_token(Some(&dir), &id, overlap)
        .await?
        .ok_or_else(|| token_not_found(&dir, &id))?;
    // The old token may have ended at once (no overlap).
    s.tokens.clear();
    let mut out = to_json(&r.new);
    out["token"] = Value::String(r.token);
    out["previous"] = to_json(&r.old);
    Ok((StatusCode::CREATED, Json(out)))
}
