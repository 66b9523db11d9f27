//! Signing in with an admin API key and out again.

use askama::Template;
use axum::extract::{Form, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use roster_store::Actor;
use roster_store::web_sessions::{SessionLifetime, SessionScope};
use serde::Deserialize;

use super::{AdminSession, redirect};
use crate::error::PageError;
use crate::state::AppState;
use crate::web::csrf::{NoFields, Posted};
use crate::web::session::{self, ADMIN};
use crate::web::{Layout, page};

#[derive(Template)]
#[template(path = "admin/sign_in.html")]
struct SignIn {
    layout: Layout,
    error: Option<&'static str>,
}

pub async fn sign_in_form() -> Response {
    page(
        StatusCode::OK,
        &SignIn {
            layout: Layout::public(),
            error: None,
        },
    )
}

#[derive(Deserialize)]
pub struct SignInForm {
    key: String,
}

/// The request came from a page of this server, as far as the browser
/// says: a sign-in has no session token yet, so this is what stops another
/// site from signing a browser in with the other site's key.
fn same_origin(parts: &Parts) -> bool {
    let fetch_site = parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok());
    if let Some(site) = fetch_site {
        return site == "same-origin" || site == "none";
    }
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority == host),
        (Some(_), None) => false,
        // Neither header: not a browser's cross-site form post.
        (None, _) => true,
    }
}

pub async fn sign_in(
    State(state): State<AppState>,
    parts: Parts,
    Form(form): Form<SignInForm>,
) -> Result<Response, PageError> {
    if !same_origin(&parts) {
        return Err(PageError::forbidden(
            "sign in from Roster's own sign-in page",
        ));
    }
    let key = state.store.authenticate_admin(form.key.trim()).await?;
    let Some(key) = key else {
        crate::metrics::auth_failure("web", "unknown");
        return Ok(page(
            StatusCode::UNAUTHORIZED,
            &SignIn {
                layout: Layout::public(),
                error: Some("That admin API key is unknown or revoked."),
            },
        ));
    };
    let cfg = &state.config;
    let lifetime = SessionLifetime {
        idle_secs: Some(cfg.admin_session_idle_secs.max(60)),
        max_secs: cfg.admin_session_max_secs.max(60),
    };
    let actor = Actor::AdminKey(key.id.clone());
    let (_, cookie) = session::open(
        &state,
        &parts,
        ADMIN,
        &actor,
        &SessionScope::Admin(key.id),
        lifetime,
    )
    .await?;
    let mut resp = redirect("/admin");
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(resp)
}

pub async fn sign_out(
    State(state): State<AppState>,
    parts: Parts,
    _signed: Posted<AdminSession, NoFields>,
) -> Result<Response, PageError> {
    session::end(&state, &parts, ADMIN).await?;
    let mut resp = redirect("/admin/sign-in");
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session::clear_cookie(ADMIN, session::is_https(&state, &parts)),
    );
    Ok(resp.into_response())
}
