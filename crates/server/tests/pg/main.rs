//! The integration suite of `tests/it`, run against PostgreSQL: one suite,
//! two stores. Each test gets a schema of its own in the database named by
//! `ROSTER_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`).

// A test crate of its own: clippy.toml's allow-*-in-tests covers #[test]
// functions, not the helpers beside them, which fail a test the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../it/support.rs"]
mod support;

/// The store this binary runs the suite against.
pub const STORE: support::StoreKind = support::StoreKind::Postgres;

#[path = "../it/api_directories.rs"]
mod api_directories;
#[path = "../it/api_users.rs"]
mod api_users;
#[path = "../it/bulk.rs"]
mod bulk;
#[path = "../it/bulk_limits.rs"]
mod bulk_limits;
#[path = "../it/conformance_fixes.rs"]
mod conformance_fixes;
#[path = "../it/custom_attributes.rs"]
mod custom_attributes;
#[path = "../it/db_outage.rs"]
mod db_outage;
#[path = "../it/discovery.rs"]
mod discovery;
#[path = "../it/errors.rs"]
mod errors;
#[path = "../it/etags.rs"]
mod etags;
#[path = "../it/events.rs"]
mod events;
#[path = "../it/extensions.rs"]
mod extensions;
#[path = "../it/filters.rs"]
mod filters;
#[path = "../it/hardening_errors.rs"]
mod hardening_errors;
#[path = "../it/hardening_filters.rs"]
mod hardening_filters;
#[path = "../it/hardening_limits.rs"]
mod hardening_limits;
#[path = "../it/hardening_load.rs"]
mod hardening_load;
#[path = "../it/hardening_sockets.rs"]
mod hardening_sockets;
#[path = "../it/idp_replay.rs"]
mod idp_replay;
#[path = "../it/isolation.rs"]
mod isolation;
#[path = "../it/isolation_matrix.rs"]
mod isolation_matrix;
#[path = "../it/paging.rs"]
mod paging;
#[path = "../it/patch.rs"]
mod patch;
#[path = "../it/projection.rs"]
mod projection;
#[path = "../it/raw_http.rs"]
mod raw_http;
#[path = "../it/smoke.rs"]
mod smoke;
#[path = "../it/user_groups.rs"]
mod user_groups;
#[path = "../it/users.rs"]
mod users;
#[path = "../it/webhooks.rs"]
mod webhooks;
