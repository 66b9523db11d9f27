//! SCIM endpoints under `/scim/v2/{directory}`.

mod bulk;
mod discovery;
mod resources;
mod search;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/scim/v2/{dir}/Users",
            get(resources::list_users).post(resources::create_user),
        )
        .route(
            "/scim/v2/{dir}/Users/{id}",
            get(resources::get_user)
                .put(resources::replace_user)
                .patch(resources::patch_user)
                .delete(resources::delete_user),
        )
        .route(
            "/scim/v2/{dir}/Groups",
            get(resources::list_groups).post(resources::create_group),
        )
        .route(
            "/scim/v2/{dir}/Groups/{id}",
            get(resources::get_group)
                .put(resources::replace_group)
                .patch(resources::patch_group)
                .delete(resources::delete_group),
        )
        .route("/scim/v2/{dir}/Users/.search", post(search::search_users))
        .route("/scim/v2/{dir}/Groups/.search", post(search::search_groups))
        .route("/scim/v2/{dir}/.search", post(search::search_all))
        .route("/scim/v2/{dir}/Bulk", post(bulk::post_bulk))
        .route(
            "/scim/v2/{dir}/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .route(
            "/scim/v2/{dir}/ResourceTypes",
            get(discovery::resource_types),
        )
        .route(
            "/scim/v2/{dir}/ResourceTypes/{name}",
            get(discovery::resource_type),
        )
        .route("/scim/v2/{dir}/Schemas", get(discovery::schemas))
        .route("/scim/v2/{dir}/Schemas/{id}", get(discovery::schema))
}
