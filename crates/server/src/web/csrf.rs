//! Cross-site request forgery: every state-changing request is a POST whose
//! form carries the session's token in the field `csrf`; one without it, or
//! with another session's, is refused with 403 before anything happens.
//! SameSite=Strict cookies already keep other sites' requests unsigned-in;
//! the token also covers browsers and proxies that do not honour SameSite.

use axum::body::{Body, to_bytes};
use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::error::PageError;
use crate::state::AppState;

/// The form field that carries the token.
pub const FIELD: &str = "csrf";

/// A session whose forms carry a token.
pub trait CsrfBound {
    fn csrf(&self) -> &str;
}

/// The fields of a form that is only its token and a button.
#[derive(serde::Deserialize)]
pub struct NoFields {}

/// A POSTed form of a signed-in session `S`, its token checked; `T` is the
/// form's other fields.
pub struct Posted<S, T> {
    pub session: S,
    pub form: T,
}

/// Whether `submitted` is the session's token (constant time).
pub fn matches(expected: &str, submitted: Option<&str>) -> bool {
    submitted.is_some_and(|s| {
        !expected.is_empty() && bool::from(s.as_bytes().ct_eq(expected.as_bytes()))
    })
}

fn forged() -> Response {
    PageError::forbidden(
        "this form has expired or did not come from this page; reload the page and try again",
    )
    .into_response()
}

impl<S, T> FromRequest<AppState> for Posted<S, T>
where
    S: FromRequestParts<AppState, Rejection = Response> + CsrfBound + Send,
    T: DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = S::from_request_parts(&mut parts, state).await?;
        let bytes = to_bytes(body, state.config.max_body_bytes)
            .await
            .map_err(|_| PageError::bad_request("the form is too large").into_response())?;
        let submitted = form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == FIELD)
            .map(|(_, v)| v.into_owned());
        if !matches(session.csrf(), submitted.as_deref()) {
            crate::metrics::auth_failure("web", "csrf");
            return Err(forged());
        }
        let req = Request::from_parts(parts, Body::from(bytes));
        let Form(form) = Form::<T>::from_request(req, state).await.map_err(|e| {
            PageError::bad_request(format!("the form is incomplete: {}", e.body_text()))
                .into_response()
        })?;
        Ok(Posted { session, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_sessions_own_token_matches() {
        assert!(matches("tok", Some("tok")));
        assert!(!matches("tok", Some("tok2")));
        assert!(!matches("tok", None));
        assert!(!matches("", Some("")));
    }
}
