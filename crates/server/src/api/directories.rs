//! Directories: `/api/v1/directories`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roster_scim::schema::SchemaRegistry;
use roster_store::directory_api::{DirectoryQuery, Paging};
use roster_store::events::CustomAttributes;
use roster_store::{
    Deactivation, Directory, DirectoryAttrs, DirectoryChange, DirectorySettings, GENERIC_PROVIDER,
    PROVIDER_TYPES, SettingsChange,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::params::{self, ts};
use super::{AdminAuth, AppError};
use crate::request::QueryParams;
use crate::state::AppState;

const MAX_NAME: usize = 200;

/// A directory's attributes as `/api/v1` takes them: on create `name` is
/// required; on PATCH every field is optional and `null` clears an optional one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryBody {
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    organization_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    domain: Option<Option<String>>,
    #[serde(rename = "type", default, deserialize_with = "present")]
    provider: Option<Option<String>>,
}

/// Tells a key sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

const MAX_ATTR: usize = 200;

fn check_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(AppError::bad_request(format!(
            "name must be 1 to {MAX_NAME} characters, e.g. {{\"name\": \"Acme Okta\"}}"
        )));
    }
    Ok(name.to_owned())
}

/// An optional attribute: trimmed, empty meaning none, within [`MAX_ATTR`].
fn check_attr(key: &str, v: Option<String>) -> Result<Option<String>, AppError> {
    let v = v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    if v.as_ref().is_some_and(|s| s.chars().count() > MAX_ATTR) {
        return Err(AppError::bad_request(format!(
            "{key} must be at most {MAX_ATTR} characters"
        )));
    }
    Ok(v)
}

fn check_provider(v: Option<String>) -> Result<Option<String>, AppError> {
    match check_attr("type", v)? {
        Some(t) if !PROVIDER_TYPES.contains(&t.as_str()) => Err(AppError::bad_request(format!(
            "type must be one of {}, not {t:?}",
            PROVIDER_TYPES.join(", ")
        ))),
        t => Ok(t),
    }
}

impl DirectoryBody {
    fn change(self) -> Result<DirectoryChange, AppError> {
        Ok(DirectoryChange {
            name: self.name.as_deref().map(check_name).transpose()?,
            organization_id: self
                .organization_id
                .map(|o| check_attr("organization_id", o))
                .transpose()?,
            domain: self.domain.map(|d| check_attr("domain", d)).transpose()?,
            provider: self.provider.map(check_provider).transpose()?,
        })
    }
}

pub fn to_json(d: &Directory) -> Value {
    json!({
        "object": "directory",
        "id": d.id,
        "name": d.name,
        "organization_id": d.organization_id,
        "domain": d.domain,
        "type": d.provider.as_deref().unwrap_or(GENERIC_PROVIDER),
        "created_at": ts(d.created_at),
        "updated_at": ts(d.updated_at),
        "scim_base_path": format!("/scim/v2/{}", d.id),
    })
}

pub fn not_found(id: &str) -> AppError {
    AppError::not_found(format!("no directory {id}"))
}

/// `POST /api/v1/directories {"name", "organization_id"?, "domain"?, "type"?}`.
pub async fn create(
    State(s): State<AppState>,
    _a: AdminAuth,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let change = params::body::<DirectoryBody>(&body)?.change()?;
    let name = check_name(change.name.as_deref().unwrap_or_default())?;
    let attrs = DirectoryAttrs {
        organization_id: change.organization_id.flatten(),
        domain: change.domain.flatten(),
        provider: change.provider.flatten(),
    };
    let (d, info, token) = s.store.create_directory_with_token(&name, attrs).await?;
    let mut out = to_json(&d);
    // The plaintext token is shown this once; only its digest is stored.
    out["token"] = Value::String(token);
    out["token_id"] = Value::String(info.id);
    Ok((StatusCode::CREATED, Json(out)))
}

/// The filters `/api/v1/directories` and `/directories` share.
pub fn directory_query(q: &QueryParams, paging: Paging) -> DirectoryQuery {
    let text = |name| params::text(q, name).map(str::to_owned);
    DirectoryQuery {
        organization_id: text("organization_id"),
        domain: text("domain"),
        search: text("search"),
        paging,
    }
}

pub async fn list(
    State(s): State<AppState>,
    _a: AdminAuth,
    q: QueryParams,
) -> Result<Json<Value>, AppError> {
    let query = directory_query(&q, params::api_paging(&q)?);
    let page = s.store.directory_page(query).await?;
    Ok(Json(params::list(
        page.data.iter().map(to_json).collect(),
        page.before,
        page.after,
    )))
}

pub async fn get(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let d = s
        .store
        .get_directory(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(to_json(&d)))
}

/// `PATCH /api/v1/directories/{id}`: any of `name`, `organization_id`,
/// `domain`, `type`; `null` clears the optional ones.
pub async fn update(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let change = params::body::<DirectoryBody>(&body)?.change()?;
    if change == DirectoryChange::default() {
        return Err(AppError::bad_request(
            "send any of name, organization_id, domain and type, e.g. {\"organization_id\": \"org_123\"}",
        ));
    }
    let d = s
        .store
        .update_directory(&id, change)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(to_json(&d)))
}

pub async fn delete(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    if s.store.delete_directory(&id).await? {
        s.tokens.clear();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

fn settings_json(id: &str, settings: &DirectorySettings) -> Value {
    json!({
        "directory_id": id,
        "deactivation": settings.deactivation.as_str(),
        "custom_attributes": settings
            .custom_attributes
            .as_ref()
            .map_or(Value::Null, CustomAttributes::to_json),
    })
}

/// `GET /api/v1/directories/{id}/settings`.
pub async fn settings(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    let settings = s.store.settings(&id).await?.ok_or_else(|| not_found(&id))?;
    Ok(Json(settings_json(&id, &settings)))
}

/// Reads a settings body: `deactivation` and/or `custom_attributes`; what
/// it leaves out stays as it is.
fn settings_change(
    reg: &SchemaRegistry,
    body: &Map<String, Value>,
) -> Result<SettingsChange, AppError> {
    let mut change = SettingsChange::default();
    for (key, value) in body {
        match key.as_str() {
            "deactivation" => {
                let mode = value.as_str().and_then(Deactivation::parse).ok_or_else(|| {
                    AppError::bad_request("deactivation must be \"update\" (dsync.user.updated, state inactive) or \"delete\" (dsync.user.deleted)")
                })?;
                change.deactivation = Some(mode);
            }
            "custom_attributes" => {
                let mapping = match value {
                    Value::Null => None,
                    m => Some(
                        CustomAttributes::parse(reg, m).map_err(roster_store::StoreError::from)?,
                    ),
                };
                change.custom_attributes = Some(mapping);
            }
            other => {
                return Err(AppError::bad_request(format!(
                    "unknown setting {other:?}; the settings are \"deactivation\" and \"custom_attributes\""
                )));
            }
        }
    }
    if change.deactivation.is_none() && change.custom_attributes.is_none() {
        return Err(AppError::bad_request(
            "send \"deactivation\" and/or \"custom_attributes\", e.g. {\"custom_attributes\": {\"department\": \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department\"}}",
        ));
    }
    Ok(change)
}

/// `PUT /api/v1/directories/{id}/settings {"deactivation"?, "custom_attributes"?}`.
pub async fn set_settings(
    State(s): State<AppState>,
    _a: AdminAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let body = params::body::<Map<String, Value>>(&body)?;
    let change = settings_change(&s.reg, &body)?;
    let settings = s
        .store
        .update_settings(&id, change)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(settings_json(&id, &settings)))
}
