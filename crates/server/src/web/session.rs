//! Cookie sessions of the web pages, for the dashboard and the portal alike:
//! the cookie carries a random secret, the store keeps its digest
//! (`roster_store::web_sessions`). Cookies are HttpOnly (no script reads
//! them), SameSite=Strict (no other site's request carries them), limited to
//! their area's path, and Secure whenever the pages are served over https.

use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use roster_store::web_sessions::{SessionLifetime, SessionScope, WebSession};
use roster_store::{Actor, StoreError};

use crate::state::AppState;

/// The cookie of one area of the pages.
#[derive(Debug, Clone, Copy)]
pub struct CookieSpec {
    pub name: &'static str,
    pub path: &'static str,
}

/// The dashboard's session cookie.
pub const ADMIN: CookieSpec = CookieSpec {
    name: "roster_admin",
    path: "/admin",
};

/// The Admin Portal's session cookie.
pub const PORTAL: CookieSpec = CookieSpec {
    name: "roster_portal",
    path: "/portal",
};

/// The value of the request's cookie `name`, if it sent one.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Whether the pages are reached over https: the configured public URL
/// says so, or a TLS-terminating proxy in front says so.
pub fn is_https(state: &AppState, parts: &Parts) -> bool {
    let public = state
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    public
        || parts.uri.scheme_str() == Some("https")
        || parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` for a new session, lasting no longer than the session.
pub fn set_cookie(spec: CookieSpec, secret: &str, secure: bool, max_age_secs: i64) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value = format!(
        "{}={secret}; Path={}; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}",
        spec.name, spec.path
    );
    // The secret is URL-safe base64 and the rest is ours: always a valid value.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes the cookie (sign-out, an ended session).
pub fn clear_cookie(spec: CookieSpec, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}=; Path={}; Max-Age=0; HttpOnly; SameSite=Strict{secure}",
        spec.name, spec.path
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Opens a session and returns it with the `Set-Cookie` that carries it.
pub async fn open(
    state: &AppState,
    parts: &Parts,
    spec: CookieSpec,
    actor: &Actor,
    scope: &SessionScope,
    lifetime: SessionLifetime,
) -> Result<(WebSession, HeaderValue), StoreError> {
    let (session, secret) = state
        .store
        .create_web_session(actor, scope, lifetime)
        .await?;
    let cookie = set_cookie(spec, &secret, is_https(state, parts), lifetime.max_secs);
    Ok((session, cookie))
}

/// The live session the request's cookie opens, if any.
pub async fn current(
    state: &AppState,
    parts: &Parts,
    spec: CookieSpec,
) -> Result<Option<WebSession>, StoreError> {
    match cookie(parts, spec.name) {
        Some(secret) => state.store.web_session(secret).await,
        None => Ok(None),
    }
}

/// Ends the request's session, if it has one.
pub async fn end(state: &AppState, parts: &Parts, spec: CookieSpec) -> Result<(), StoreError> {
    if let Some(secret) = cookie(parts, spec.name) {
        state.store.end_web_session(secret).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    #[test]
    fn the_named_cookie_is_found_among_others() {
        let (parts, ()) = Request::builder()
            .header(header::COOKIE, "a=1; roster_admin=s3cret; b=2")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(cookie(&parts, "roster_admin"), Some("s3cret"));
        assert_eq!(cookie(&parts, "roster_portal"), None);
    }

    #[test]
    fn session_cookies_are_http_only_strict_and_scoped_to_their_area() {
        let c = set_cookie(ADMIN, "abc", true, 60);
        assert_eq!(
            c.to_str().unwrap(),
            "roster_admin=abc; Path=/admin; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        let c = clear_cookie(PORTAL, false);
        assert_eq!(
            c.to_str().unwrap(),
            "roster_portal=; Path=/portal; Max-Age=0; HttpOnly; SameSite=Strict"
        );
    }
}
