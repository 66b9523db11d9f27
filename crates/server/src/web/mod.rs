//! The web pages: the operator dashboard under `/admin`, the Admin Portal
//! under `/portal`, and their stylesheet and script under `/assets`.
//! Server-rendered (askama templates in `crates/server/templates`, escaped
//! by default), every form a plain POST that works without script; handlers
//! call the same store and service functions as `/api/v1`.

pub mod admin;
pub mod assets;
pub mod csrf;
pub mod headers;
pub mod portal;
pub mod session;
pub mod upload;

use askama::Template;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(admin::routes())
        .merge(portal::routes())
        .merge(assets::routes())
        .layer(middleware::from_fn(headers::secure))
}

/// Whether a path belongs to the web pages (whose errors are HTML pages).
pub fn is_web_path(path: &str) -> bool {
    ["/admin", "/portal", "/assets/"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{}/", p.trim_end_matches('/'))))
}

/// What the shared layout (`base.html`) shows around every page.
pub struct Layout {
    pub css: String,
    pub js: String,
    /// The session's form token; empty on pages without a session.
    pub csrf: String,
    /// The signed-in admin key's name, for the header.
    pub who: Option<String>,
    /// The navigation entry of this page.
    pub section: &'static str,
    /// Whether the admin keys page is shown in the navigation.
    pub keys_link: bool,
}

impl Layout {
    /// The layout of a page outside any session (sign-in, errors).
    pub fn public() -> Self {
        Layout {
            css: assets::url("app.css"),
            js: assets::url("app.js"),
            csrf: String::new(),
            who: None,
            section: "",
            keys_link: false,
        }
    }
}

/// An HTML page as a response.
pub fn page(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => {
            let mut r = (status, Html(html)).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        Err(e) => crate::error::PageError::from(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    reason: &'a str,
    message: &'a str,
}

/// The page of a failed request. Rendering it cannot fail in practice (it
/// has no loops or lookups); if it did, plain text says the same.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let t = ErrorPage {
        layout: Layout::public(),
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or("Error"),
        message,
    };
    let mut resp = match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, message.to_owned()).into_response(),
    };
    headers::apply(&mut resp);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_paths_are_the_areas_and_nothing_that_merely_starts_like_them() {
        assert!(is_web_path("/admin"));
        assert!(is_web_path("/admin/directories"));
        assert!(is_web_path("/portal/x"));
        assert!(is_web_path("/assets/abc/app.css"));
        assert!(!is_web_path("/administrator"));
        assert!(!is_web_path("/api/v1/directories"));
    }
}
