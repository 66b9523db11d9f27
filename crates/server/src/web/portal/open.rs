//! Opening a portal link: the link is spent, a portal session for its
//! directory begins, and the browser moves to `/portal`, leaving the secret
//! out of the address bar and the history.

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use roster_store::Actor;
use roster_store::web_sessions::{SessionLifetime, SessionScope};

use crate::error::PageError;
use crate::state::AppState;
use crate::web::admin::redirect;
use crate::web::session::{self, PORTAL};

/// A portal session lasts an hour from its link, however busy.
pub const SESSION_SECS: i64 = 3600;

pub async fn open(
    State(s): State<AppState>,
    parts: Parts,
    Path(secret): Path<String>,
) -> Result<Response, PageError> {
    let Some(link) = s.store.open_portal_link(&secret).await? else {
        return Ok(crate::web::error_page(
            StatusCode::GONE,
            "This portal link has expired or was already used. Links open once, for a few minutes: ask for a new one.",
        ));
    };
    let lifetime = SessionLifetime {
        idle_secs: None,
        max_secs: SESSION_SECS,
    };
    let (web, cookie) = session::open(
        &s,
        &parts,
        PORTAL,
        &Actor::Portal(link.id.clone()),
        &SessionScope::Portal(link.directory_id.clone()),
        lifetime,
    )
    .await?;
    s.store.attach_portal_session(&link.id, &web.id).await?;
    let mut resp = redirect("/portal");
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(resp.into_response())
}
