//! Integration tests: the real server on a real port against a real SQLite file.
//! All modules form one test binary, because each file in tests/ links separately.
//! `tests/pg` runs the same suite (`suite.rs`) against PostgreSQL.

// A test crate of its own: clippy.toml's allow-*-in-tests covers #[test]
// functions, not the helpers beside them, which fail a test the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

/// The store this binary runs the suite against.
pub const STORE: support::StoreKind = support::StoreKind::Sqlite;

#[path = "suite.rs"]
mod suite;
