//! What Roster's test suites share: the test PostgreSQL ([`pg`]: which one,
//! a schema per test, a private cluster when none is running), the `roster
//! serve` process spawner ([`process`]), a raw HTTP/1.1 client and webhook
//! receiver on real sockets ([`http`]), a probe asked until it answers
//! ([`poll`]), with the `server` feature, the in-process server spawner
//! ([`server`]) and, with the `browser` feature, a headless Chromium for the
//! web pages ([`browser`]), and with the `google` feature a stand-in of
//! Google's Directory API ([`google`]).
//!
//! A dev-dependency only. Its helpers fail the calling test the way `assert!`
//! does, by panicking with a message that says what was expected; they never
//! `unwrap` without one.
// The workspace lints deny panics outside tests; this crate is test code
// whose way of failing is a panic with a message, so only bare unwraps stay denied.
#![allow(clippy::expect_used, clippy::panic)]

#[cfg(feature = "browser")]
pub mod browser;
#[cfg(feature = "google")]
pub mod google;
pub mod http;
pub mod pg;
pub mod poll;
pub mod process;
#[cfg(feature = "server")]
pub mod server;
