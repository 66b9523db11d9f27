//! The real `roster serve` process: graceful shutdown on SIGTERM, rate-limit
//! overrides from the config file, settings from every layer (`roster config
//! show`), secrets kept out of its logs, webhook secrets encrypted at rest,
//! and Google Workspace directories against a stand-in of Google.
//! All tests are modules of this one binary, which links once.

// A test crate of its own: clippy.toml's allow-*-in-tests covers #[test]
// functions, not the helpers beside them, which fail a test the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod admin_keys;
mod backup;
mod config;
mod custom_attributes;
mod google;
mod healthcheck;
mod index;
mod limits;
mod logs;
mod portal;
mod secrets;
mod shutdown;
mod webhooks;
