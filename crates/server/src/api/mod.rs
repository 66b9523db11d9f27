//! The app-facing API under `/api/v1`, authenticated by admin API keys.
//! Not SCIM: errors are `{"error": code, "message": text}`.

mod events;
pub mod webhooks;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", get(events::list_events))
        .route(
            "/api/v1/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/api/v1/webhooks/{id}",
            get(webhooks::get).delete(webhooks::delete),
        )
        .route("/api/v1/webhooks/{id}/enable", post(webhooks::enable))
        .route("/api/v1/webhooks/{id}/disable", post(webhooks::disable))
        .route(
            "/api/v1/webhooks/{id}/rotate_secret",
            post(webhooks::rotate_secret),
        )
        .route(
            "/api/v1/webhooks/{id}/deliveries",
            get(webhooks::deliveries),
        )
        .route("/api/v1/webhooks/{id}/redeliver", post(webhooks::redeliver))
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message: message.into(),
        }
    }

    pub fn gone(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::GONE,
            code: "cursor_expired",
            message: message.into(),
        }
    }
}

impl From<roster_store::StoreError> for ApiError {
    fn from(e: roster_store::StoreError) -> Self {
        if let roster_store::StoreError::CursorExpired { .. } = e {
            return ApiError::gone(e.to_string());
        }
        let scim = crate::error::ApiError::from(e).0;
        ApiError {
            status: StatusCode::from_u16(scim.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: if scim.status >= 500 {
                "internal"
            } else {
                "invalid_request"
            },
            message: scim.detail,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            axum::Json(json!({"error": self.code, "message": self.message})),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED
            && let Ok(v) = "Bearer realm=\"roster-admin\"".parse()
        {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

/// A request authenticated by an admin API key.
pub struct AdminAuth {
    pub key_id: String,
}

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = |m: &str| ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: m.to_owned(),
        };
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, k)| k.trim())
            .ok_or_else(|| unauthorized("send an admin API key as \"Authorization: Bearer <key>\" (roster admin-key create NAME)"))?;
        let key_id = state
            .store
            .authenticate_admin(key)
            .await?
            .ok_or_else(|| unauthorized("the admin API key is unknown or revoked"))?;
        Ok(AdminAuth { key_id })
    }
}
