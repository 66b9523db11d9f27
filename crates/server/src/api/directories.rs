//! Directories: `/api/v1/directories`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roster_store::{Deactivation, Directory};
use serde::Deserialize;
use serde_json::{Value, json};

use super::params::{self, ts};
use super::{AdminAuth, ApiError};
use crate::request::QueryParams;
use crate::state::AppState;

const MAX_NAME: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameBody {
    name: Option<String>,
}

impl NameBody {
    fn name(self) -> Result<String, ApiError> {
        let name = self.name.as_deref().map(str::trim).unwrap_or_default();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(ApiError::bad_request(format!(
                "name must be 1 to {MAX_NAME} characters, e.g. {{\"name\": \"Acme Okta\"}}"
            )));
        }
        Ok(name.to_owned())
    }
}

pub fn to_json(d: &Directory) -> Value {
    json!({
        "object": "directory",
        "id": d.id,
        "name": d.name,
        "created_at": ts(d.created_at),
        "scim_base_path": format!("/scim/v2/{}", d.id),
    })
}

pub fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no directory {id}"))
}

pub async fn create(
    State(s): State<AppState>,
    _a: AdminAuth,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = params::body::<NameBody>(&body)?.name()?;
    let (d, info, token) = s.store.create_directory_with_token(&name).await?;
    let mut out = to_json(&d);
    // The plaintext token is shown this once; only its digest is stored.
    out["token"] = Value::String(token);
    out["token_id"] = Value::String(info.id);
    Ok((StatusCode::CREATED, Json(out)))
}

pub async fn list(
    State(s): State<AppState>,
    _a: AdminAuth,
    q: QueryParams,
) -> Result<Json<Value>, ApiError> {
    let (dirs, after) = s
        .store
        .list_directories_page(params::after(&q)?.as_deref(), params::limit(&q)?)
        .await?;
    Ok(Json(params::list(
        dirs.iter().map(to_json).collect(),
        after,
    )))
}

pub async fn get(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = s
        .store
        .get_directory(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(to_json(&d)))
}

pub async fn rename(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let name = params::body::<NameBody>(&body)?.name()?;
    let d = s
        .store
        .rename_directory(&id, &name)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(to_json(&d)))
}

pub async fn delete(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if s.store.delete_directory(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    deactivation: String,
}

fn settings_json(id: &str, mode: Deactivation) -> Value {
    serde_json::json!({"directory_id": id, "deactivation": mode.as_str()})
}

/// `GET /api/v1/directories/{id}/settings`.
pub async fn settings(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mode = s
        .store
        .deactivation(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(settings_json(&id, mode)))
}

/// `PUT /api/v1/directories/{id}/settings {"deactivation": "update" | "delete"}`.
pub async fn set_settings(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = params::body::<SettingsBody>(&body)?;
    let mode = Deactivation::parse(&body.deactivation).ok_or_else(|| {
        ApiError::bad_request("deactivation must be \"update\" (dsync.user.updated, state inactive) or \"delete\" (dsync.user.deleted)")
    })?;
    if !s.store.set_deactivation(&id, mode).await? {
        return Err(not_found(&id));
    }
    Ok(Json(settings_json(&id, mode)))
}
