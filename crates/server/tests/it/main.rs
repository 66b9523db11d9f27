//! Integration tests: the real server on a real port against a real SQLite file.
//! All modules form one test binary, because each file in tests/ links separately.
//! `tests/pg` runs these same modules against PostgreSQL.

// A test crate of its own: clippy.toml's allow-*-in-tests covers #[test]
// functions, not the helpers beside them, which fail a test the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

/// The store this binary runs the suite against.
pub const STORE: support::StoreKind = support::StoreKind::Sqlite;

mod api_directories;
mod api_users;
mod bulk;
mod bulk_limits;
mod conformance_fixes;
mod custom_attributes;
mod db_outage;
mod discovery;
mod errors;
mod etags;
mod events;
mod extensions;
mod filters;
mod hardening_errors;
mod hardening_filters;
mod hardening_limits;
mod hardening_load;
mod hardening_sockets;
mod idp_replay;
mod isolation;
mod isolation_matrix;
mod paging;
mod patch;
mod projection;
mod raw_http;
mod smoke;
mod user_groups;
mod users;
mod webhooks;
