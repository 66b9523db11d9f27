//! The integration suite of `tests/it` (`suite.rs`), run against PostgreSQL:
//! one suite, two stores. Each test gets a schema of its own in the test
//! PostgreSQL (see `roster_testkit::pg`: `ROSTER_TEST_POSTGRES`, else
//! `postgres://postgres@127.0.0.1:5432/test`, else a private cluster); without
//! any PostgreSQL the tests return early.

// A test crate of its own: clippy.toml's allow-*-in-tests covers #[test]
// functions, not the helpers beside them, which fail a test the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../it/support.rs"]
mod support;

/// The store this binary runs the suite against.
pub const STORE: support::StoreKind = support::StoreKind::Postgres;

#[path = "../it/suite.rs"]
mod suite;
