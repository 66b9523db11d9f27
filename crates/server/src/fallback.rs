//! Errors the HTTP stack produces itself, in the API's own format.
//!
//! axum's extractors, tower-http's timeout and a panicking handler answer in
//! plain text (or nothing). This middleware sits outside all of them and turns
//! every such answer into a SCIM Error message (or the app API's
//! `{"error", "message"}` under `/api/`), and every 500 into one that carries
//! nothing but the request id: the detail of an internal error stays in the
//! log, under that id.

use std::any::Any;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use roster_scim::ScimError;
use serde_json::json;

use crate::error::scim_error_response;

/// How much of a framework rejection text is kept (it names what was wrong
/// with the request, e.g. which field the JSON lacked).
const MAX_REJECTION_TEXT: usize = 300;

pub async fn stack_errors(req: Request, next: Next) -> Response {
    let app_api = req.uri().path().starts_with("/api/");
    let web = crate::web::is_web_path(req.uri().path());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let resp = next.run(req).await;
    let status = resp.status();
    if !status.is_client_error() && !status.is_server_error() {
        return resp;
    }
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        let (_, body) = resp.into_parts();
        let text = to_bytes(body, 64 * 1024).await.unwrap_or_default();
        tracing::error!(
            request_id = %request_id,
            detail = %String::from_utf8_lossy(&text),
            "internal error; the client was given only the request id"
        );
        let detail = format!("internal error; quote request id {request_id} when reporting it");
        if web {
            return crate::web::error_page(StatusCode::INTERNAL_SERVER_ERROR, &detail);
        }
        return render(app_api, StatusCode::INTERNAL_SERVER_ERROR, &detail, None);
    }
    if web && is_html(&resp) {
        return resp;
    }
    if web {
        // A route that does not exist under /admin (the router's SCIM 404),
        // an oversized form, a timeout: a page, not JSON, for a browser.
        let detail = describe(status, "");
        return crate::web::error_page(status, &detail);
    }
    if is_json(&resp) {
        return resp;
    }
    let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
    let (_, body) = resp.into_parts();
    let text = to_bytes(body, 16 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let detail = describe(status, text.trim());
    render(app_api, status, &detail, retry_after)
}

fn is_html(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("text/html"))
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let essence = ct.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.eq_ignore_ascii_case("application/scim+json")
        })
}

/// A detail for a status the stack chose, with the framework's text if any.
fn describe(status: StatusCode, text: &str) -> String {
    let what = match status.as_u16() {
        400 => "the request is malformed",
        401 => "authentication is required",
        404 => "no such endpoint",
        405 => "this endpoint does not take that method",
        408 => "the request did not arrive in time",
        413 => "the request body is too large",
        414 => "the request target is too long (max_url_bytes)",
        415 => "unsupported media type; send application/scim+json",
        422 => "the request body does not have the expected shape",
        431 => "the request headers are too large (max_header_bytes)",
        503 => "the request took longer than request_timeout_secs; retry later",
        _ => status.canonical_reason().unwrap_or("the request failed"),
    };
    if text.is_empty() {
        return what.to_owned();
    }
    let mut text = text.to_owned();
    if text.len() > MAX_REJECTION_TEXT {
        let mut cut = MAX_REJECTION_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    format!("{what}: {text}")
}

fn render(
    app_api: bool,
    status: StatusCode,
    detail: &str,
    retry_after: Option<HeaderValue>,
) -> Response {
    let mut resp = if app_api {
        let code = match status.as_u16() {
            401 => "unauthorized",
            404 => "not_found",
            429 => "rate_limited",
            503 => "unavailable",
            s if s >= 500 => "internal",
            _ => "invalid_request",
        };
        let mut r = (
            status,
            axum::Json(json!({"error": code, "message": detail})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"roster-admin\""),
            );
        }
        r
    } else {
        scim_error_response(&ScimError::new(status.as_u16(), None, detail))
    };
    if let Some(v) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    } else if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

/// For `CatchPanicLayer`: a panicking handler is an internal error like any
/// other. The panic message goes to the log (the panic hook prints it too);
/// [`stack_errors`] gives the client only the request id.
pub fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let msg = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = %msg, "a request handler panicked");
    let mut resp = Response::new(Body::from(format!("handler panicked: {msg}")));
    *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;
    use tower_http::catch_panic::CatchPanicLayer;

    async fn body_json(resp: Response) -> serde_json::Value {
        let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn app() -> Router {
        Router::new()
            .route(
                "/boom",
                get(|| async {
                    if true {
                        panic!("secret at /home/roster/src/store.rs:42 SELECT * FROM tokens");
                    }
                    "never"
                }),
            )
            .route(
                "/leaky",
                get(|| async {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "SELECT token_hash FROM tokens WHERE x = 1; /src/lib.rs",
                    )
                }),
            )
            .route(
                "/plain",
                get(|| async { (StatusCode::BAD_REQUEST, "bad thing") }),
            )
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(axum::middleware::from_fn(stack_errors))
    }

    async fn call(path: &str) -> Response {
        app()
            .oneshot(
                Request::builder()
                    .uri(path)
                    .header("x-request-id", "req-123")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_panic_is_a_500_with_only_the_request_id() {
        let resp = call("/boom").await;
        assert_eq!(resp.status(), 500);
        let v = body_json(resp).await;
        assert_eq!(v["schemas"][0], roster_scim::error::ERROR_SCHEMA);
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.contains("req-123"), "{detail}");
        for leak in ["secret", "/home", ".rs", "SELECT"] {
            assert!(!detail.contains(leak), "{detail}");
        }
    }

    #[tokio::test]
    async fn a_500_body_never_reaches_the_client() {
        let v = body_json(call("/leaky").await).await;
        let text = v.to_string();
        assert!(
            !text.contains("SELECT") && !text.contains("lib.rs"),
            "{text}"
        );
        assert!(text.contains("req-123"));
    }

    #[tokio::test]
    async fn plain_text_rejections_become_scim_errors() {
        let resp = call("/plain").await;
        assert_eq!(resp.status(), 400);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/scim+json"
        );
        let v = body_json(resp).await;
        assert_eq!(v["status"], "400");
        assert_eq!(v["detail"], "the request is malformed: bad thing");
    }

    #[tokio::test]
    async fn app_api_errors_keep_the_app_api_format() {
        let resp = call("/api/v1/nowhere").await;
        assert_eq!(resp.status(), 404);
        let v = body_json(resp).await;
        assert_eq!(v["error"], "not_found");
    }
}
