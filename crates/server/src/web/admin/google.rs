//! Google Workspace directories on the dashboard: creating one from a
//! service-account key file (uploaded or pasted), "Sync now" and replacing
//! the key. Each is the check and store call `/api/v1` makes
//! ([`crate::google::new_directory`], the audited store methods); the key is
//! stored sealed and never shown again, not even on a form sent back with an
//! error.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use roster_store::google::{DEFAULT_INTERVAL_SECS, MAX_INTERVAL_SECS, MIN_INTERVAL_SECS};

use super::directory::{render, visible};
use super::{AdminSession, redirect};
use crate::api::directories::check_name;
use crate::error::PageError;
use crate::state::AppState;
use crate::web::csrf::{NoFields, Posted};
use crate::web::upload::{MAX_FILE, Uploaded};
use crate::web::{Layout, page};

/// What the operator typed, sent back with an error (never the key).
#[derive(Default)]
pub struct Typed {
    pub name: String,
    pub admin_email: String,
    pub customer: String,
    pub domain: String,
    pub interval: String,
}

#[derive(Template)]
#[template(path = "admin/google_new.html")]
struct NewForm {
    layout: Layout,
    typed: Typed,
    error: Option<String>,
    max_kib: usize,
    min_interval: i64,
    max_interval: i64,
}

fn form(a: &AdminSession, status: StatusCode, typed: Typed, error: Option<String>) -> Response {
    page(
        status,
        &NewForm {
            layout: a.layout("directories"),
            typed,
            error,
            max_kib: MAX_FILE / 1024,
            min_interval: MIN_INTERVAL_SECS,
            max_interval: MAX_INTERVAL_SECS,
        },
    )
}

/// `GET /admin/google-directories`: the form.
pub async fn new_form(a: AdminSession) -> Result<Response, PageError> {
    a.auth.require_write()?;
    a.auth.require_unlimited()?;
    let typed = Typed {
        customer: "my_customer".to_owned(),
        interval: DEFAULT_INTERVAL_SECS.to_string(),
        ..Typed::default()
    };
    Ok(form(&a, StatusCode::OK, typed, None))
}

/// The key file of a form: the uploaded file (`key_file`), else the pasted
/// JSON (`key_json`).
fn key_text(u: &Uploaded<AdminSession>) -> Result<String, String> {
    u.file_or_pasted("key_file", "key_json")?.ok_or_else(|| {
        "choose the service-account key file (JSON), or paste its contents".to_owned()
    })
}

/// An optional whole number of seconds as typed.
fn interval(text: &str) -> Result<Option<i64>, String> {
    match text.trim() {
        "" => Ok(None),
        t => t
            .parse::<i64>()
            .map(Some)
            .map_err(|_| format!("the poll interval must be a whole number of seconds, not {t:?}")),
    }
}

/// `POST /admin/google-directories`: creates the directory; its first poll
/// starts within a second.
pub async fn create(
    State(state): State<AppState>,
    u: Uploaded<AdminSession>,
) -> Result<Response, PageError> {
    let a = &u.session.auth;
    a.require_write()?;
    a.require_unlimited()?;
    let typed = Typed {
        name: u.field("name").to_owned(),
        admin_email: u.field("admin_email").to_owned(),
        customer: u.field("customer").to_owned(),
        domain: u.field("domain").to_owned(),
        interval: u.field("poll_interval_secs").to_owned(),
    };
    let checked = check_name(&typed.name)
        .map_err(|e| PageError::from(e).message().to_owned())
        .and_then(|name| {
            let customer = match typed.customer.trim() {
                "" => "my_customer",
                c => c,
            };
            crate::google::new_directory(
                &name,
                &key_text(&u)?,
                &typed.admin_email,
                customer,
                Some(typed.domain.as_str()),
                interval(&typed.interval)?,
            )
        });
    let new = match checked {
        Ok(new) => new,
        Err(e) => {
            return Ok(form(
                &u.session,
                StatusCode::BAD_REQUEST,
                typed,
                Some(format!("Nothing was created: {e}.")),
            ));
        }
    };
    let (d, _) = state.store.create_google_directory(&a.actor(), new).await?;
    Ok(redirect(&format!(
        "/admin/directories/{}?done=google",
        d.id
    )))
}

/// `POST /admin/directories/{id}/sync`: poll now (what `/api/v1/directories/{id}/sync` does).
pub async fn sync(
    State(state): State<AppState>,
    Path(id): Path<String>,
    p: Posted<AdminSession, NoFields>,
) -> Result<Response, PageError> {
    let a = &p.session;
    a.auth.require_write()?;
    visible(&state, a, &id).await?;
    if !state.store.request_google_sync(&id).await? {
        return Err(PageError::bad_request(format!(
            "directory {id} receives SCIM from its identity provider; only Google Workspace directories are synced"
        )));
    }
    Ok(redirect(&format!("/admin/directories/{id}?done=sync")))
}

/// `POST /admin/directories/{id}/google-key`: a new key file; the next poll
/// is due at once, so the page soon says whether Google takes it.
pub async fn replace_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    u: Uploaded<AdminSession>,
) -> Result<Response, PageError> {
    let a = &u.session;
    a.auth.require_write()?;
    visible(&state, a, &id).await?;
    let checked = key_text(&u).and_then(|text| {
        let account = crate::google::account::ServiceAccount::parse(&text)?;
        Ok((text, account.client_id))
    });
    let (text, client_id) = match checked {
        Ok(k) => k,
        Err(e) => {
            return render(
                &state,
                a,
                &headers,
                &id,
                StatusCode::BAD_REQUEST,
                None,
                Some(format!("The key was not replaced: {e}.")),
            )
            .await;
        }
    };
    if !state
        .store
        .replace_google_credentials(&a.auth.actor(), &id, text, client_id)
        .await?
    {
        return Err(PageError::bad_request(format!(
            "directory {id} is not read from Google Workspace; it has no key"
        )));
    }
    Ok(redirect(&format!("/admin/directories/{id}?done=key")))
}
