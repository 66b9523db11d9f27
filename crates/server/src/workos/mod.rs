//! The WorkOS-compatible Directory Sync API, at the root of the listener
//! (the Node SDK drops any path prefix), authenticated by admin API keys.
//! Handlers share the query layer with `/api/v1` (`roster_store`'s
//! `DirectoryReads`, `DirectoryStore`, `EventLog`) and differ from it only in
//! rendering ([`render`]) and error bodies ([`WorkosError`]).

pub(crate) mod directories;
pub(crate) mod events;
mod params;
pub mod render;
pub(crate) mod users;
pub mod webhook_endpoints;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::api::AdminAuth;
pub use crate::error::WorkosError;
use crate::openapi::Routes;
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/directories", directories::list)
        .get("/directories/{id}", directories::get)
        .delete("/directories/{id}", directories::delete)
        .get("/directories/{id}/users", users::list_in_directory)
        .get("/directories/{id}/users/{user_id}", users::get_in_directory)
        .get("/directories/{id}/groups", users::list_groups_in_directory)
        .get(
            "/directories/{id}/groups/{group_id}",
            users::get_group_in_directory,
        )
        .get("/directory_users", users::list)
        .get("/directory_users/{id}", users::get)
        .get("/directory_groups", users::list_groups)
        .get("/directory_groups/{id}", users::get_group)
        .get("/events", events::list)
        .get("/webhook_endpoints", webhook_endpoints::list)
        .post("/webhook_endpoints", webhook_endpoints::create)
        .patch("/webhook_endpoints/{id}", webhook_endpoints::update)
        .delete("/webhook_endpoints/{id}", webhook_endpoints::delete)
}

/// Whether `path` is under one of the WorkOS routes' roots.
pub fn serves(path: &str) -> bool {
    let root = path.split('/').nth(1).unwrap_or_default();
    matches!(
        root,
        "directories" | "directory_users" | "directory_groups" | "events" | "webhook_endpoints"
    )
}

/// A request to the WorkOS-compatible routes authenticated by an admin API
/// key; a directory's SCIM token is not one. The key's scope applies as on
/// `/api/v1` (through [`AdminAuth`]'s checks; their errors convert to the
/// WorkOS shape): lists show only the directories it sees, any other
/// directory and what is in it is a 404, and a read-only key changes nothing.
pub struct WorkosAuth(AdminAuth);

impl std::ops::Deref for WorkosAuth {
    type Target = AdminAuth;

    fn deref(&self) -> &AdminAuth {
        &self.0
    }
}

impl FromRequestParts<AppState> for WorkosAuth {
    // A Response, not a WorkosError: a 429 carries a Retry-After header.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let key = crate::api::authenticate_admin(parts, state)
            .await
            .map_err(|e| WorkosError::from(e).into_response())?;
        if let Some(key) = crate::auth::bearer(parts)
            && let Err(retry_after) = state.limiter.check_admin(key)
        {
            let mut resp = WorkosError(crate::error::ApiError::new(
                429,
                format!(
                    "too many requests for this admin API key (admin_rate_limit_per_sec); retry after {retry_after} s"
                ),
            ))
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Err(resp);
        }
        Ok(WorkosAuth(AdminAuth { key }))
    }
}
