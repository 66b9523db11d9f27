//! The Admin Portal under `/portal`: a customer's IT admin, arriving through
//! a one-time link, connects their identity provider to one directory. The
//! session is the only source of the directory: no route takes a directory
//! id, so a session cannot reach another directory.

mod brand;
mod open;
mod pages;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use roster_store::Actor;
use roster_store::portal::PortalLink;
use roster_store::web_sessions::{SessionScope, WebSession};

use super::csrf::CsrfBound;
use super::session::{self, PORTAL};
use crate::error::PageError;
use crate::state::AppState;

pub use brand::Brand;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal/open/{secret}", get(open::open))
        .route("/portal", get(pages::home))
        .route("/portal/brand.css", get(brand::css))
        .route("/portal/status", get(pages::status))
        .route("/portal/setup/{provider}", get(pages::setup))
        .route("/portal/setup/{provider}/token", post(pages::issue_token))
        .route(
            "/portal/setup/google/directory-api",
            post(pages::connect_google),
        )
        .route("/portal/sign-out", post(pages::sign_out))
}

/// A request of a live portal session: the one directory it may see.
pub struct PortalSession {
    pub session: WebSession,
    pub directory: String,
    /// The link that opened the session (its return URL, the audit actor).
    pub link: Option<PortalLink>,
}

impl PortalSession {
    /// Who the audit log names for what the portal visitor changes.
    pub fn actor(&self) -> Actor {
        match &self.link {
            Some(l) => Actor::Portal(l.id.clone()),
            None => Actor::Portal(format!("session:{}", &self.session.id)),
        }
    }
}

impl CsrfBound for PortalSession {
    fn csrf(&self) -> &str {
        &self.session.csrf
    }
}

/// Without a session there is nothing to show: the portal is reached only
/// through a link, so the page says to ask for a new one.
fn no_session(state: &AppState, parts: &Parts, clear: bool) -> Response {
    let mut resp = super::error_page(
        StatusCode::UNAUTHORIZED,
        "This portal session has ended or was never opened. Ask for a new portal link.",
    );
    if clear {
        resp.headers_mut().insert(
            header::SET_COOKIE,
            session::clear_cookie(PORTAL, session::is_https(state, parts)),
        );
    }
    resp
}

impl FromRequestParts<AppState> for PortalSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let found = session::current(state, parts, PORTAL)
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        let Some(session) = found else {
            let had_cookie = session::cookie(parts, PORTAL.name).is_some();
            return Err(no_session(state, parts, had_cookie));
        };
        let SessionScope::Portal(directory) = session.scope.clone() else {
            return Err(no_session(state, parts, true));
        };
        let link = state
            .store
            .portal_link_of_session(&session.id)
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        Ok(PortalSession {
            session,
            directory,
            link,
        })
    }
}
