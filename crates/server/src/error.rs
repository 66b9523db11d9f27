//! The HTTP layer alone turns errors into SCIM error responses.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roster_scim::ScimError;
use roster_store::StoreError;

pub const SCIM_JSON: &str = "application/scim+json";

#[derive(Debug)]
pub struct ApiError(pub ScimError);

impl From<ScimError> for ApiError {
    fn from(e: ScimError) -> Self {
        ApiError(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Scim(e) => ApiError(e),
            e @ StoreError::Database { .. } => {
                // Database details can carry SQL or paths: log them with the
                // errors underneath (inside the request's span, so with its
                // request id), never send them; fallback::stack_errors
                // answers every 500 with the request id.
                tracing::error!(error = %e.chain(), "storage error");
                ApiError(ScimError::internal("internal storage error"))
            }
            StoreError::Unavailable(detail) => {
                // An outage, not a bug: a warning (with the request id of the
                // span) rather than an error, and a 503 the client may retry.
                tracing::warn!(%detail, "database unavailable");
                ApiError(ScimError::new(
                    503,
                    None,
                    "the database is unavailable; retry shortly",
                ))
            }
            e @ StoreError::CursorExpired { .. } => {
                ApiError(ScimError::new(410, None, e.to_string()))
            }
            StoreError::Closed => ApiError(ScimError::new(
                503,
                None,
                "the server is shutting down; retry shortly",
            )),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        scim_error_response(&self.0)
    }
}

/// A SCIM message: the body as `application/scim+json` with `status`.
pub fn scim_json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    resp
}

pub fn scim_error_response(e: &ScimError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = scim_json(status, &e.to_json());
    let headers = resp.headers_mut();
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"roster\""),
        );
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_database_is_a_503_with_retry_after_and_no_detail() {
        let resp = ApiError::from(StoreError::Unavailable(
            "connection refused (os error 111) at 10.0.0.5:5432".into(),
        ))
        .into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        let e = ApiError::from(StoreError::Unavailable("secret detail".into())).0;
        assert_eq!(e.detail, "the database is unavailable; retry shortly");
    }
}
