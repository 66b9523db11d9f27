//! The WorkOS-compatible routes, at the root of the listener (the Node SDK
//! drops any path prefix), authenticated with admin API keys.

pub mod webhook_endpoints;

use axum::Router;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    webhook_endpoints::routes()
}
