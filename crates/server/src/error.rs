//! The one place errors become HTTP. An [`ApiError`] says what went wrong: a
//! status, a SCIM error type and a detail fit for the client, decided once
//! (domain errors are mapped in [`From<DomainError>`] and nowhere else). The
//! API that answers renders it: SCIM error bodies (RFC 7644 §3.12) by
//! default, [`AppError`] for the app-facing `/api/v1`
//! (`{"error": code, "message": text}`), and [`WorkosError`] for the
//! WorkOS-compatible routes (`{"code": code, "message": text}`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roster_domain::DomainError;
use roster_scim::{ScimError, ScimType};
use roster_store::StoreError;

pub const SCIM_JSON: &str = "application/scim+json";

#[derive(Debug)]
pub struct ApiError(pub ScimError);

impl ApiError {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        ApiError(ScimError::new(status, None, detail))
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(400, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(404, detail)
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<ScimError> for ApiError {
    fn from(e: ScimError) -> Self {
        ApiError(e)
    }
}

/// The one mapping of domain outcomes to HTTP (RFC 7644 §3.12 statuses and
/// `scimType`s); `/api/v1` takes its codes from the same statuses.
impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound(m) => ApiError(ScimError::not_found(m)),
            // The message names the attribute and its value.
            DomainError::Conflict { message, .. } => ApiError(ScimError::uniqueness(message)),
            DomainError::PreconditionFailed(m) => ApiError(ScimError::precondition_failed(m)),
            DomainError::Invalid(m) => ApiError(ScimError::invalid_value(m)),
            DomainError::InvalidCursor(m) => {
                ApiError(ScimError::bad_request(ScimType::InvalidCursor, m))
            }
            DomainError::ExpiredCursor(m) => {
                ApiError(ScimError::bad_request(ScimType::ExpiredCursor, m))
            }
            DomainError::Rejected(e) => ApiError(e),
            e @ DomainError::Internal { .. } => {
                // Database details can carry SQL or paths: log them with the
                // errors underneath (inside the request's span, so with its
                // request id), never send them; fallback::stack_errors
                // answers every 500 with the request id.
                tracing::error!(error = %e.chain(), "storage error");
                ApiError(ScimError::internal("internal storage error"))
            }
            DomainError::Unavailable(detail) => {
                // An outage, not a bug: a warning (with the request id of the
                // span) rather than an error, and a 503 the client may retry.
                tracing::warn!(%detail, "database unavailable");
                ApiError(ScimError::new(
                    503,
                    None,
                    "the database is unavailable; retry shortly",
                ))
            }
            DomainError::Timeout { limit_ms } => {
                // A runaway query, stopped before the request timeout: the
                // request span names the route, the directory and the filter.
                tracing::warn!(
                    limit_ms,
                    "a query ran past statement_timeout_ms and was stopped"
                );
                let detail = match limit_ms {
                    Some(ms) => format!(
                        "the query took longer than statement_timeout_ms ({ms} ms) and was stopped; narrow the filter or retry"
                    ),
                    None => "the database cancelled the query; retry".to_owned(),
                };
                ApiError(ScimError::new(503, None, detail))
            }
            e @ DomainError::CursorExpired { .. } => {
                ApiError(ScimError::new(410, None, e.to_string()))
            }
            DomainError::Closed => ApiError(ScimError::new(
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

/// An [`ApiError`] rendered for the app-facing API under `/api/v1`:
/// `{"error": code, "message": text}`, the code following from the status.
#[derive(Debug)]
pub struct AppError(pub ApiError);

impl AppError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        AppError(ApiError::bad_request(message))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        AppError(ApiError::not_found(message))
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        AppError(ApiError::new(401, message))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError(ApiError::new(403, message))
    }

    /// The text for the client: the `message` of the body.
    pub fn message(&self) -> &str {
        &self.0.0.detail
    }

    /// The machine-readable `error` code of the body.
    pub fn code(&self) -> &'static str {
        match self.0.status().as_u16() {
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            409 => "conflict",
            410 => "cursor_expired",
            429 => "rate_limited",
            503 => "unavailable",
            s if s >= 500 => "internal",
            _ => "invalid_request",
        }
    }
}

impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        AppError(e)
    }
}

impl From<ScimError> for AppError {
    fn from(e: ScimError) -> Self {
        AppError(ApiError(e))
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError(ApiError::from(e))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = serde_json::json!({"error": self.code(), "message": self.0.0.detail});
        let mut resp = (status, axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"roster-admin\""),
            );
        }
        // As on SCIM: a 503 (database outage, shutdown) is worth retrying.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// An [`ApiError`] rendered for the web pages: an HTML page naming the
/// problem, with the same status and message the JSON APIs would give.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl PageError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        PageError(ApiError::bad_request(message))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        PageError(ApiError::not_found(message))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        PageError(ApiError::new(403, message))
    }

    pub fn payload_too_large(message: impl Into<String>) -> Self {
        PageError(ApiError::new(413, message))
    }

    pub fn message(&self) -> &str {
        &self.0.0.detail
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        PageError(e.0)
    }
}

impl From<ScimError> for PageError {
    fn from(e: ScimError) -> Self {
        PageError(ApiError(e))
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError(ApiError::from(e))
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> Self {
        tracing::error!(error = %e, "a page template failed to render");
        PageError(ApiError(ScimError::internal(
            "the page could not be rendered",
        )))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        crate::web::error_page(self.0.status(), &self.0.0.detail)
    }
}

/// An [`ApiError`] rendered for the WorkOS-compatible routes:
/// `{"code": code, "message": text}`, the shape the WorkOS SDKs turn into
/// their typed exceptions. Never an `error` key: the Node SDK would read it
/// as an OAuth error.
#[derive(Debug)]
pub struct WorkosError(pub ApiError);

impl WorkosError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        WorkosError(ApiError::bad_request(message))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        WorkosError(ApiError::not_found(message))
    }

    /// The snake_case `code` of the body.
    pub fn code(&self) -> &'static str {
        match self.0.status().as_u16() {
            400 if self.0.0.scim_type == Some(ScimType::InvalidCursor) => "invalid_cursor",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "entity_not_found",
            409 => "conflict",
            410 => "cursor_expired",
            422 => "unprocessable_entity",
            429 => "rate_limit_exceeded",
            503 => "service_unavailable",
            s if s >= 500 => "server_error",
            _ => "invalid_request_parameters",
        }
    }
}

impl From<AppError> for WorkosError {
    fn from(e: AppError) -> Self {
        WorkosError(e.0)
    }
}

impl From<StoreError> for WorkosError {
    fn from(e: StoreError) -> Self {
        WorkosError(ApiError::from(e))
    }
}

impl IntoResponse for WorkosError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let body = serde_json::json!({"code": self.code(), "message": self.0.0.detail});
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

/// Which API a request path belongs to, for the answers no handler of it
/// renders (an unknown route, a wrong method, a framework rejection): each
/// API's clients parse only its own error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Scim,
    App,
    Workos,
}

impl Face {
    pub fn of(path: &str) -> Face {
        if path.starts_with("/api/") {
            Face::App
        } else if crate::workos::serves(path) {
            Face::Workos
        } else {
            Face::Scim
        }
    }

    /// `status` with `detail` in this API's error body.
    pub fn error(self, status: u16, detail: impl Into<String>) -> Response {
        let e = ApiError::new(status, detail);
        match self {
            Face::Scim => e.into_response(),
            Face::App => AppError(e).into_response(),
            Face::Workos => WorkosError(e).into_response(),
        }
    }
}

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

    #[test]
    fn a_read_past_the_statement_timeout_is_a_503_with_retry_after_in_every_api() {
        let timeout = || StoreError::Timeout {
            limit_ms: Some(250),
        };
        let e = ApiError::from(timeout());
        assert_eq!(e.0.status, 503);
        assert_eq!(
            e.0.detail,
            "the query took longer than statement_timeout_ms (250 ms) and was stopped; narrow the filter or retry"
        );
        let resp = e.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], SCIM_JSON);

        let app = AppError::from(timeout());
        assert_eq!(app.code(), "unavailable");
        let resp = app.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");

        let workos = WorkosError::from(timeout());
        assert_eq!(workos.code(), "service_unavailable");
        let resp = workos.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");

        // Cancelled by something else (an operator): no limit to name.
        let e = ApiError::from(StoreError::Timeout { limit_ms: None }).0;
        assert_eq!(
            (e.status, e.detail.as_str()),
            (503, "the database cancelled the query; retry")
        );
    }

    #[test]
    fn domain_outcomes_become_scim_statuses_and_types() {
        for (e, status, scim_type) in [
            (StoreError::NotFound("no User x".into()), 404, None),
            (
                StoreError::conflict("userName", "taken"),
                409,
                Some(ScimType::Uniqueness),
            ),
            (StoreError::PreconditionFailed("v2".into()), 412, None),
            (
                StoreError::Invalid("a group in itself".into()),
                400,
                Some(ScimType::InvalidValue),
            ),
            (
                StoreError::InvalidCursor("not ours".into()),
                400,
                Some(ScimType::InvalidCursor),
            ),
            (
                StoreError::ExpiredCursor("old".into()),
                400,
                Some(ScimType::ExpiredCursor),
            ),
            (
                StoreError::Rejected(ScimError::invalid_path("emails[")),
                400,
                Some(ScimType::InvalidPath),
            ),
            (StoreError::CursorExpired { floor: 3 }, 410, None),
        ] {
            let scim = ApiError::from(e).0;
            assert_eq!(
                (scim.status, scim.scim_type),
                (status, scim_type),
                "{}",
                scim.detail
            );
        }
    }

    #[test]
    fn app_errors_take_their_code_from_the_status_and_keep_the_detail() {
        for (e, status, code) in [
            (
                StoreError::CursorExpired { floor: 7 },
                410,
                "cursor_expired",
            ),
            (StoreError::Closed, 503, "unavailable"),
            (StoreError::internal("SELECT secret"), 500, "internal"),
            (
                StoreError::conflict("userName", "userName is taken"),
                409,
                "conflict",
            ),
            (StoreError::Invalid("bad".into()), 400, "invalid_request"),
        ] {
            let app = AppError::from(e);
            assert_eq!((app.0.status().as_u16(), app.code()), (status, code));
            assert!(!app.0.0.detail.contains("SELECT"), "{}", app.0.0.detail);
        }
        let resp = AppError::unauthorized("no key").into_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"roster-admin\""
        );
    }
}
