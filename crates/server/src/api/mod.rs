//! The app-facing API under `/api/v1`, authenticated by admin API keys.
//! Not SCIM: errors are rendered as `{"error": code, "message": text}` ([`AppError`]).

pub(crate) mod admin_keys;
mod audit;
pub(crate) mod directories;
pub(crate) mod events;
pub(crate) mod params;
mod portal_links;
mod requests;
pub(crate) mod tokens;
pub(crate) mod users;
pub mod webhooks;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};

use roster_store::{Actor, AdminKeyInfo};

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
        .route(
            "/api/v1/admin_keys",
            get(admin_keys::list).post(admin_keys::create),
        )
        .route("/api/v1/admin_keys/{id}", delete(admin_keys::revoke))
        .route("/api/v1/admin_keys/{id}/rotate", post(admin_keys::rotate))
        .route("/api/v1/audit_log", get(audit::list))
        .route("/api/v1/portal_links", post(portal_links::create))
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
        .route("/api/v1/directories/{id}/sync", post(directories::sync))
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
        .route("/api/v1/directories/{id}/requests", get(requests::list))
        .route(
            "/api/v1/directories/{id}/connection",
            get(requests::connection),
        )
        .route("/api/v1/directories/{id}/users", get(users::list_users))
        .route("/api/v1/directories/{id}/groups", get(users::list_groups))
        .route("/api/v1/users/{id}", get(users::get_user))
        .route("/api/v1/groups/{id}", get(users::get_group))
        .route("/api/v1/groups/{id}/users", get(users::group_users))
}

pub use crate::error::AppError;
pub use portal_links::check_return_url;

/// A request authenticated by an admin API key, with what the key may do.
///
/// Every `/api/v1` handler (and every other route that takes admin keys)
/// states what it needs through these methods, so one place decides: a
/// read-only key changes nothing ([`AdminAuth::require_write`]); a key
/// limited to directories sees only those, and every other directory, and
/// whatever is in it, does not exist for it (404, never 403, so ids do not
/// leak: [`AdminAuth::require_directory`], [`AdminAuth::directories`] for
/// lists); what spans directories needs an unlimited key
/// ([`AdminAuth::require_unlimited`]); managing admin keys needs a full,
/// unlimited key ([`AdminAuth::require_full`]).
pub struct AdminAuth {
    pub key: AdminKeyInfo,
}

impl AdminAuth {
    /// Who the audit log says made a change through this request.
    pub fn actor(&self) -> Actor {
        Actor::AdminKey(self.key.id.clone())
    }

    /// 403 for a read-only key.
    pub fn require_write(&self) -> Result<(), AppError> {
        if self.key.scope.read_only {
            return Err(AppError::forbidden(
                "this admin key is read-only; changes need a key created without --read-only",
            ));
        }
        Ok(())
    }

    /// 404 (as for an unknown directory) when the key does not see `directory`.
    pub fn require_directory(&self, directory: &str) -> Result<(), AppError> {
        if self.key.scope.sees(directory) {
            Ok(())
        } else {
            Err(AppError::not_found(format!("no directory {directory}")))
        }
    }

    /// Whether the key sees `directory`: for filtering what a list shows.
    pub fn sees(&self, directory: &str) -> bool {
        self.key.scope.sees(directory)
    }

    /// The directories the key is limited to; `None`: all. Lists pass it on
    /// to the store, so pages are filtered before they are cut.
    pub fn directories(&self) -> Option<&[String]> {
        self.key.scope.directories.as_deref()
    }

    /// 403 for a key limited to directories: for what spans them all
    /// (creating a directory, webhooks of every directory, the audit log).
    pub fn require_unlimited(&self) -> Result<(), AppError> {
        if self.key.scope.directories.is_some() {
            return Err(AppError::forbidden(
                "this admin key is limited to some directories; this needs a key for all of them",
            ));
        }
        Ok(())
    }

    /// 403 unless the key is full and unlimited: for managing admin keys.
    pub fn require_full(&self) -> Result<(), AppError> {
        if !self.key.scope.is_full() {
            return Err(AppError::forbidden(
                "managing admin keys needs a full admin key (not read-only, not limited to directories)",
            ));
        }
        Ok(())
    }
}

impl FromRequestParts<AppState> for AdminAuth {
    // A Response, not an AppError: a 429 carries a Retry-After header.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let key = authenticate_admin(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        // Only proven keys reach a bucket, as for SCIM tokens: guessed keys
        // are 401s and cannot fill the limiter's memory.
        if let Some(bearer) = crate::auth::bearer(parts)
            && let Err(retry_after) = state.limiter.check_admin(bearer)
        {
            crate::metrics::rate_limited("admin");
            return Err(crate::rate_limit::too_many_admin_requests(retry_after));
        }
        Ok(AdminAuth { key })
    }
}

/// Proves the key against the database on every request (one indexed read):
/// admin keys are never cached, so a revocation or rotation stops the old
/// secret at once on every instance.
pub(crate) async fn authenticate_admin(
    parts: &Parts,
    state: &AppState,
) -> Result<AdminKeyInfo, AppError> {
    let unauthorized = AppError::unauthorized;
    let key = crate::auth::bearer(parts).ok_or_else(|| {
        crate::metrics::auth_failure("admin", "missing");
        unauthorized("send an admin API key as \"Authorization: Bearer <key>\" (roster admin-key create NAME)")
    })?;
    state.store.authenticate_admin(key).await?.ok_or_else(|| {
        crate::metrics::auth_failure("admin", "unknown");
        unauthorized("the admin API key is unknown or revoked")
    })
}
