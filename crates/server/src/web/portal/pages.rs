//! The portal's pages: the directory and its connection status, a
//! provider's setup steps with the SCIM base URL and a token, and the live
//! status fragment the page's script refreshes.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roster_domain::requests::ConnectionStatus;
use serde::Deserialize;

use super::{Brand, PortalSession};
use crate::error::PageError;
use crate::google::status::PollStatus;
use crate::setup_steps::{self, PROVIDERS, Provider};
use crate::state::AppState;
use crate::web::csrf::Posted;
use crate::web::session::{self, PORTAL};
use crate::web::upload::{MAX_FILE, Uploaded};
use crate::web::{Layout, page};
use roster_store::google::GoogleSource;

/// How long a rotated token keeps working, so the provider does not fail
/// between the rotation and the paste of the new one.
const ROTATE_OVERLAP_SECS: i64 = 3600;
/// Seconds between the status fragment's refreshes.
const REFRESH_SECS: u32 = 3;

/// The connection status as the page shows it.
pub struct StatusView {
    pub state: &'static str,
    pub headline: String,
    pub explanation: Option<String>,
    pub fix: Option<String>,
}

impl StatusView {
    fn of(status: &ConnectionStatus) -> Self {
        let (explanation, fix) = match status {
            ConnectionStatus::Failing { failure, .. } => {
                (Some(failure.explanation()), Some(failure.fix().to_owned()))
            }
            _ => (None, None),
        };
        StatusView {
            state: status.code(),
            headline: status.headline(),
            explanation,
            fix,
        }
    }

    /// A Google Workspace directory's polls, in the same shape.
    fn of_poll(source: &GoogleSource) -> Self {
        let status = PollStatus::of(source, roster_store::now_ms());
        StatusView {
            state: status.code(),
            headline: status.headline(),
            explanation: status.explanation().map(str::to_owned),
            fix: status.fix(source.client_id.as_deref(), &source.admin_email),
        }
    }
}

async fn status_view(s: &AppState, directory: &str) -> Result<StatusView, PageError> {
    if let Some(source) = s.store.google_source(directory).await? {
        return Ok(StatusView::of_poll(&source));
    }
    let (status, _) = crate::connection::status(s.store.as_ref(), directory)
        .await?
        .ok_or_else(|| PageError::not_found("this directory no longer exists"))?;
    Ok(StatusView::of(&status))
}

fn layout(p: &PortalSession) -> Layout {
    Layout {
        csrf: p.session.csrf.clone(),
        ..Layout::public()
    }
}

/// A page with the brand's logo origin admitted by its CSP.
fn branded(status: StatusCode, t: &impl Template, brand: &Brand) -> Response {
    let mut resp = page(status, t);
    if let Some(src) = brand.img_src() {
        resp.extensions_mut().insert(src);
    }
    resp
}

#[derive(Template)]
#[template(path = "portal/home.html")]
struct Home {
    layout: Layout,
    brand: Brand,
    directory_name: String,
    return_url: Option<String>,
    providers: &'static [Provider],
    status: StatusView,
    refresh_secs: u32,
}

pub async fn home(State(s): State<AppState>, p: PortalSession) -> Result<Response, PageError> {
    let dir = s
        .store
        .get_directory(&p.directory)
        .await?
        .ok_or_else(|| PageError::not_found("this directory no longer exists"))?;
    let t = Home {
        layout: layout(&p),
        brand: Brand::of(&s),
        directory_name: dir.name,
        return_url: p.link.as_ref().and_then(|l| l.return_url.clone()),
        providers: PROVIDERS,
        status: status_view(&s, &p.directory).await?,
        refresh_secs: REFRESH_SECS,
    };
    Ok(branded(StatusCode::OK, &t, &t.brand))
}

#[derive(Template)]
#[template(path = "portal/status.html")]
struct Status {
    status: StatusView,
}

/// The status fragment alone, for the page's refresh.
pub async fn status(State(s): State<AppState>, p: PortalSession) -> Result<Response, PageError> {
    let t = Status {
        status: status_view(&s, &p.directory).await?,
    };
    Ok(page(StatusCode::OK, &t))
}

#[derive(Template)]
#[template(path = "portal/setup.html")]
struct Setup {
    layout: Layout,
    brand: Brand,
    provider: &'static Provider,
    steps: String,
    base_url: String,
    /// A token just issued: shown once, on this response only.
    token: Option<String>,
    has_token: bool,
    return_url: Option<String>,
    status: StatusView,
    refresh_secs: u32,
    /// Whether the directory is read from Google (it takes no SCIM token).
    pulled: bool,
    /// On the Google page: the form that connects the Directory API.
    google_form: Option<GoogleForm>,
    notice: Option<&'static str>,
}

/// The Directory API form of the portal's Google page, with what was typed
/// (never the key) and why it was refused.
#[derive(Default)]
pub struct GoogleForm {
    admin_email: String,
    customer: String,
    domain: String,
    error: Option<String>,
    max_kib: usize,
}

/// The slug of the provider whose page offers the Directory API.
const GOOGLE: &str = "google";

fn provider(slug: &str) -> Result<&'static Provider, PageError> {
    setup_steps::provider(slug).ok_or_else(|| PageError::not_found(format!("no provider {slug}")))
}

async fn setup_page(
    s: &AppState,
    headers: &HeaderMap,
    p: &PortalSession,
    provider: &'static Provider,
    token: Option<String>,
) -> Result<Response, PageError> {
    let form = (provider.slug == GOOGLE).then(|| GoogleForm {
        customer: "my_customer".to_owned(),
        ..GoogleForm::default()
    });
    setup_page_with(s, headers, p, provider, token, form, None, StatusCode::OK).await
}

#[allow(clippy::too_many_arguments)]
async fn setup_page_with(
    s: &AppState,
    headers: &HeaderMap,
    p: &PortalSession,
    provider: &'static Provider,
    token: Option<String>,
    google_form: Option<GoogleForm>,
    notice: Option<&'static str>,
    code: StatusCode,
) -> Result<Response, PageError> {
    let live = s
        .store
        .list_tokens(&p.directory)
        .await?
        .iter()
        .any(|t| t.revoked_at.is_none() && t.expires_at.is_none());
    let pulled = s.store.google_source(&p.directory).await?.is_some();
    let t = Setup {
        layout: layout(p),
        brand: Brand::of(s),
        provider,
        steps: provider.steps_html(),
        base_url: crate::render::base_url(s, headers, &p.directory),
        has_token: live || token.is_some(),
        token,
        return_url: p.link.as_ref().and_then(|l| l.return_url.clone()),
        status: status_view(s, &p.directory).await?,
        refresh_secs: REFRESH_SECS,
        pulled,
        google_form: google_form.map(|f| GoogleForm {
            max_kib: MAX_FILE / 1024,
            ..f
        }),
        notice,
    };
    Ok(branded(code, &t, &t.brand))
}

/// `POST /portal/setup/google/directory-api`: the directory becomes a
/// Google Workspace directory read with the uploaded key (one that already
/// is gets the new key). Only a directory that has received nothing over
/// SCIM is converted; any other is refused with the reason, unchanged.
pub async fn connect_google(
    State(s): State<AppState>,
    headers: HeaderMap,
    u: Uploaded<PortalSession>,
) -> Result<Response, PageError> {
    let p = &u.session;
    let provider = provider(GOOGLE)?;
    let typed = GoogleForm {
        admin_email: u.field("admin_email").to_owned(),
        customer: u.field("customer").to_owned(),
        domain: u.field("domain").to_owned(),
        ..GoogleForm::default()
    };
    let refuse = |typed: GoogleForm, why: String| {
        let form = GoogleForm {
            error: Some(why),
            ..typed
        };
        setup_page_with(
            &s,
            &headers,
            p,
            provider,
            None,
            Some(form),
            None,
            StatusCode::BAD_REQUEST,
        )
    };
    let key = match u.file_or_pasted("key_file", "key_json") {
        Ok(Some(k)) => k,
        Ok(None) => {
            return refuse(
                typed,
                "Nothing was changed: choose the service-account key file (JSON), or paste its contents.".to_owned(),
            )
            .await;
        }
        Err(e) => return refuse(typed, format!("Nothing was changed: {e}.")).await,
    };
    let actor = p.actor();
    if s.store.google_source(&p.directory).await?.is_some() {
        let account = match crate::google::account::ServiceAccount::parse(&key) {
            Ok(a) => a,
            Err(e) => return refuse(typed, format!("The key was not replaced: {e}.")).await,
        };
        s.store
            .replace_google_credentials(&actor, &p.directory, key, account.client_id)
            .await?;
        return setup_page_with(
            &s,
            &headers,
            p,
            provider,
            None,
            None,
            Some("The key was replaced; a poll with it starts within a second."),
            StatusCode::OK,
        )
        .await;
    }
    let customer = match typed.customer.trim() {
        "" => "my_customer",
        c => c,
    };
    let settings = match crate::google::settings(
        &key,
        &typed.admin_email,
        customer,
        Some(typed.domain.as_str()),
        None,
    ) {
        Ok(st) => st,
        Err(e) => return refuse(typed, format!("Nothing was changed: {e}.")).await,
    };
    match crate::token_ops::convert_to_google(&s, &actor, &p.directory, settings).await {
        Ok(_) => {}
        Err(roster_store::StoreError::Conflict { message, .. }) => {
            return refuse(
                typed,
                format!(
                    "Nothing was changed: {message}. Ask {} for a new directory to read from Google.",
                    Brand::of(&s).product
                ),
            )
            .await;
        }
        Err(e) => return Err(e.into()),
    }
    setup_page_with(
        &s,
        &headers,
        p,
        provider,
        None,
        None,
        Some("Connected: the directory is now read from Google Workspace. The first poll starts within a second; the status above follows it."),
        StatusCode::OK,
    )
    .await
}

pub async fn setup(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    p: PortalSession,
) -> Result<Response, PageError> {
    setup_page(&s, &headers, &p, provider(&slug)?, None).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    /// `issue` (another token) or `rotate` (replace the newest live one).
    action: String,
}

/// Issues or rotates the directory's token and shows it once, in the answer
/// to this POST (never in a URL, never again).
pub async fn issue_token(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    posted: Posted<PortalSession, TokenForm>,
) -> Result<Response, PageError> {
    let p = posted.session;
    let provider = provider(&slug)?;
    let actor = p.actor();
    let newest_live = s
        .store
        .list_tokens(&p.directory)
        .await?
        .into_iter()
        .filter(|t| t.revoked_at.is_none() && t.expires_at.is_none())
        .max_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let token = match (posted.form.action.as_str(), newest_live) {
        ("rotate", Some(old)) => {
            crate::token_ops::rotate(&s, &actor, Some(&p.directory), &old.id, ROTATE_OVERLAP_SECS)
                .await?
                .ok_or_else(|| PageError::not_found("the token was revoked meanwhile"))?
                .token
        }
        ("rotate" | "issue", _) => s.store.issue_token(&actor, &p.directory).await?.1,
        (other, _) => {
            return Err(PageError::bad_request(format!(
                "action must be issue or rotate, not {other:?}"
            )));
        }
    };
    setup_page(&s, &headers, &p, provider, Some(token)).await
}

/// Ends the session and its cookie.
pub async fn sign_out(
    State(s): State<AppState>,
    parts: Parts,
    posted: Posted<PortalSession, Empty>,
) -> Result<Response, PageError> {
    let _ = posted.form;
    session::end(&s, &parts, PORTAL).await?;
    let mut resp = crate::web::error_page(
        StatusCode::OK,
        "You have left the portal. Open a new portal link to come back.",
    );
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session::clear_cookie(PORTAL, session::is_https(&s, &parts)),
    );
    Ok(resp.into_response())
}

/// A form with no fields but its token.
#[derive(Deserialize)]
pub struct Empty {}
