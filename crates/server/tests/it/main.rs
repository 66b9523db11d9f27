//! Integration tests: the real server on a real port against a real SQLite file.
//! All modules form one test binary, because each file in tests/ links separately.
//! `tests/pg` runs the same suite (`suite.rs`) against PostgreSQL.

mod support;

/// The store this binary runs the suite against.
pub const STORE: support::StoreKind = support::StoreKind::Sqlite;

#[path = "suite.rs"]
mod suite;
