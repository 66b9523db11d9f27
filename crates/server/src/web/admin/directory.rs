//! A directory's page: its SCIM base URL, tokens (issue, rotate with an
//! overlap, revoke), settings, rename and delete. Each action is the store
//! call `/api/v1` makes, audited with the session's key as actor.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use roster_store::events::CustomAttributes;
use roster_store::{Directory, DirectoryChange, GENERIC_PROVIDER, TokenInfo};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{AdminSession, redirect};
use crate::api::directories::{check_name, settings_change};
use crate::api::params::ts;
use crate::api::tokens::{DEFAULT_OVERLAP_SECS, MAX_OVERLAP_SECS};
use crate::error::PageError;
use crate::request::QueryParams;
use crate::state::AppState;
use crate::web::csrf::{NoFields, Posted};
use crate::web::{Layout, page};

/// The directory, if the session's key sees it (else 404, as `/api/v1` answers).
pub async fn visible(state: &AppState, a: &AdminSession, id: &str) -> Result<Directory, PageError> {
    a.auth.require_directory(id)?;
    state
        .store
        .get_directory(id)
        .await?
        .ok_or_else(|| PageError::not_found(format!("no directory {id}")))
}

pub struct TokenRow {
    pub id: String,
    pub created: String,
    pub status: String,
    pub live: bool,
}

fn token_row(t: &TokenInfo, now: i64) -> TokenRow {
    let (status, live) = match (t.revoked_at, t.expires_at) {
        (Some(at), _) => (format!("revoked {}", ts(at)), false),
        (None, Some(at)) if at <= now => (format!("expired {}", ts(at)), false),
        (None, Some(at)) => (format!("works until {} (rotated)", ts(at)), true),
        (None, None) => ("live".to_owned(), true),
    };
    TokenRow {
        id: t.id.clone(),
        created: ts(t.created_at),
        status,
        live,
    }
}

/// A Google Workspace directory's source and poll, as its page shows them.
pub struct GoogleView {
    pub admin_email: String,
    pub customer: String,
    pub domain: Option<String>,
    pub client_id: Option<String>,
    pub interval_secs: i64,
    pub state: &'static str,
    pub headline: String,
    pub explanation: Option<String>,
    pub fix: Option<String>,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub polling: bool,
    pub sync_requested: bool,
    pub users_seen: Option<i64>,
    pub groups_seen: Option<i64>,
    pub changes: Option<i64>,
}

impl GoogleView {
    fn of(s: &roster_store::google::GoogleSource, now: i64) -> Self {
        let status = crate::google::status::PollStatus::of(s, now);
        GoogleView {
            admin_email: s.admin_email.clone(),
            customer: s.customer.clone(),
            domain: s.domain.clone(),
            client_id: s.client_id.clone(),
            interval_secs: s.interval_secs,
            state: status.code(),
            headline: status.headline(),
            explanation: status.explanation().map(str::to_owned),
            fix: status.fix(s.client_id.as_deref(), &s.admin_email),
            started: s.last_poll_started_at.map(ts),
            finished: s.last_poll_at.map(ts),
            polling: s
                .last_poll_started_at
                .is_some_and(|st| s.last_poll_at.is_none_or(|f| st > f)),
            sync_requested: s.next_poll_at == 0,
            users_seen: s.users_seen,
            groups_seen: s.groups_seen,
            changes: s.changes_applied,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/directory.html")]
struct DirectoryPage {
    /// Set for a Google Workspace directory, which takes no SCIM.
    google: Option<GoogleView>,
    layout: Layout,
    d: Directory,
    provider: String,
    base_url: String,
    users: i64,
    groups: i64,
    tokens: Vec<TokenRow>,
    deactivation: &'static str,
    custom_attributes: String,
    can_write: bool,
    notice: Option<&'static str>,
    error: Option<String>,
    default_overlap_hours: i64,
    /// The connection status in one line; links to the request log.
    connection: String,
}

/// What a redirect after an action says on the page it lands on.
fn notice(q: &QueryParams) -> Option<&'static str> {
    Some(match q.get("done")? {
        "renamed" => "The directory was renamed.",
        "settings" => "The settings were saved.",
        "revoked" => "The token was revoked; it stopped working at once.",
        "google" => {
            "The Google Workspace directory was created; its first poll starts within a second. The key is stored and will not be shown again."
        }
        "sync" => "A poll was asked for; it starts within a second.",
        "key" => "The key was replaced; a poll with it starts within a second.",
        _ => return None,
    })
}

pub(super) async fn render(
    state: &AppState,
    a: &AdminSession,
    headers: &HeaderMap,
    id: &str,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let d = visible(state, a, id).await?;
    let counts = state
        .store
        .directory_counts(std::slice::from_ref(&d.id))
        .await?
        .remove(&d.id)
        .unwrap_or_default();
    let now = roster_store::now_ms();
    let tokens = state
        .store
        .list_tokens(&d.id)
        .await?
        .iter()
        .rev()
        .map(|t| token_row(t, now))
        .collect();
    let settings = state
        .store
        .settings(&d.id)
        .await?
        .ok_or_else(|| PageError::not_found(format!("no directory {id}")))?;
    let connection = crate::connection::status(state.store.as_ref(), &d.id)
        .await?
        .map(|(status, _)| status.headline())
        .unwrap_or_default();
    let google = state
        .store
        .google_source(&d.id)
        .await?
        .map(|s| GoogleView::of(&s, now));
    let custom_attributes = settings
        .custom_attributes
        .as_ref()
        .map(CustomAttributes::to_json)
        .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
        .unwrap_or_default();
    Ok(page(
        status,
        &DirectoryPage {
            google,
            layout: a.layout("directories"),
            provider: d
                .provider
                .clone()
                .unwrap_or_else(|| GENERIC_PROVIDER.to_owned()),
            base_url: crate::render::base_url(state, headers, &d.id),
            users: counts.active_users + counts.inactive_users,
            groups: counts.groups,
            tokens,
            deactivation: settings.deactivation.as_str(),
            custom_attributes,
            can_write: !a.auth.key.scope.read_only,
            notice,
            error,
            default_overlap_hours: DEFAULT_OVERLAP_SECS / 3600,
            connection,
            d,
        },
    ))
}

/// `GET /admin/directories/{id}`.
pub async fn show(
    State(state): State<AppState>,
    a: AdminSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: QueryParams,
) -> Result<Response, PageError> {
    render(&state, &a, &headers, &id, StatusCode::OK, notice(&q), None).await
}

#[derive(Deserialize)]
pub struct RenameForm {
    name: String,
}

/// `POST /admin/directories/{id}/rename`.
pub async fn rename(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<AdminSession, RenameForm>,
) -> Result<Response, PageError> {
    let a = &p.session.auth;
    a.require_directory(&id)?;
    a.require_write()?;
    let change = DirectoryChange {
        name: Some(check_name(&p.form.name)?),
        ..DirectoryChange::default()
    };
    state
        .store
        .update_directory(&a.actor(), &id, change)
        .await?
        .ok_or_else(|| PageError::not_found(format!("no directory {id}")))?;
    Ok(redirect(&format!("/admin/directories/{id}?done=renamed")))
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /admin/directories/{id}/delete`: only with the name typed out.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Posted<AdminSession, DeleteForm>,
) -> Result<Response, PageError> {
    let a = &p.session;
    a.auth.require_write()?;
    let d = visible(&state, a, &id).await?;
    if p.form.confirm.trim() != d.name {
        return render(
            &state,
            a,
            &headers,
            &id,
            StatusCode::BAD_REQUEST,
            None,
            Some(format!(
                "Nothing was deleted: type the directory's name, {}, exactly to delete it.",
                d.name
            )),
        )
        .await;
    }
    crate::token_ops::delete_directory(&state, &a.auth.actor(), &id).await?;
    Ok(redirect("/admin?done=deleted"))
}

#[derive(Deserialize)]
pub struct SettingsForm {
    deactivation: String,
    #[serde(default)]
    custom_attributes: String,
    /// Only on a Google Workspace directory's form.
    poll_interval_secs: Option<String>,
}

/// `POST /admin/directories/{id}/settings`: checked by the same code as
/// `PUT /api/v1/directories/{id}/settings`.
pub async fn settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Posted<AdminSession, SettingsForm>,
) -> Result<Response, PageError> {
    let a = &p.session;
    a.auth.require_directory(&id)?;
    a.auth.require_write()?;
    let mut body = Map::new();
    body.insert(
        "deactivation".into(),
        Value::String(p.form.deactivation.clone()),
    );
    let text = p.form.custom_attributes.trim();
    let mapping = if text.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_str::<Value>(text)
    };
    if let Some(secs) = p.form.poll_interval_secs.as_deref() {
        let secs = secs.trim();
        body.insert(
            "poll_interval_secs".into(),
            secs.parse::<i64>()
                .map_or_else(|_| Value::String(secs.to_owned()), Value::from),
        );
    }
    let change = match mapping {
        Ok(m) => {
            body.insert("custom_attributes".into(), m);
            settings_change(&state.reg, &body).map_err(PageError::from)
        }
        Err(e) => Err(PageError::bad_request(format!(
            "the custom-attribute mapping is not JSON: {e}"
        ))),
    };
    let change = match change {
        Ok(c) => c,
        Err(e) => {
            let message = format!("Nothing was saved: {}", e.message());
            return render(
                &state,
                a,
                &headers,
                &id,
                StatusCode::BAD_REQUEST,
                None,
                Some(message),
            )
            .await;
        }
    };
    state
        .store
        .update_settings(&a.auth.actor(), &id, change)
        .await?
        .ok_or_else(|| PageError::not_found(format!("no directory {id}")))?;
    Ok(redirect(&format!("/admin/directories/{id}?done=settings")))
}

#[derive(Template)]
#[template(path = "admin/token.html")]
struct TokenIssued {
    layout: Layout,
    id: String,
    name: String,
    base_url: String,
    token: String,
    old: Option<String>,
}

/// `POST /admin/directories/{id}/tokens`: a new token, shown once.
pub async fn issue_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    p: Posted<AdminSession, NoFields>,
) -> Result<Response, PageError> {
    let a = &p.session;
    a.auth.require_write()?;
    let d = visible(&state, a, &id).await?;
    let (_, token) = state.store.issue_token(&a.auth.actor(), &id).await?;
    Ok(page(
        StatusCode::CREATED,
        &TokenIssued {
            layout: a.layout("directories"),
            base_url: crate::render::base_url(&state, &headers, &id),
            id,
            name: d.name,
            token,
            old: None,
        },
    ))
}

#[derive(Deserialize)]
pub struct RotateForm {
    overlap_hours: Option<String>,
}

/// `POST /admin/directories/{id}/tokens/{token}/rotate`: a successor,
/// shown once; the old token works for the overlap.
pub async fn rotate_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, token_id)): Path<(String, String)>,
    p: Posted<AdminSession, RotateForm>,
) -> Result<Response, PageError> {
    let a = &p.session;
    a.auth.require_write()?;
    let d = visible(&state, a, &id).await?;
    let hours = match p.form.overlap_hours.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_OVERLAP_SECS / 3600,
        Some(h) => h.parse::<i64>().map_err(|_| {
            PageError::bad_request(format!(
                "the overlap must be a whole number of hours, not {h:?}"
            ))
        })?,
    };
    let overlap = hours.saturating_mul(3600);
    if !(0..=MAX_OVERLAP_SECS).contains(&overlap) {
        return Err(PageError::bad_request(format!(
            "the overlap must be 0 to {} hours",
            MAX_OVERLAP_SECS / 3600
        )));
    }
    let r = crate::token_ops::rotate(&state, &a.auth.actor(), Some(&id), &token_id, overlap)
        .await?
        .ok_or_else(|| {
            PageError::not_found(format!("no live token {token_id} in directory {id}"))
        })?;
    let until = r.old.expires_at.map(ts).unwrap_or_default();
    Ok(page(
        StatusCode::CREATED,
        &TokenIssued {
            layout: a.layout("directories"),
            base_url: crate::render::base_url(&state, &headers, &id),
            id,
            name: d.name,
            token: r.token,
            old: Some(until),
        },
    ))
}

/// `POST /admin/directories/{id}/tokens/{token}/revoke`.
pub async fn revoke_token(
    State(state): State<AppState>,
    Path((id, token_id)): Path<(String, String)>,
    p: Posted<AdminSession, NoFields>,
) -> Result<Response, PageError> {
    let a = &p.session.auth;
    a.require_directory(&id)?;
    a.require_write()?;
    if !crate::token_ops::revoke(&state, &a.actor(), &id, &token_id).await? {
        return Err(PageError::not_found(format!(
            "no live token {token_id} in directory {id}"
        )));
    }
    Ok(redirect(&format!("/admin/directories/{id}?done=revoked")))
}
