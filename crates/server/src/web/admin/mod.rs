//! The operator dashboard under `/admin`: a session opened with an admin
//! API key acts with that key's scope, through the same checks as `/api/v1`
//! ([`AdminAuth`]), so a read-only or directory-limited key's session sees
//! and does only what the key may; every change is audited with the key as
//! actor.

mod auth;
mod directories;
mod directory;
mod events;
mod google;
mod keys;
mod requests;
mod resources;
mod webhooks;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use roster_store::web_sessions::{SessionScope, WebSession};

use super::Layout;
use super::csrf::CsrfBound;
use super::session::{self, ADMIN};
use crate::api::AdminAuth;
use crate::error::PageError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(directories::list))
        .route(
            "/admin/sign-in",
            get(auth::sign_in_form).post(auth::sign_in),
        )
        .route("/admin/sign-out", post(auth::sign_out))
        .route("/admin/directories", post(directories::create))
        .route(
            "/admin/google-directories",
            get(google::new_form).post(google::create),
        )
        .route("/admin/directories/{id}/sync", post(google::sync))
        .route(
            "/admin/directories/{id}/google-key",
            post(google::replace_key),
        )
        .route("/admin/directories/{id}", get(directory::show))
        .route("/admin/directories/{id}/rename", post(directory::rename))
        .route("/admin/directories/{id}/delete", post(directory::delete))
        .route(
            "/admin/directories/{id}/settings",
            post(directory::settings),
        )
        .route(
            "/admin/directories/{id}/tokens",
            post(directory::issue_token),
        )
        .route(
            "/admin/directories/{id}/tokens/{token}/rotate",
            post(directory::rotate_token),
        )
        .route(
            "/admin/directories/{id}/tokens/{token}/revoke",
            post(directory::revoke_token),
        )
        .route("/admin/directories/{id}/requests", get(requests::show))
        .route("/admin/directories/{id}/users", get(resources::users))
        .route("/admin/directories/{id}/groups", get(resources::groups))
        .route("/admin/directories/{id}/users/{user}", get(resources::user))
        .route(
            "/admin/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route("/admin/webhooks/{id}", get(webhooks::show))
        .route("/admin/webhooks/{id}/enable", post(webhooks::enable))
        .route("/admin/webhooks/{id}/disable", post(webhooks::disable))
        .route("/admin/webhooks/{id}/delete", post(webhooks::delete))
        .route("/admin/webhooks/{id}/redeliver", post(webhooks::redeliver))
        .route("/admin/events", get(events::show))
        .route("/admin/events/rows", get(events::rows))
        .route("/admin/keys", get(keys::list).post(keys::create))
        .route("/admin/keys/{id}/revoke", post(keys::revoke))
}

/// A request of a signed-in dashboard session, with its key's powers.
pub struct AdminSession {
    pub auth: AdminAuth,
    pub session: WebSession,
}

impl AdminSession {
    /// The layout of a page for the signed-in key, `section` marked in the navigation.
    pub fn layout(&self, section: &'static str) -> Layout {
        Layout {
            csrf: self.session.csrf.clone(),
            who: Some(self.auth.key.name.clone()),
            section,
            keys_link: self.auth.key.scope.is_full(),
            ..Layout::public()
        }
    }
}

impl CsrfBound for AdminSession {
    fn csrf(&self) -> &str {
        &self.session.csrf
    }
}

/// To the sign-in page, the stale cookie (if any) removed.
fn to_sign_in(state: &AppState, parts: &Parts, clear: bool) -> Response {
    let mut resp = redirect("/admin/sign-in");
    if clear {
        resp.headers_mut().insert(
            header::SET_COOKIE,
            session::clear_cookie(ADMIN, session::is_https(state, parts)),
        );
    }
    resp
}

/// 303 See Other: after a POST, the browser GETs `to`.
pub fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let found = session::current(state, parts, ADMIN)
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        let Some(session) = found else {
            let had_cookie = session::cookie(parts, ADMIN.name).is_some();
            return Err(to_sign_in(state, parts, had_cookie));
        };
        let SessionScope::Admin(key_id) = &session.scope else {
            return Err(to_sign_in(state, parts, true));
        };
        // The key is read on every request, as `/api/v1` proves its bearer
        // on every request: a revoked key's sessions end at once.
        let key = state
            .store
            .live_admin_key(key_id)
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        match key {
            Some(key) => Ok(AdminSession {
                auth: AdminAuth { key },
                session,
            }),
            None => {
                let _ = session::end(state, parts, ADMIN).await;
                Err(to_sign_in(state, parts, true))
            }
        }
    }
}
