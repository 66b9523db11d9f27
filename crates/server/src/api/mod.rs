//! The app-facing API under `/api/v1`, authenticated by admin API keys.
//! Not SCIM: errors are rendered as `{"error": code, "message": text}` ([`AppError`]).

pub(crate) mod directories;
mod events;
pub(crate) mod params;
mod tokens;
mod users;
pub mod webhooks;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};

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
                .patch(directories::update)
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

pub use crate::error::AppError;

/// A request authenticated by an admin API key.
pub struct AdminAuth {
    pub key_id: String,
}

impl FromRequestParts<AppState> for AdminAuth {
    // A Response, not an AppError: a 429 carries a Retry-After header.
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

pub(crate) async fn authenticate_admin(
    parts: &Parts,
    state: &AppState,
) -> Result<String, AppError> {
    let unauthorized = AppError::unauthorized;
    let key = crate::auth::bearer(parts)
        .ok_or_else(|| unauthorized("send an admin API key as \"Authorization: Bearer <key>\" (roster admin-key create NAME)"))?;
    let key_id = state
        .store
        .authenticate_admin(key)
        .await?
        .ok_or_else(|| unauthorized("the admin API key is unknown or revoked"))?;
    Ok(key_id)
}
