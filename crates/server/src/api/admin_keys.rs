//! Admin API keys: `/api/v1/admin_keys`. Managing them needs a full,
//! unlimited key; a key is shown once, when created or rotated.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roster_store::{AdminKeyInfo, AdminKeyScope};
use serde::Deserialize;
use serde_json::Value;

use super::params;
use super::{AdminAuth, AppError};
use crate::state::AppState;

const MAX_NAME: usize = 200;
/// A key names a handful of directories; each is checked when it is created.
const MAX_DIRECTORIES: usize = 100;

fn not_found(id: &str) -> AppError {
    AppError::not_found(format!("no live admin key {id}"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) read_only: bool,
    pub(crate) directories: Option<Vec<String>>,
}

impl NewKey {
    fn into_parts(self) -> Result<(String, AdminKeyScope), AppError> {
        let name = self.name.as_deref().map(str::trim).unwrap_or_default();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(AppError::bad_request(format!(
                "name must be 1 to {MAX_NAME} characters, e.g. {{\"name\": \"billing app\"}}"
            )));
        }
        if let Some(dirs) = &self.directories
            && (dirs.is_empty() || dirs.len() > MAX_DIRECTORIES)
        {
            return Err(AppError::bad_request(format!(
                "directories must list 1 to {MAX_DIRECTORIES} directory ids, or be left out for all directories"
            )));
        }
        let directories = self.directories.map(|mut d| {
            d.sort();
            d.dedup();
            d
        });
        Ok((
            name.to_owned(),
            AdminKeyScope {
                read_only: self.read_only,
                directories,
            },
        ))
    }
}

/// `POST /api/v1/admin_keys {"name", "read_only"?, "directories"?}`.
pub async fn create(
    State(s): State<AppState>,
    a: AdminAuth,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let (info, key) = mint(&s, &a, params::body::<NewKey>(&body)?).await?;
    let mut out = info.to_json();
    // Shown this once; only its digest is stored.
    out["key"] = Value::String(key);
    Ok((StatusCode::CREATED, Json(out)))
}

/// Mints a key as `new` describes; for `/api/v1` and the dashboard alike.
pub(crate) async fn mint(
    s: &AppState,
    a: &AdminAuth,
    new: NewKey,
) -> Result<(AdminKeyInfo, String), AppError> {
    a.require_full()?;
    let (name, scope) = new.into_parts()?;
    s.store
        .create_admin_key(&a.actor(), &name, &scope)
        .await
        .map_err(|e| match e {
            // A directory in the body, not in the path: the request is wrong.
            roster_store::StoreError::NotFound(m) => AppError::bad_request(m),
            e => e.into(),
        })
}

/// `GET /api/v1/admin_keys`: every key, revoked ones included.
pub async fn list(State(s): State<AppState>, a: AdminAuth) -> Result<Json<Value>, AppError> {
    a.require_full()?;
    let keys = s.store.list_admin_keys().await?;
    Ok(Json(params::list(
        keys.iter().map(AdminKeyInfo::to_json).collect(),
        None,
        None,
    )))
}

/// `DELETE /api/v1/admin_keys/{id}`: the key stops working at once.
pub async fn revoke(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    a.require_full()?;
    s.store
        .revoke_admin_key(&a.actor(), &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/admin_keys/{id}/rotate`: a new secret for the same key;
/// the old secret stops working at once.
pub async fn rotate(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    a.require_full()?;
    let (info, key) = s
        .store
        .rotate_admin_key(&a.actor(), &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let mut out = info.to_json();
    out["key"] = Value::String(key);
    Ok(Json(out))
}
