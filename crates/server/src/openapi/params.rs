//! Query parameters shared by many routes, as the document describes them.
//! Handlers read them through `QueryParams` (names matched
//! case-insensitively, `events` repeated or comma-joined), so these types
//! exist for the document; `api::params` and `workos::params` hold the
//! bounds both use.

#![allow(dead_code)] // Fields are read by the IntoParams derive only.

use utoipa::{IntoParams, ToSchema};

/// Which way a list runs, by object id (creation order); `normal` is `desc`.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Order {
    Asc,
    Desc,
    Normal,
}

/// Paging of `/api/v1` lists: oldest first unless `order=desc`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApiPage {
    /// The `list_metadata.before` of another page: the objects before it.
    before: Option<String>,
    /// The `list_metadata.after` of another page: the objects after it.
    after: Option<String>,
    order: Option<Order>,
    /// Objects a page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u64>,
}

/// Paging of WorkOS lists: newest first unless `order=asc`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorkosPage {
    /// The `list_metadata.before` of another page.
    before: Option<String>,
    /// The `list_metadata.after` of another page.
    after: Option<String>,
    order: Option<Order>,
    /// Objects a page, 1 to 100 (default 10).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u64>,
}

/// What both event streams filter on.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilters {
    /// Only this directory's events.
    directory_id: Option<String>,
    /// Only the events of the directories this organization owns (or owned).
    organization_id: Option<String>,
    /// Only events after this instant (RFC 3339).
    #[param(format = DateTime)]
    range_start: Option<String>,
    /// Only events before this instant (RFC 3339).
    #[param(format = DateTime)]
    range_end: Option<String>,
    /// An event id (`evt_…`): the events before it.
    before: Option<String>,
    /// An event id (`evt_…`): the events after it.
    after: Option<String>,
    /// `asc` (the default: oldest first) or `desc`.
    order: Option<Order>,
}
