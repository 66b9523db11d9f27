//! Admin API keys: list, create (shown once), revoke. Like
//! `/api/v1/admin_keys`, only a full, unlimited key manages keys.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{AdminSession, redirect};
use crate::api::admin_keys::{NewKey, mint};
use crate::api::params::ts;
use crate::error::PageError;
use crate::request::QueryParams;
use crate::state::AppState;
use crate::web::csrf::{NoFields, Posted};
use crate::web::{Layout, page};

pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub access: String,
    pub directories: String,
    pub created: String,
    pub revoked: Option<String>,
    pub signed_in_with: bool,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    layout: Layout,
    rows: Vec<KeyRow>,
    notice: Option<&'static str>,
}

/// `GET /admin/keys`.
pub async fn list(
    State(state): State<AppState>,
    a: AdminSession,
    q: QueryParams,
) -> Result<Response, PageError> {
    a.auth.require_full()?;
    let rows = state
        .store
        .list_admin_keys()
        .await?
        .into_iter()
        .rev()
        .map(|k| KeyRow {
            signed_in_with: k.id == a.auth.key.id,
            access: k.scope.access().to_owned(),
            directories: k
                .scope
                .directories
                .as_ref()
                .map_or_else(|| "all".to_owned(), |d| d.join(", ")),
            created: ts(k.created_at),
            revoked: k.revoked_at.map(ts),
            id: k.id,
            name: k.name,
        })
        .collect();
    Ok(page(
        StatusCode::OK,
        &KeysPage {
            layout: a.layout("keys"),
            rows,
            notice: match q.get("done") {
                Some("revoked") => Some("The key was revoked; it stopped working at once."),
                _ => None,
            },
        },
    ))
}

#[derive(Deserialize)]
pub struct CreateForm {
    name: String,
    #[serde(default)]
    access: String,
    #[serde(default)]
    directories: String,
}

#[derive(Template)]
#[template(path = "admin/key_created.html")]
struct Created {
    layout: Layout,
    name: String,
    key: String,
}

/// `POST /admin/keys`: `access` is `full` or `read-only`; `directories`
/// a comma- or space-separated list of ids, empty for all.
pub async fn create(
    State(state): State<AppState>,
    p: Posted<AdminSession, CreateForm>,
) -> Result<Response, PageError> {
    let read_only = match p.form.access.as_str() {
        "" | "full" => false,
        "read-only" => true,
        other => {
            return Err(PageError::bad_request(format!(
                "access must be full or read-only, not {other:?}"
            )));
        }
    };
    let dirs: Vec<String> = p
        .form
        .directories
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect();
    let new = NewKey {
        name: Some(p.form.name.clone()),
        read_only,
        directories: (!dirs.is_empty()).then_some(dirs),
    };
    let (info, key) = mint(&state, &p.session.auth, new).await?;
    Ok(page(
        StatusCode::CREATED,
        &Created {
            layout: p.session.layout("keys"),
            name: info.name,
            key,
        },
    ))
}

/// `POST /admin/keys/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<AdminSession, NoFields>,
) -> Result<Response, PageError> {
    let a = &p.session.auth;
    a.require_full()?;
    state
        .store
        .revoke_admin_key(&a.actor(), &id)
        .await?
        .ok_or_else(|| PageError::not_found(format!("no live admin key {id}")))?;
    Ok(redirect("/admin/keys?done=revoked"))
}
