//! Directories: `/api/v1/directories`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use roster_scim::schema::SchemaRegistry;
use roster_store::directory_api::{DirectoryQuery, Paging};
use roster_store::events::CustomAttributes;
use roster_store::google::{self, GoogleSource};
use roster_store::{
    Deactivation, Directory, DirectoryAttrs, DirectoryChange, DirectorySettings, GENERIC_PROVIDER,
    GSUITE_PROVIDER, PROVIDER_TYPES, SettingsChange,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::params::{self, ts};
use super::{AdminAuth, AppError};
use crate::request::QueryParams;
use crate::state::AppState;

const MAX_NAME: usize = 200;

/// A change of a directory's attributes: any of them; `null` clears an
/// optional one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectoryBody {
    /// 1 to 200 characters.
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    organization_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    domain: Option<Option<String>>,
    /// A provider type: `okta scim v2.0`, `azure scim v2.0`, ….
    #[serde(rename = "type", default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    provider: Option<Option<String>>,
}

/// Tells a key sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

const MAX_ATTR: usize = 200;

pub(crate) fn check_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(AppError::bad_request(format!(
            "name must be 1 to {MAX_NAME} characters, e.g. {{\"name\": \"Acme Okta\"}}"
        )));
    }
    Ok(name.to_owned())
}

/// An optional attribute: trimmed, empty meaning none, within [`MAX_ATTR`].
pub(crate) fn check_attr(key: &str, v: Option<String>) -> Result<Option<String>, AppError> {
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

/// A directory as `/api/v1` shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = Directory)]
pub struct ApiDirectory {
    /// Always `directory`.
    #[schema(example = "directory")]
    object: &'static str,
    id: String,
    name: String,
    organization_id: Option<String>,
    domain: Option<String>,
    /// Which provider feeds it: `okta scim v2.0`, …, `gsuite directory`.
    #[serde(rename = "type")]
    kind: String,
    created_at: String,
    updated_at: String,
    /// Where its identity provider sends SCIM requests.
    scim_base_path: String,
    /// `scim` (an identity provider pushes) or `google-workspace` (Roster pulls).
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'static str>,
    /// A Google Workspace directory's poll settings and state.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::openapi::objects::GoogleSource>)]
    google: Option<Value>,
    /// On create: the directory's first SCIM token, shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_id: Option<String>,
}

pub fn to_json(d: &Directory) -> ApiDirectory {
    ApiDirectory {
        object: "directory",
        id: d.id.clone(),
        name: d.name.clone(),
        organization_id: d.organization_id.clone(),
        domain: d.domain.clone(),
        kind: d
            .provider
            .clone()
            .unwrap_or_else(|| GENERIC_PROVIDER.to_owned()),
        created_at: ts(d.created_at),
        updated_at: ts(d.updated_at),
        scim_base_path: format!("/scim/v2/{}", d.id),
        provider: None,
        google: None,
        token: None,
        token_id: None,
    }
}

pub fn not_found(id: &str) -> AppError {
    AppError::not_found(format!("no directory {id}"))
}

/// The body of `POST /api/v1/directories`: a name, the directory's
/// organization, domain and type, and for a Google Workspace directory its
/// provider, key file, admin and customer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// 1 to 200 characters; required.
    name: Option<String>,
    organization_id: Option<String>,
    /// The customer's domain; for a Google Workspace directory, only the
    /// users and groups of this domain.
    domain: Option<String>,
    /// A provider type: `okta scim v2.0`, `azure scim v2.0`, ….
    #[serde(rename = "type")]
    provider_type: Option<String>,
    /// `scim` (the default) or `google-workspace`.
    provider: Option<String>,
    /// The service-account key file: its JSON object, or its text.
    #[schema(value_type = Option<Object>)]
    credentials: Option<Value>,
    admin_email: Option<String>,
    customer: Option<String>,
    /// How often a Google Workspace directory is polled.
    poll_interval_secs: Option<i64>,
}

/// `POST /api/v1/directories {"name", "organization_id"?, "domain"?, "type"?}`,
/// or a Google Workspace directory with `"provider": "google-workspace"`.
#[utoipa::path(
    post,
    path = "/api/v1/directories",
    tag = "directories",
    request_body = CreateBody,
    responses(
        (status = 201, description = "The directory; a SCIM one with its first token", body = ApiDirectory),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn create(
    State(s): State<AppState>,
    a: AdminAuth,
    body: Bytes,
) -> Result<(StatusCode, Json<ApiDirectory>), AppError> {
    a.require_write()?;
    // A limited key could not see the directory it made.
    a.require_unlimited()?;
    let body = params::body::<CreateBody>(&body)?;
    let name = check_name(body.name.as_deref().unwrap_or_default())?;
    match body.provider.as_deref() {
        None | Some(google::SCIM) => {
            if body.credentials.is_some()
                || body.admin_email.is_some()
                || body.customer.is_some()
                || body.poll_interval_secs.is_some()
            {
                return Err(AppError::bad_request(
                    "credentials, admin_email, customer and poll_interval_secs are for \"provider\": \"google-workspace\"",
                ));
            }
        }
        Some(google::GOOGLE_WORKSPACE) => {
            if body.organization_id.is_some() || body.provider_type.is_some() {
                return Err(AppError::bad_request(
                    "organization_id and type are set on a Google Workspace directory with PATCH /api/v1/directories/{id}",
                ));
            }
            let credentials = match body.credentials {
                Some(Value::String(text)) => text,
                Some(v @ Value::Object(_)) => v.to_string(),
                _ => {
                    return Err(AppError::bad_request(
                        "credentials must be the service-account key file (its JSON object)",
                    ));
                }
            };
            let new = crate::google::new_directory(
                &name,
                &credentials,
                body.admin_email.as_deref().unwrap_or_default(),
                body.customer.as_deref().unwrap_or("my_customer"),
                body.domain.as_deref(),
                body.poll_interval_secs,
            )
            .map_err(AppError::bad_request)?;
            let (d, source) = s.store.create_google_directory(&a.actor(), new).await?;
            return Ok((StatusCode::CREATED, Json(with_source(&d, Some(&source)))));
        }
        Some(other) => {
            return Err(AppError::bad_request(format!(
                "unknown provider {other:?}; use \"scim\" (the default) or \"google-workspace\""
            )));
        }
    }
    let attrs = DirectoryAttrs {
        organization_id: check_attr("organization_id", body.organization_id)?,
        domain: check_attr("domain", body.domain)?,
        provider: check_provider(body.provider_type)?,
    };
    let (d, info, token) = s
        .store
        .create_directory_with_token(&a.actor(), &name, attrs)
        .await?;
    let mut out = with_source(&d, None);
    // The plaintext token is shown this once; only its digest is stored.
    out.token = Some(token);
    out.token_id = Some(info.id);
    Ok((StatusCode::CREATED, Json(out)))
}

/// The filters `/api/v1/directories` and `/directories` share, within the
/// directories a key sees (`only`; `None`: all).
pub fn directory_query(q: &QueryParams, paging: Paging, only: Option<&[String]>) -> DirectoryQuery {
    let text = |name| params::text(q, name).map(str::to_owned);
    DirectoryQuery {
        organization_id: text("organization_id"),
        domain: text("domain"),
        search: text("search"),
        only: only.map(<[String]>::to_vec),
        paging,
    }
}

/// A directory with its provider and, for a Google directory, its poll state.
fn with_source(d: &Directory, source: Option<&GoogleSource>) -> ApiDirectory {
    let mut out = to_json(d);
    match source {
        Some(src) => {
            out.provider = Some(google::GOOGLE_WORKSPACE);
            out.google = Some(crate::google::source_json(src));
        }
        None => out.provider = Some(google::SCIM),
    }
    out
}

/// `POST /api/v1/directories/{id}/sync`: poll a Google directory now.
#[utoipa::path(
    post,
    path = "/api/v1/directories/{id}/sync",
    tag = "directories",
    params(("id" = String, Path, description = "The directory's id")),
    responses(
        (status = 202, description = "A poll is due now", body = crate::openapi::objects::SyncRequested),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn sync(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    a.require_directory(&id)?;
    a.require_write()?;
    if s.store.request_google_sync(&id).await? {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"directory_id": id, "sync": "requested"})),
        ));
    }
    s.store
        .get_directory(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Err(AppError::bad_request(format!(
        "directory {id} receives SCIM from its identity provider; only google-workspace directories are synced"
    )))
}

/// The directories the key sees.
#[utoipa::path(
    get,
    path = "/api/v1/directories",
    tag = "directories",
    params(
        ("organization_id" = Option<String>, Query, description = "Only this organization's directories"),
        ("domain" = Option<String>, Query, description = "Only directories of this domain"),
        ("search" = Option<String>, Query, description = "Only directories whose name contains this, case-insensitive"),
        crate::openapi::params::ApiPage,
    ),
    responses(
        (status = 200, description = "A page of directories", body = params::List<ApiDirectory>),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn list(
    State(s): State<AppState>,
    a: AdminAuth,
    q: QueryParams,
) -> Result<Json<params::List<ApiDirectory>>, AppError> {
    let query = directory_query(&q, params::api_paging(&q)?, a.directories());
    let page = s.store.directory_page(query).await?;
    let sources: std::collections::HashMap<String, GoogleSource> = s
        .store
        .google_sources()
        .await?
        .into_iter()
        .map(|g| (g.directory_id.clone(), g))
        .collect();
    Ok(Json(params::list(
        page.data
            .iter()
            .map(|d| with_source(d, sources.get(&d.id)))
            .collect(),
        page.before,
        page.after,
    )))
}

#[utoipa::path(
    get,
    path = "/api/v1/directories/{id}",
    tag = "directories",
    params(("id" = String, Path, description = "The directory's id")),
    responses(
        (status = 200, description = "The directory", body = ApiDirectory),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn get(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<ApiDirectory>, AppError> {
    a.require_directory(&id)?;
    let d = s
        .store
        .get_directory(&id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let source = s.store.google_source(&id).await?;
    Ok(Json(with_source(&d, source.as_ref())))
}

/// `PATCH /api/v1/directories/{id}`: any of `name`, `organization_id`,
/// `domain`, `type`; `null` clears the optional ones.
#[utoipa::path(
    patch,
    path = "/api/v1/directories/{id}",
    tag = "directories",
    params(("id" = String, Path, description = "The directory's id")),
    request_body = DirectoryBody,
    responses(
        (status = 200, description = "The directory as changed", body = ApiDirectory),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn update(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ApiDirectory>, AppError> {
    a.require_directory(&id)?;
    a.require_write()?;
    let change = params::body::<DirectoryBody>(&body)?.change()?;
    if change == DirectoryChange::default() {
        return Err(AppError::bad_request(
            "send any of name, organization_id, domain and type, e.g. {\"organization_id\": \"org_123\"}",
        ));
    }
    // A pulled directory's type says that Roster pulls it; it is not a
    // SCIM provider's to take.
    if change.provider.is_some() && s.store.google_source(&id).await?.is_some() {
        return Err(AppError::bad_request(format!(
            "directory {id} is pulled from Google Workspace; its type stays {GSUITE_PROVIDER:?}"
        )));
    }
    let d = s
        .store
        .update_directory(&a.actor(), &id, change)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(to_json(&d)))
}

/// Deletes the directory, its users, groups and tokens (`dsync.deleted`).
#[utoipa::path(
    delete,
    path = "/api/v1/directories/{id}",
    tag = "directories",
    params(("id" = String, Path, description = "The directory's id")),
    responses(
        (status = 204, description = "Deleted"),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn delete(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    a.require_directory(&id)?;
    a.require_write()?;
    if crate::token_ops::delete_directory(&s, &a.actor(), &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

/// A directory's settings; a Google Workspace directory's include its poll interval.
fn settings_json(id: &str, settings: &DirectorySettings, source: Option<&GoogleSource>) -> Value {
    let mut out = json!({
        "directory_id": id,
        "deactivation": settings.deactivation.as_str(),
        "custom_attributes": settings
            .custom_attributes
            .as_ref()
            .map_or(Value::Null, CustomAttributes::to_json),
    });
    if let Some(src) = source {
        out["poll_interval_secs"] = json!(src.interval_secs);
    }
    out
}

/// `GET /api/v1/directories/{id}/settings`.
#[utoipa::path(
    get,
    path = "/api/v1/directories/{id}/settings",
    tag = "directories",
    params(("id" = String, Path, description = "The directory's id")),
    responses(
        (status = 200, description = "The settings", body = crate::openapi::objects::Settings),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn settings(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
    a.require_directory(&id)?;
    let settings = s.store.settings(&id).await?.ok_or_else(|| not_found(&id))?;
    let source = s.store.google_source(&id).await?;
    Ok(Json(settings_json(&id, &settings, source.as_ref())))
}

/// A change of settings: either or both; what is left out stays as it is.
#[derive(ToSchema)]
#[allow(dead_code)] // Read as a map by `settings_change`, which names each key.
pub struct SettingsBody {
    /// `update` or `delete`: what a deactivated user becomes.
    deactivation: Option<String>,
    /// `{key: SCIM attribute path}`; `null` restores the default mapping.
    #[schema(value_type = Option<Object>)]
    custom_attributes: Option<Value>,
}

/// Reads a settings body: `deactivation` and/or `custom_attributes`; what
/// it leaves out stays as it is.
pub(crate) fn settings_change(
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
            "poll_interval_secs" => {
                let secs = value.as_i64().ok_or_else(|| {
                    AppError::bad_request("poll_interval_secs must be a whole number of seconds")
                })?;
                change.poll_interval_secs = Some(
                    roster_store::google::check_interval(secs).map_err(AppError::bad_request)?,
                );
            }
            other => {
                return Err(AppError::bad_request(format!(
                    "unknown setting {other:?}; the settings are \"deactivation\", \"custom_attributes\" and, for a google-workspace directory, \"poll_interval_secs\""
                )));
            }
        }
    }
    if change.deactivation.is_none()
        && change.custom_attributes.is_none()
        && change.poll_interval_secs.is_none()
    {
        return Err(AppError::bad_request(
            "send \"deactivation\", \"custom_attributes\" and/or \"poll_interval_secs\", e.g. {\"custom_attributes\": {\"department\": \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department\"}}",
        ));
    }
    Ok(change)
}

/// `PUT /api/v1/directories/{id}/settings {"deactivation"?, "custom_attributes"?, "poll_interval_secs"?}`.
#[utoipa::path(
    put,
    path = "/api/v1/directories/{id}/settings",
    tag = "directories",
    params(("id" = String, Path, description = "The directory's id")),
    request_body = SettingsBody,
    responses(
        (status = 200, description = "The settings as changed", body = crate::openapi::objects::Settings),
        crate::openapi::objects::AppErrors,
    ),
)]
pub async fn set_settings(
    State(s): State<AppState>,
    a: AdminAuth,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    a.require_directory(&id)?;
    a.require_write()?;
    let body = params::body::<Map<String, Value>>(&body)?;
    let change = settings_change(&s.reg, &body)?;
    let settings = s
        .store
        .update_settings(&a.actor(), &id, change)
        .await?
        .ok_or_else(|| not_found(&id))?;
    let source = s.store.google_source(&id).await?;
    Ok(Json(settings_json(&id, &settings, source.as_ref())))
}
