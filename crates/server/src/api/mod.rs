//! The app-facing API under `/api/v1`, authenticated by admin API keys.
//! Not SCIM: errors are `{"error": code, "message": text}`.

mod directories;
mod events;
mod params;
mod tokens;
mod users;
pub mod webhooks;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
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
        .merge(directory_routes())
}

/// Directory administration, tokens and the app-facing directory reads.
fn directory_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/directories",
            get(directories::list).post(directories::create),
        )
        .route(
            "/api/v1/directories/{id}/settings",
            get(directories::settings).put(directories::set_settings),
        )
        .route(
            "/api/v1/directories/{id}",
            get(directories::get)
                .patch(directories::rename)
                .delete(directories::delete),
        )
        .route(
            "/api/v1/directories/{id}/tokens",
            get(tokens::list).post(tokens::issue),
        )
        .route(
            "/api/v1/directories/{id}/tokens/{token_id}",
            delete(tokens::revoke),
        )
        .route(
            "/api/v1/directories/{id}/tokens/{token_id}/rotate",
            post(tokens::rotate),
        )
        .route("/api/v1/directories/{id}/users", get(users::list_users))
        .route("/api/v1/directories/{id}/groups", get(users::list_groups))
        .route("/api/v1/users/{id}", get(users::get_user))
        .route("/api/v1/groups/{id}", get(users::get_group))
        .route("/api/v1/groups/{id}/users", get(users::group_users))
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

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
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
            code: match scim.status {
                404 => "not_found",
                409 => "conflict",
                503 => "unavailable",
                s if s >= 500 => "internal",
                _ => "invalid_request",
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
        // As on SCIM: a 503 (database outage, shutdown) is worth retrying.
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        resp
    }
}

/// A request authenticated by an admin API key.
pub struct AdminAuth {
    pub key_id: String,
}

impl FromRequestParts<AppState> for AdminAuth {
    // A Response, not an ApiError: a 429 carries a Retry-After header.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let key_id = authenticate_admin(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        // Only proven keys reach a bucket, as for SCIM tokens: guessed keys
        // are 401s and cannot fill the limiter's memory.
        if let Some(key) = crate::auth::bearer(parts)
            && let Err(retry_after) = state.limiter.check_admin(key)
        {
            return Err(crate::rate_limit::too_many_admin_requests(retry_after));
        }
        Ok(AdminAuth { key_id })
    }
}

async fn authenticate_admin(parts: &Parts, state: &AppState) -> Result<String, ApiError> {
    let unauthorized = |m: &str| ApiError {
        status: StatusCode::UNAUTHORIZED,
        code: "unauthorized",
        message: m.to_owned(),
    };
    let key = crate::auth::bearer(parts)
        .ok_or_else(|| unauthorized("send an admin API key as \"Authorization: Bearer <key>\" (roster admin-key create NAME)"))?;
    let key_id = state
        .store
        .authenticate_admin(key)
        .await?
        .ok_or_else(|| unauthorized("the admin API key is unknown or revoked"))?;
    Ok(key_id)
}
