//! The OpenAPI 3.1 document of `/api/v1` and the WorkOS-compatible routes,
//! served at `GET /api/v1/openapi.json`. It is derived from the handlers'
//! `#[utoipa::path]` attributes and the types they serialize, and the two
//! route tables are built through [`Routes`], which notes every method and
//! path it serves: the test below holds that list against the document, so
//! a route without a description fails the build's tests.

pub mod objects;
pub mod params;

use std::sync::OnceLock;

use axum::Router;
use axum::handler::Handler;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{self, MethodRouter};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

/// A route table that remembers what it serves.
#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    served: Vec<(Method, &'static str)>,
}

impl Routes {
    pub fn new() -> Self {
        Routes::default()
    }

    fn add(mut self, method: Method, path: &'static str, route: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, route);
        self.served.push((method, path));
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::GET, path, routing::get(h))
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::POST, path, routing::post(h))
    }

    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::PUT, path, routing::put(h))
    }

    pub fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::PATCH, path, routing::patch(h))
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.add(Method::DELETE, path, routing::delete(h))
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.served.extend(other.served);
        self
    }

    /// Every method and path, in the order they were added.
    pub fn served(&self) -> &[(Method, &'static str)] {
        &self.served
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}

/// Every route that takes an admin key, `/api/v1` and WorkOS alike.
pub fn routes() -> Routes {
    crate::api::routes()
        .merge(crate::workos::routes())
        .get("/api/v1/openapi.json", document)
}

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An admin API key (roster admin-key create NAME) as \"Authorization: Bearer <key>\". A directory's SCIM token does not open these routes.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Roster",
        description = "Roster's app-facing API (/api/v1) and its WorkOS-compatible Directory Sync API (at the root, for the WorkOS SDKs). Every route takes an admin API key as a bearer token.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerKey),
    components(schemas(objects::ErrorBody, objects::WorkosErrorBody, params::Order)),
    security(("admin_key" = [])),
    tags(
        (name = "directories", description = "/api/v1: directories, their settings and SCIM tokens"),
        (name = "users and groups", description = "/api/v1: normalized users and groups"),
        (name = "events", description = "/api/v1: the event stream"),
        (name = "webhooks", description = "/api/v1: webhook endpoints and deliveries"),
        (name = "admin", description = "/api/v1: admin keys and the audit log"),
        (name = "workos", description = "The WorkOS Directory Sync API: directories, users, groups, events, webhook endpoints"),
    ),
    paths(
        document,
        crate::api::events::list_events,
        crate::api::webhooks::list,
        crate::api::webhooks::create,
        crate::api::webhooks::get,
        crate::api::webhooks::delete,
        crate::api::webhooks::enable,
        crate::api::webhooks::disable,
        crate::api::webhooks::rotate_secret,
        crate::api::webhooks::deliveries,
        crate::api::webhooks::redeliver,
        crate::api::admin_keys::list,
        crate::api::admin_keys::create,
        crate::api::admin_keys::revoke,
        crate::api::admin_keys::rotate,
        crate::api::audit::list,
        crate::api::portal_links::create,
        crate::api::directories::list,
        crate::api::directories::create,
        crate::api::directories::settings,
        crate::api::directories::set_settings,
        crate::api::directories::get,
        crate::api::directories::update,
        crate::api::directories::delete,
        crate::api::directories::sync,
        crate::api::tokens::list,
        crate::api::tokens::issue,
        crate::api::tokens::revoke,
        crate::api::tokens::rotate,
        crate::api::requests::list,
        crate::api::requests::connection,
        crate::api::users::list_users,
        crate::api::users::list_groups,
        crate::api::users::get_user,
        crate::api::users::get_group,
        crate::api::users::group_users,
        crate::workos::directories::list,
        crate::workos::directories::get,
        crate::workos::directories::delete,
        crate::workos::users::list_in_directory,
        crate::workos::users::get_in_directory,
        crate::workos::users::list_groups_in_directory,
        crate::workos::users::get_group_in_directory,
        crate::workos::users::list,
        crate::workos::users::get,
        crate::workos::users::list_groups,
        crate::workos::users::get_group,
        crate::workos::events::list,
        crate::workos::webhook_endpoints::list,
        crate::workos::webhook_endpoints::create,
        crate::workos::webhook_endpoints::update,
        crate::workos::webhook_endpoints::delete,
    )
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "admin",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
)]
pub async fn document() -> Response {
    // Built once: it depends on nothing but the code.
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], text.as_str()).into_response()
}

#[cfg(test)]
mod tests;
