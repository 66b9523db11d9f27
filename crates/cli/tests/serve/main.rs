//! The real `roster serve` process: graceful shutdown on SIGTERM, rate-limit
//! overrides from the config file, secrets kept out of its logs, and webhook
//! secrets encrypted at rest.
//! All tests are modules of this one binary, which links once.

mod support;

mod custom_attributes;
mod limits;
mod logs;
mod secrets;
mod shutdown;
